"""What every channel plugin implements: one `Transport` class per kind, in
`messaging/channels/<kind>/transport.py`.

A transport knows one vendor's contract and nothing of the database: it gets its channel's
settings and decrypted secrets, a token store and an HTTP client, and turns a list of
`Outgoing` messages into one `SendResult` each. The outbox (outbox.py) decides when to call
it, records the results, retries what is retryable and never calls it twice for one key
without asking `lookup` first."""

import datetime
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx


class Outcome:
    SENT = "sent"  # the vendor accepted it (delivery may follow as a receipt)
    FAILED = "failed"  # permanent: retrying cannot help (bad number, no permission, …)
    RETRY = "retry"  # transient: rate limit, timeout, vendor busy, expired token


@dataclass(slots=True)
class Outgoing:
    """One message ready to go. `address` is what the vendor addresses (phone in E.164,
    e-mail, openid, external_userid; empty for a webhook); `content` holds the rendered
    fields of the template (subject/text/html, SMS template parameters, …)."""

    key: str
    address: str
    content: dict[str, Any]
    contact_id: int | None = None
    # the WeCom staff member (userid) who sends a customer mass send
    sender: str = ""
    # what identifies the vendor call carrying this message (Aliyun OutId, …): the message's
    # key when it goes alone, a reference shared by a batch otherwise; stored before the
    # call, so that `lookup` can ask for it after a crash
    ref: str = ""


@dataclass(slots=True)
class SendResult:
    key: str
    outcome: str
    vendor_id: str = ""  # the vendor's id for the message or task (BizId, SerialNo, msgid…)
    code: str = ""  # the vendor's error code when not sent
    reason: str = ""  # a human-readable reason
    retry_after: float | None = None  # seconds, when the vendor says


@dataclass(slots=True)
class Receipt:
    """A delivery report pushed by a vendor: matched to a message by vendor id or key."""

    delivered: bool
    vendor_id: str = ""
    key: str = ""
    address: str = ""  # when one vendor id covers many recipients (a WeCom mass send)
    code: str = ""
    reason: str = ""
    at: datetime.datetime | None = None


@dataclass(slots=True)
class Reply:
    """An inbound message (an SMS reply such as "TD" or "退订")."""

    address: str
    text: str
    at: datetime.datetime | None = None


class VendorError(Exception):
    """A vendor answered with an error: `retryable` says whether a later try can succeed."""

    def __init__(self, code: str, message: str, *, retryable: bool, retry_after=None):
        super().__init__(f"{code}: {message}")
        self.code, self.message = str(code), message
        self.retryable, self.retry_after = retryable, retry_after

    def result(self, key: str) -> SendResult:
        return SendResult(
            key,
            Outcome.RETRY if self.retryable else Outcome.FAILED,
            code=self.code,
            reason=self.message,
            retry_after=self.retry_after,
        )


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A setting, secret or template field of a channel kind, for validation and the console.
    `kind`: text, textarea, int, bool, json, html. `template`: rendered with Jinja2 per
    message. `limit`: the channel's own limit, checked on the rendered value."""

    name: str
    label: str
    kind: str = "text"
    required: bool = True
    template: bool = False
    help: str = ""
    default: Any = None
    choices: tuple[str, ...] = field(default=())


class TokenStore(Protocol):
    def get(self, scope: str, fetch) -> str:
        """A valid token for `scope`; `fetch()` -> (token, expires_in seconds) is called by
        one caller at a time, and only when no valid token is stored."""

    def invalidate(self, scope: str, token: str) -> None:
        """The vendor rejected `token` (expired early, revoked): the next get fetches anew,
        unless another caller already replaced it."""


class Transport:
    kind: ClassVar[str]
    # contacts.Channel whose consent this channel needs; None: no consent (webhook)
    consent_channel: ClassVar[str | None]
    # the identity kind the address is read from (IdentityKind); None: no address
    address_identity: ClassVar[str | None]
    # messages one `send` call may carry (WeCom mass send: 10,000 external users)
    max_batch: ClassVar[int] = 1
    default_rate: ClassVar[float] = 10.0  # messages per second
    # the vendor (or receiver) drops a repeated key itself (a webhook's Idempotency-Key,
    # WeChat's client_msg_id), so a message whose outcome is unknown may simply be resent
    idempotent_resend: ClassVar[bool] = False
    settings_fields: ClassVar[tuple[FieldSpec, ...]] = ()
    secret_fields: ClassVar[tuple[FieldSpec, ...]] = ()
    template_fields: ClassVar[tuple[FieldSpec, ...]] = ()

    def __init__(
        self,
        settings: dict[str, Any],
        secrets: dict[str, Any],
        *,
        tokens: TokenStore | None = None,
        http: httpx.Client | None = None,
    ):
        self.settings, self.secrets, self.tokens = settings, secrets, tokens
        self.http = http or vendor_client()

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> None:
        """Refuse settings that cannot work together (ValidationError naming the setting);
        each field on its own is already checked against `settings_fields`."""

    def address_app_id(self) -> str:
        """The identity's app_id the address is read under (a WeChat openid belongs to one
        appid); "" for identities without one."""
        return ""

    def check_content(self, content: dict[str, Any]) -> None:
        """Refuse rendered content over the channel's limits: ValidationError naming the
        field. Called before a message is sent and on the preview."""

    def send(self, batch: list[Outgoing]) -> list[SendResult]:
        """One result per message, in any order. Raise nothing for a vendor error about one
        message; a VendorError or httpx error for the whole call is turned into RETRY or
        FAILED results by the outbox."""
        raise NotImplementedError

    def lookup(self, message: Outgoing, since: datetime.datetime) -> SendResult | None:
        """After a sender died between marking a message `sending` and recording the answer:
        did the vendor get it? SENT: the vendor has it. FAILED: the vendor has it, and it
        failed. RETRY: the vendor surely does not have it (the outbox sends it again). None:
        the vendor cannot tell (the outbox marks it `failed`, reason outcome_unknown, and
        never sends it twice)."""
        return None

    def callback_handshake(self, query: dict[str, str]) -> str | None:
        """A vendor's GET that verifies a callback URL before using it (WeChat's echostr):
        the text to answer, or None when the request is not genuine or not expected."""
        return None

    def callback_authentic(self, query: dict[str, str], body: bytes) -> bool:
        """Whether a pushed callback carries the vendor's valid signature (when the vendor
        signs them; the per-channel signed URL is the protection otherwise)."""
        return True

    def callback_ack(self) -> tuple[str, str] | None:
        """What the vendor expects as the answer to a callback: (body, content type), or None
        for the JSON both SMS vendors read."""
        return None

    def receipts(self, body: bytes, headers: dict[str, str]) -> list[Receipt]:
        """Delivery reports the vendor pushed to siyu's receipt URL."""
        return []

    def replies(self, body: bytes, headers: dict[str, str]) -> list[Reply]:
        """Inbound messages the vendor pushed to siyu's reply URL."""
        return []


def vendor_client() -> httpx.Client:
    """The HTTP client for vendor calls: bounded timeouts, no retries of its own (the outbox
    retries with backoff and knows what was sent)."""
    return httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0), follow_redirects=False)
