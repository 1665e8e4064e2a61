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


def transport_class(kind: str) -> type[Transport]:
    module, _, name = TRANSPORTS[kind].rpartition(".")
    return getattr(import_module(module), name)
