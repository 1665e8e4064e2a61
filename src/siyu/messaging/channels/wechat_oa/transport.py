"""WeChat Official Account (公众号) template messages: `POST cgi-bin/message/template/send`.

One message per call, to a follower's openid under the account's appid. Delivery is reported
later by the TEMPLATESENDJOBFINISH event WeChat pushes to the account's callback URL
(`receipts`), matched by the msgid the send answered with.

Resending: we pass `client_msg_id`, derived from the outbox key, and WeChat sends only one
message per openid + client_msg_id — but only for 10 minutes ("10分钟有效，超过10分钟不保证效
果"). So `idempotent_resend` stays False (a recovery may come later than that); instead
`lookup` resends with the same client_msg_id while the window is surely open, which answers
"did WeChat get it?" with the msgid of the one message, and says "cannot tell" afterwards."""

import datetime
import hashlib
import hmac
import xml.etree.ElementTree as ET
from typing import Any

from django.utils import timezone

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import (
    FieldSpec,
    Outcome,
    Outgoing,
    Receipt,
    SendResult,
    VendorError,
)
from siyu.messaging.channels.wechat_oa.api import (
    WechatError,
    WechatTransport,
    check_data,
    wrap_data,
)

# WeChat's dedupe window is 10 minutes from the first send; we measure from just before it
DEDUPE_WINDOW = datetime.timedelta(minutes=9)


def client_msg_id(key: str) -> str:
    """Our key (up to 200 characters) as a short, stable id: its length limit is not
    documented (the docs' example is "MSG_000001"), 32 hex characters are safe."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class WechatTemplateTransport(WechatTransport):
    kind = "wechat_oa"
    # WeChat documents a daily quota (45009), not a rate; this stays clear of the minute one
    default_rate = 10.0
    idempotent_resend = False  # see the module docstring: the dedupe lasts 10 minutes
    secret_fields = (
        FieldSpec("appsecret", "AppSecret"),
        FieldSpec(
            "callback_token",
            "Server token",
            required=False,
            help="The Token of the account's 服务器配置, whose URL is this channel's receipt URL",
        ),
    )
    settings_fields = (
        FieldSpec("appid", "AppID", help="The Official Account's AppID (wx…)"),
        FieldSpec(
            "miniprogram_appid",
            "Mini program AppID",
            required=False,
            help="The mini program templates open by default; it must be bound to this account",
        ),
    )
    template_fields = (
        FieldSpec("template_id", "Template ID"),
        FieldSpec("url", "Link", required=False, template=True, help="http(s) page to open"),
        FieldSpec(
            "miniprogram_appid",
            "Mini program AppID",
            required=False,
            help="Overrides the channel's mini program",
        ),
        FieldSpec(
            "miniprogram_pagepath",
            "Mini program page",
            required=False,
            template=True,
            help="e.g. pages/order/index?id=1; opened instead of the link when set",
        ),
        FieldSpec(
            "data",
            "Data items",
            kind="params",
            template=True,
            help='Template keys and their values, e.g. {"thing1": "{{ contact.name }}"}',
        ),
    )

    def check_content(self, content: dict[str, Any]) -> None:
        if not content.get("template_id"):
            raise ValidationError("template_id", "this field is required")
        url = content.get("url") or ""
        if url and not url.startswith(("https://", "http://")):
            raise ValidationError("url", "expected an http(s) link")
        if content.get("miniprogram_pagepath") and not self._miniprogram_appid(content):
            raise ValidationError(
                "miniprogram_appid", "a mini program page needs the mini program's AppID"
            )
        check_data(content.get("data"))

    def send(self, batch: list[Outgoing]) -> list[SendResult]:
        return [self._send_one(message) for message in batch]

    def _send_one(self, message: Outgoing) -> SendResult:
        try:
            answer = self.api.post("cgi-bin/message/template/send", self._payload(message))
        except WechatError as exc:
            return exc.result(message.key)
        return SendResult(message.key, Outcome.SENT, vendor_id=str(answer.get("msgid", "")))

    def _payload(self, message: Outgoing) -> dict[str, Any]:
        content = message.content
        payload: dict[str, Any] = {
            "touser": message.address,
            "template_id": content["template_id"],
            "data": wrap_data(content.get("data") or {}),
            "client_msg_id": client_msg_id(message.key),
        }
        if content.get("url"):
            payload["url"] = content["url"]
        if content.get("miniprogram_pagepath"):
            payload["miniprogram"] = {
                "appid": self._miniprogram_appid(content),
                "pagepath": content["miniprogram_pagepath"],
            }
        return payload

    def _miniprogram_appid(self, content: dict[str, Any]) -> str:
        return content.get("miniprogram_appid") or self.settings.get("miniprogram_appid", "")

    def lookup(self, message: Outgoing, since: datetime.datetime) -> SendResult | None:
        if timezone.now() - since > DEDUPE_WINDOW:
            return None  # WeChat may no longer drop a repeat: a resend could be a second message
        result = self.send([message])[0]
        if result.outcome == Outcome.RETRY:
            # WeChat refused the call itself; ask again later (and past the window: unknown)
            raise VendorError(result.code, result.reason, retryable=True)
        return result

    def receipts(self, body: bytes, headers: dict[str, str]) -> list[Receipt]:
        return parse_template_receipts(body)

    # The account's server URL (服务器配置) is the channel's receipt URL: WeChat first checks
    # it with a GET (signature, timestamp, nonce, echostr), then signs every push the same
    # way: signature = sha1 of the sorted [token, timestamp, nonce] joined.

    def _signed(self, query: dict[str, str]) -> bool:
        token = str(self.secrets.get("callback_token") or "")
        parts = [token, query.get("timestamp", ""), query.get("nonce", "")]
        if not token or not all(parts):
            return False
        expected = hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324
        return hmac.compare_digest(expected, query.get("signature", ""))

    def callback_handshake(self, query: dict[str, str]) -> str | None:
        return query.get("echostr") if self._signed(query) else None

    def callback_authentic(self, query: dict[str, str], body: bytes) -> bool:
        return self._signed(query)

    def callback_ack(self) -> tuple[str, str]:
        return "success", "text/plain"


# Status of a TEMPLATESENDJOBFINISH event → our code
_FAILURES = {"failed:userblock": "user_block", "failed:systemfailed": "system_failed"}


def parse_template_receipts(body: bytes) -> list[Receipt]:
    """The TEMPLATESENDJOBFINISH event (plain-text callback mode):

        <xml><ToUserName>gh_…</ToUserName><FromUserName>openid</FromUserName>
        <CreateTime>1395658920</CreateTime><MsgType>event</MsgType>
        <Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID>
        <Status>success | failed:user block | failed: system failed</Status></xml>

    Other events, encrypted bodies and anything unparsable give no receipts."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        return []  # WeChat never sends a DTD; refusing it avoids entity expansion
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return []
    if (root.findtext("Event") or "").strip().upper() != "TEMPLATESENDJOBFINISH":
        return []
    msg_id = (root.findtext("MsgID") or "").strip()
    if not msg_id or msg_id == "0":
        return []  # nothing to match it to
    status = (root.findtext("Status") or "").strip()
    delivered = status == "success"
    code = "" if delivered else _FAILURES.get(status.replace(" ", "").lower(), status)
    created = (root.findtext("CreateTime") or "").strip()
    at = datetime.datetime.fromtimestamp(int(created), datetime.UTC) if created.isdigit() else None
    return [
        Receipt(
            delivered=delivered,
            vendor_id=msg_id,
            address=(root.findtext("FromUserName") or "").strip(),
            code=code,
            reason="" if delivered else status,
            at=at,
        )
    ]
