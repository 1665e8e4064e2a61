"""The signature siyu puts on every webhook request, and its check for receivers.

The scheme follows Stripe's. Each request carries

    X-Siyu-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>

where the HMAC is keyed with the channel's signing secret (its UTF-8 bytes) and taken over
`f"{t}.".encode() + body`: the timestamp, a dot, then the raw request body exactly as sent.
A receiver recomputes it over the bytes it received (before any JSON parsing), compares in
constant time, and refuses a timestamp further than a few minutes from its own clock, so a
captured request cannot be replayed later. Several `v1=` entries may appear (one per
secret while a secret is being rotated); one match is enough.

A receiver in Python:

    from siyu.messaging.channels.webhook.signature import verify
    if not verify(secret, request.body, request.headers["X-Siyu-Signature"]):
        return 400
"""

import hashlib
import hmac
import time

SCHEME = "v1"
HEADER = "X-Siyu-Signature"


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Siyu-Signature header value for `body` sent at `timestamp`."""
    return f"t={timestamp},{SCHEME}={_digest(secret, body, timestamp)}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    tolerance_seconds: int = 300,
    *,
    now: float | None = None,
) -> bool:
    """Whether `header` signs `body` with `secret` at a time within `tolerance_seconds` of
    `now` (default: the current time). Never raises on a malformed header: False."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == SCHEME and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, body, timestamp)
    # compare against every candidate so the time taken does not tell which one matched
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(matches)
