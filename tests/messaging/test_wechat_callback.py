"""The Official Account's server URL is the channel's receipt URL: WeChat's GET check with
echostr, signed pushes of TEMPLATESENDJOBFINISH marking messages delivered, and forged or
unsigned ones refused."""

import hashlib

import pytest
from django.test import Client

from siyu.contacts.actions.contact import IdentityInput, contact_create
from siyu.core.audit import Actor
from siyu.messaging import actions, inbound
from siyu.messaging.models import OutboxMessage, OutboxStatus

pytestmark = pytest.mark.django_db
APPID, TOKEN, OPENID = "wx1234567890abcdef", "server-token", "oX9sT0abcDEF123ghiJKL456mno"


def signed(**extra):
    query = {"timestamp": "1700000000", "nonce": "84613", **extra}
    parts = sorted([TOKEN, query["timestamp"], query["nonce"]])
    query["signature"] = hashlib.sha1("".join(parts).encode()).hexdigest()  # noqa: S324
    return query


def finish(msg_id: str, status: str) -> str:
    return f"""<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>
<FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>1395658920</CreateTime>
<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>
<MsgID>{msg_id}</MsgID><Status><![CDATA[{status}]]></Status></xml>"""


@pytest.fixture
def setup(cast, system_actor):
    channel = actions.channel_create(
        workspace=cast.workspace,
        actor=system_actor,
        kind="wechat_oa",
        name="公众号",
        settings={"appid": APPID},
        secrets={"appsecret": "s", "callback_token": TOKEN},
    )
    contact = contact_create(
        workspace=cast.workspace,
        actor=Actor.system("t"),
        profile={"name": "甲"},
        identities=[IdentityInput("wechat_openid", OPENID, APPID)],
    )
    template = actions.template_create(
        workspace=cast.workspace,
        actor=system_actor,
        kind="wechat_oa",
        name="t",
        content={"template_id": "tpl", "data": {"thing1": "你好"}},
    )
    message = OutboxMessage.objects.create(
        workspace=cast.workspace,
        key="k1",
        contact=contact,
        channel=channel,
        template=template,
        source="broadcast:1:1",
        status=OutboxStatus.SENT,
        vendor_id="200163836",
    )
    path = inbound.hook_url(channel, "receipts").split("8000", 1)[1]
    return path, message


def test_the_url_check_answers_echostr_only_when_signed(setup):
    path, _ = setup
    answer = Client().get(path, signed(echostr="5837397520521790"))
    assert answer.status_code == 200 and answer.content == b"5837397520521790"
    forged = {**signed(echostr="1"), "signature": "0" * 40}
    assert Client().get(path, forged).status_code == 403


def test_a_signed_push_marks_the_message_and_an_unsigned_one_is_refused(setup):
    path, message = setup
    body = finish("200163836", "failed:user block")
    unsigned = Client().post(path, body, content_type="text/xml")
    assert unsigned.status_code == 403
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT
    query = "&".join(f"{k}={v}" for k, v in signed().items())
    answer = Client().post(f"{path}?{query}", body, content_type="text/xml")
    assert answer.status_code == 200 and answer.content == b"success"
    message.refresh_from_db()
    assert (message.status, message.reason) == (OutboxStatus.BOUNCED, "receipt:user_block")
