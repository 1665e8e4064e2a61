"""PII at rest: Fernet encryption (MultiFernet for rotation) and a keyed hash (HMAC-SHA256)
used as a blind index, so that a phone or email can be found without storing it in clear."""

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from siyu.core.keys import encryption_keys_file


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


_key_file_seen: dict[str, float] = {}


def _refresh_keys_from_file() -> None:
    """In file mode, pick up a rotated key file without a restart: a running server must
    encrypt under the new key and read values re-encrypted by `siyu rotate-key`."""
    if settings.SIYU_ENCRYPTION_KEYS_FROM_ENV:
        return
    path = encryption_keys_file(settings.SIYU_HOME)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return
    if _key_file_seen.get(str(path)) != mtime:
        keys = [k.strip() for k in path.read_text().split() if k.strip()]
        if keys:
            settings.SIYU_ENCRYPTION_KEYS = keys
        _key_file_seen[str(path)] = mtime


def fernet() -> MultiFernet:
    _refresh_keys_from_file()
    return _fernet(tuple(settings.SIYU_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:  # a key was removed before re-encryption finished
        raise RuntimeError(
            "cannot decrypt a stored value: is SIYU_ENCRYPTION_KEYS complete?"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key (no-op cost if already current)."""
    return fernet().rotate(token.encode()).decode()


def keyed_hash(kind: str, value: str) -> str:
    key = settings.SIYU_HASH_KEY.encode()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def check_encryption() -> str:
    """Round-trip a value; raise if the configured keys are unusable."""
    probe = "siyu-check"
    if decrypt(encrypt(probe)) != probe:
        raise RuntimeError("encryption round-trip failed")
    return f"{len(settings.SIYU_ENCRYPTION_KEYS)} key(s), newest first"
