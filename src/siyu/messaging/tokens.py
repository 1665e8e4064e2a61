"""Vendor access tokens (WeCom `gettoken`, WeChat `cgi-bin/token`), cached and refreshed once.

WeCom and WeChat hand out a token valid for about two hours and limit how often one may be
fetched; fetching a new one can also invalidate the old one for everyone. So a token lives
in one `AccessToken` row per channel and scope (encrypted, like every credential), every
process keeps a copy in memory, and a refresh happens under the row's lock: the first caller
fetches, the others wait and then read what it stored."""

import datetime
import threading
from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone

from siyu.core import crypto
from siyu.messaging.models import AccessToken, ChannelConfig

# refresh this long before the vendor's expiry, so that no call carries a token that
# expires in flight
MARGIN = datetime.timedelta(minutes=5)

Fetch = Callable[[], tuple[str, int]]  # -> (token, expires_in seconds)

_memory: dict[tuple[int, str], tuple[str, datetime.datetime]] = {}
_memory_lock = threading.Lock()


class DbTokenStore:
    """Tokens of one channel, shared by every process through the database."""

    def __init__(self, channel: ChannelConfig):
        self.channel = channel

    def get(self, scope: str, fetch: Fetch) -> str:
        key = (self.channel.pk, scope)
        now = timezone.now()
        with _memory_lock:
            cached = _memory.get(key)
        if cached and cached[1] - MARGIN > now:
            return cached[0]
        row = self._row(scope)
        if not _valid(row, now):
            with transaction.atomic():
                row = self._locked(row.pk)
                if not _valid(row, timezone.now()):  # nobody refreshed it while we waited
                    token, expires_in = fetch()
                    row.token_enc = crypto.encrypt(token)
                    row.refreshed_at = timezone.now()
                    row.expires_at = row.refreshed_at + datetime.timedelta(seconds=expires_in)
                    row.save(update_fields=["token_enc", "expires_at", "refreshed_at"])
        token = crypto.decrypt(row.token_enc)
        with _memory_lock:
            _memory[key] = (token, row.expires_at)
        return token

    def invalidate(self, scope: str, token: str) -> None:
        with _memory_lock:
            if _memory.get((self.channel.pk, scope), ("",))[0] == token:
                del _memory[(self.channel.pk, scope)]
        with transaction.atomic():
            row = self._locked(self._row(scope).pk)
            if row.token_enc and crypto.decrypt(row.token_enc) == token:
                row.expires_at = None
                row.save(update_fields=["expires_at"])

    def _row(self, scope: str) -> AccessToken:
        row, _ = AccessToken.objects.get_or_create(
            workspace_id=self.channel.workspace_id, channel=self.channel, scope=scope
        )
        return row

    def _locked(self, pk: int) -> AccessToken:
        # PostgreSQL: a row lock. SQLite: the transaction already holds the database's write
        # lock (BEGIN IMMEDIATE, settings.py), so callers queue the same way.
        query = AccessToken.objects.filter(pk=pk)
        if connection.vendor == "postgresql":
            query = query.select_for_update()
        return query.get()


def _valid(row: AccessToken, now: datetime.datetime) -> bool:
    return bool(row.token_enc and row.expires_at and row.expires_at - MARGIN > now)


def forget_cached(channel_id: int | None = None) -> None:
    """Drop in-memory copies (tests; a channel whose credentials changed)."""
    with _memory_lock:
        for key in [k for k in _memory if channel_id is None or k[0] == channel_id]:
            del _memory[key]


class MemoryTokenStore:
    """A process-local store for a transport used without a saved channel (tests, the
    settings form's check before saving)."""

    def __init__(self):
        self._tokens: dict[str, tuple[str, datetime.datetime]] = {}
        self._lock = threading.Lock()

    def get(self, scope: str, fetch: Fetch) -> str:
        with self._lock:
            token, expires = self._tokens.get(scope, ("", None))
            if not token or expires - MARGIN <= timezone.now():
                token, expires_in = fetch()
                expires = timezone.now() + datetime.timedelta(seconds=expires_in)
                self._tokens[scope] = (token, expires)
            return token

    def invalidate(self, scope: str, token: str) -> None:
        with self._lock:
            if self._tokens.get(scope, ("",))[0] == token:
                del self._tokens[scope]
