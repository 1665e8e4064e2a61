"""Secrets are never in the repository: each comes from its SIYU_* variable, or is generated
once into a file under SIYU_HOME (mode 0600) for the embedded, single-machine setup."""

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Keys:
    secret_key: str
    encryption_keys: list[str]
    encryption_keys_from_env: bool
    hash_key: str


def _read_or_create(path: Path, make) -> str:
    if path.exists():
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def new_fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def encryption_keys_file(home: Path) -> Path:
    return home / "encryption.keys"


def load_or_create_keys(
    home: Path, *, secret_key: str, encryption_keys: str, hash_key: str
) -> Keys:
    secret = secret_key or _read_or_create(home / "secret.key", lambda: secrets.token_urlsafe(50))
    hashk = hash_key or _read_or_create(home / "hash.key", lambda: secrets.token_urlsafe(32))
    raw = encryption_keys or _read_or_create(encryption_keys_file(home), new_fernet_key)
    keys = [k.strip() for k in raw.replace("\n", ",").split(",") if k.strip()]
    return Keys(secret, keys, bool(encryption_keys), hashk)
