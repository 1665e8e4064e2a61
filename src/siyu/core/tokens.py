"""Bearer secrets (API keys, write keys): issued once in clear, stored as a SHA-256, found
by that hash, and their last use recorded without a write on every request."""

import hashlib
import secrets
from typing import NamedTuple

from django.db.models import Model
from django.utils import timezone

# Record last use at most this often, so that a busy integration does not write on every call.
TOUCH_SECONDS = 60


class Issued(NamedTuple):
    raw: str  # shown once, never stored
    prefix: str  # stored and shown, to tell keys apart
    hash: str


def hash_token(raw: str) -> str:
    # 256 bits of randomness: a fast hash is enough (no password stretching).
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(kind_prefix: str) -> Issued:
    raw = kind_prefix + secrets.token_urlsafe(32)
    return Issued(raw, raw[:10], hash_token(raw))


def touch_last_used(key: Model) -> None:
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > TOUCH_SECONDS:
        type(key).objects.filter(pk=key.pk).update(last_used_at=now)
