"""Channel plugins: one package per kind with a `Transport` in `transport.py`. A new channel
is added by copying one and naming it here."""

from importlib import import_module

from siyu.messaging.channels.base import Transport

TRANSPORTS = {
    "email": "siyu.messaging.channels.email.transport.EmailTransport",
    "sms_aliyun": "siyu.messaging.channels.sms_aliyun.transport.AliyunSmsTransport",
    "sms_tencent": "siyu.messaging.channels.sms_tencent.transport.TencentSmsTransport",
    "wecom": "siyu.messaging.channels.wecom.transport.WecomTransport",
    "wechat_oa": "siyu.messaging.channels.wechat_oa.transport.WechatTemplateTransport",
    "wechat_mp": "siyu.messaging.channels.wechat_mp.transport.WechatSubscribeTransport",
    "webhook": "siyu.messaging.channels.webhook.transport.WebhookTransport",
}

# the customer-facing channel each kind reaches people through: frequency caps and reports
# group by it (an Aliyun and a Tencent SMS account are both "sms")
REACH = {
    "email": "email",
    "sms_aliyun": "sms",
    "sms_tencent": "sms",
    "wecom": "wecom",
    "wechat_oa": "wechat",
    "wechat_mp": "wechat",
    "webhook": "webhook",
}


def kinds_reaching(reach: str) -> list[str]:
    return [kind for kind, name in REACH.items() if name == reach]


def transport_class(kind: str) -> type[Transport]:
    module, _, name = TRANSPORTS[kind].rpartition(".")
    return getattr(import_module(module), name)
