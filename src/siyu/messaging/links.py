"""Tracked short links: `{{ link("https://shop.example.cn/new") }}` in a template becomes
`<SIYU_PUBLIC_URL>/l/<code>` in each message, where the code names the link and the message
and carries a short signature (so codes cannot be enumerated or forged). Opening it records
a click for the message's contact and redirects to the URL. Short, because SMS counts every
character."""

import hashlib
import hmac
from urllib.parse import urlsplit

from django.conf import settings

from siyu.messaging.models import TrackedLink

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
SIGNATURE = 6
MAX_URL = 2000


def _b62(n: int) -> str:
    digits = ""
    while True:
        n, rest = divmod(n, 62)
        digits = ALPHABET[rest] + digits
        if not n:
            return digits


def _from_b62(text: str) -> int:
    n = 0
    for char in text:
        n = n * 62 + ALPHABET.index(char)
    return n


def _sign(link_id: int, message_id: int) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"link:{link_id}:{message_id}".encode(), hashlib.sha256
    ).digest()
    return _b62(int.from_bytes(digest[:8], "big"))[:SIGNATURE]


def code_for(link_id: int, message_id: int) -> str:
    return f"{_b62(link_id)}-{_b62(message_id)}-{_sign(link_id, message_id)}"


def read_code(code: str) -> tuple[int, int] | None:
    """(link id, message id) of a genuine code, else None."""
    try:
        link_part, message_part, signature = code.split("-")
        link_id, message_id = _from_b62(link_part), _from_b62(message_part)
    except ValueError:
        return None
    if not hmac.compare_digest(signature, _sign(link_id, message_id)):
        return None
    return link_id, message_id


class LinkMaker:
    """The `link` a template calls while one message is rendered (message_id 0: a preview)."""

    def __init__(
        self, workspace_id: int, message_id: int = 0, cache: dict | None = None, preview=False
    ):
        self.workspace_id, self.message_id = workspace_id, message_id
        self.cache = cache if cache is not None else {}
        self.preview = preview  # a preview writes nothing: a sample code of the real length

    def __call__(self, url: str) -> str:
        if not isinstance(url, str) or len(url) > MAX_URL:
            raise ValueError("link() needs a URL of at most 2000 characters")
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"link() needs an http:// or https:// URL, not {url[:80]!r}")
        if self.preview:
            return f"{settings.SIYU_PUBLIC_URL}/l/{code_for(1, 10**6)}"
        link_id = self.cache.get(url)
        if link_id is None:
            digest = hashlib.sha256(url.encode()).hexdigest()
            link, _ = TrackedLink.objects.get_or_create(
                workspace_id=self.workspace_id, url_hash=digest, defaults={"url": url}
            )
            link_id = self.cache[url] = link.pk
        return f"{settings.SIYU_PUBLIC_URL}/l/{code_for(link_id, self.message_id)}"
