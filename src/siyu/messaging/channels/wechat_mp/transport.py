"""WeChat mini program (小程序) subscribe messages: `POST cgi-bin/message/subscribe/send`.

A user grants a mini program one message per tap on its subscribe dialog (or a long-term
subscription for some categories); sending without one answers 43101, which we report as
failed with that code, the outbox's "no consent". Every data key is a type and a number
(thing1, time2) and WeChat refuses a value over its type's limits (47003), so
`check_content` applies the documented table (api.py, DATA_RULES) before anything is sent.

WeChat drops no repeated send here (there is no dedupe id), so `idempotent_resend` is False
and `lookup` cannot tell (None): the outbox then never risks a second message."""

from typing import Any

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import FieldSpec, Outcome, Outgoing, SendResult
from siyu.messaging.channels.wechat_oa.api import (
    WechatError,
    WechatTransport,
    check_data,
    wrap_data,
)

STATES = ("formal", "trial", "developer")  # 正式版, 体验版, 开发版
LANGUAGES = ("zh_CN", "en_US", "zh_HK", "zh_TW")


class WechatSubscribeTransport(WechatTransport):
    kind = "wechat_mp"
    # the documented quota is daily (10 or 30 million); this stays clear of the minute one
    default_rate = 20.0
    idempotent_resend = False
    settings_fields = (FieldSpec("appid", "AppID", help="The mini program's AppID (wx…)"),)
    template_fields = (
        FieldSpec("template_id", "Template ID"),
        FieldSpec(
            "page",
            "Page",
            required=False,
            template=True,
            help="A page of this mini program, e.g. pages/order/index?id=1",
        ),
        FieldSpec(
            "miniprogram_state",
            "Version opened",
            required=False,
            default="formal",
            choices=STATES,
        ),
        FieldSpec("lang", "Language", required=False, default="zh_CN", choices=LANGUAGES),
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
        for name, choices in (("miniprogram_state", STATES), ("lang", LANGUAGES)):
            if content.get(name) and content[name] not in choices:
                raise ValidationError(
                    name, "expected one of %(choices)s", {"choices": ", ".join(choices)}
                )
        check_data(content.get("data"))

    def send(self, batch: list[Outgoing]) -> list[SendResult]:
        return [self._send_one(message) for message in batch]

    def _send_one(self, message: Outgoing) -> SendResult:
        try:
            answer = self.api.post("cgi-bin/message/subscribe/send", self._payload(message))
        except WechatError as exc:
            return exc.result(message.key)
        # the answer carries a msgid on current versions of the API (not in every document)
        return SendResult(message.key, Outcome.SENT, vendor_id=str(answer.get("msgid") or ""))

    def _payload(self, message: Outgoing) -> dict[str, Any]:
        content = message.content
        payload: dict[str, Any] = {
            "touser": message.address,
            "template_id": content["template_id"],
            "data": wrap_data(content.get("data") or {}),
            "miniprogram_state": content.get("miniprogram_state") or "formal",
            "lang": content.get("lang") or "zh_CN",
        }
        if content.get("page"):
            payload["page"] = content["page"]
        return payload
