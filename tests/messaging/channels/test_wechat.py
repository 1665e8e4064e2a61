"""The two WeChat channels (公众号 template messages, 小程序 subscribe messages) over real HTTP
to the fake WeChat API: payloads, the access token's life, errcodes, dedupe, receipts, and
the subscribe data limits."""

import datetime

import httpx
import pytest
from django.utils import timezone

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import Outcome, Outgoing, VendorError
from siyu.messaging.channels.wechat_mp.transport import WechatSubscribeTransport
from siyu.messaging.channels.wechat_oa.transport import WechatTemplateTransport, client_msg_id
from siyu.messaging.tokens import MemoryTokenStore
from tests.messaging.fakes.wechat import APPID, APPSECRET, FakeWechat

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
MINIPROGRAM = "wxminiprogram0001"

TEMPLATE_CONTENT = {
    "template_id": "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY",
    "url": "https://shop.example.com/orders/1",
    "miniprogram_pagepath": "pages/order/index?id=1",
    "data": {"thing1": "巧克力", "amount2": "39.8元", "time3": "2014年9月22日 15:01"},
}
SUBSCRIBE_CONTENT = {
    "template_id": "TEMPLATE_ID",
    "page": "pages/index/index?foo=bar",
    "miniprogram_state": "trial",
    "lang": "zh_CN",
    "data": {"number01": "339208499", "date01": "2015年01月05日", "thing3": "TIT创意园"},
}


@pytest.fixture
def fake(settings):
    with FakeWechat() as server:
        settings.SIYU_WECHAT_URL = server.url
        yield server


@pytest.fixture
def http():
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def tokens():
    return MemoryTokenStore()


@pytest.fixture
def oa(http, tokens):
    return WechatTemplateTransport(
        {"appid": APPID, "miniprogram_appid": MINIPROGRAM},
        {"appsecret": APPSECRET},
        tokens=tokens,
        http=http,
    )


@pytest.fixture
def mp(http, tokens):
    return WechatSubscribeTransport(
        {"appid": APPID}, {"appsecret": APPSECRET}, tokens=tokens, http=http
    )


def template(key="broadcast:1:contact:7", address=OPENID, **content):
    return Outgoing(key, address, {**TEMPLATE_CONTENT, **content}, contact_id=7)


def subscribe(key="journey:2:contact:7", address=OPENID, **content):
    return Outgoing(key, address, {**SUBSCRIBE_CONTENT, **content}, contact_id=7)


def send_requests(fake, path):
    return [r for r in fake.requests if r.path == path]


# --- 公众号 template messages ----------------------------------------------------------------


def test_template_send_posts_the_documented_json(fake, oa):
    [result] = oa.send([template()])

    assert result.outcome == Outcome.SENT
    [sent] = fake.template_sends
    assert result.vendor_id == str(sent["msgid"])
    [request] = send_requests(fake, "/cgi-bin/message/template/send")
    assert request.query["access_token"] == fake.current_token
    assert request.json() == {
        "touser": OPENID,
        "template_id": TEMPLATE_CONTENT["template_id"],
        "url": "https://shop.example.com/orders/1",
        "miniprogram": {"appid": MINIPROGRAM, "pagepath": "pages/order/index?id=1"},
        "data": {
            "thing1": {"value": "巧克力"},
            "amount2": {"value": "39.8元"},
            "time3": {"value": "2014年9月22日 15:01"},
        },
        "client_msg_id": client_msg_id("broadcast:1:contact:7"),
    }
    assert "巧克力".encode() in request.body  # raw UTF-8, not \\u escapes


def test_template_without_links_leaves_them_out(fake, oa):
    oa.send([template(url="", miniprogram_pagepath="")])

    body = send_requests(fake, "/cgi-bin/message/template/send")[0].json()
    assert "url" not in body and "miniprogram" not in body


def test_client_msg_id_is_short_and_stable():
    long_key = "journey:" + "x" * 190
    assert client_msg_id(long_key) == client_msg_id(long_key)
    assert len(client_msg_id(long_key)) == 32
    assert client_msg_id("a") != client_msg_id("b")


def test_a_repeated_send_with_the_same_key_is_one_message(fake, oa):
    first = oa.send([template("k1")])[0]
    again = oa.send([template("k1")])[0]
    other = oa.send([template("k2")])[0]

    assert again.outcome == Outcome.SENT and again.vendor_id == first.vendor_id
    assert other.vendor_id != first.vendor_id
    assert len(fake.template_sends) == 2


def test_lookup_resends_inside_the_dedupe_window_only(fake, oa):
    message = template("k1")
    first = oa.send([message])[0]

    found = oa.lookup(message, timezone.now() - datetime.timedelta(minutes=2))
    assert found.outcome == Outcome.SENT and found.vendor_id == first.vendor_id
    assert len(fake.template_sends) == 1

    calls = len(fake.requests)
    assert oa.lookup(message, timezone.now() - datetime.timedelta(minutes=30)) is None
    assert len(fake.requests) == calls  # past the window WeChat is not asked at all


def test_lookup_keeps_asking_when_wechat_refuses_the_call(fake, oa):
    fake.rate_limit_next = 1
    with pytest.raises(VendorError) as refused:
        oa.lookup(template("k1"), timezone.now())
    assert refused.value.code == "45009" and refused.value.retryable


@pytest.mark.parametrize(
    ("switch", "code"), [("unsubscribed", "43004"), ("invalid_openids", "40003")]
)
def test_unreachable_followers_fail_with_the_code(fake, oa, switch, code):
    getattr(fake, switch).add(OPENID)

    [result] = oa.send([template()])

    assert (result.outcome, result.code) == (Outcome.FAILED, code)
    assert fake.template_sends == []


# --- the access token ----------------------------------------------------------------------------


def test_one_token_serves_many_sends_and_is_refetched_once_when_expired(fake, oa):
    results = oa.send([template(f"k{i}") for i in range(5)])
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert fake.token_fetches == 1

    fake.expire_tokens()
    [result] = oa.send([template("after-expiry")])

    assert result.outcome == Outcome.SENT
    assert fake.token_fetches == 2
    sends = send_requests(fake, "/cgi-bin/message/template/send")
    assert sends[-2].query["access_token"] != sends[-1].query["access_token"]
    assert len(fake.template_sends) == 6


def test_a_stale_stored_token_is_replaced(fake, oa, tokens):
    tokens.get("", lambda: ("left-over-token", 7200))  # from another process, now invalid

    [result] = oa.send([template()])

    assert result.outcome == Outcome.SENT
    assert fake.token_fetches == 1


def test_a_token_refused_again_after_the_refresh_is_retried_later(fake, oa):
    fake.reject_tokens = True

    [result] = oa.send([template()])

    assert (result.outcome, result.code) == (Outcome.RETRY, "40001")
    # the first fetch, then a normal and a forced refresh (WeChat kept the same token)
    assert fake.token_fetches == 3
    assert len(send_requests(fake, "/cgi-bin/message/template/send")) == 2


def test_a_wrong_secret_fails_the_whole_call(fake, http):
    transport = WechatTemplateTransport(
        {"appid": APPID}, {"appsecret": "wrong"}, tokens=MemoryTokenStore(), http=http
    )
    with pytest.raises(VendorError) as refused:
        transport.send([template()])
    assert refused.value.code == "40125" and not refused.value.retryable


def test_the_daily_quota_is_retried_after_midnight_in_beijing(fake, oa):
    fake.rate_limit_next = 1

    [limited] = oa.send([template("k1")])
    [later] = oa.send([template("k1")])

    assert (limited.outcome, limited.code) == (Outcome.RETRY, "45009")
    assert 0 < limited.retry_after <= 24 * 3600
    assert later.outcome == Outcome.SENT


# --- TEMPLATESENDJOBFINISH receipts -------------------------------------------------------------


def finish_event(status: str, msg_id: str = "200163836") -> bytes:
    return f"""<xml>
<ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>
<FromUserName><![CDATA[{OPENID}]]></FromUserName>
<CreateTime>1395658920</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>
<MsgID>{msg_id}</MsgID>
<Status><![CDATA[{status}]]></Status>
</xml>""".encode()


def test_receipts_read_the_template_job_finish_event(oa):
    [delivered] = oa.receipts(finish_event("success"), {})
    assert delivered.delivered and delivered.vendor_id == "200163836"
    assert delivered.address == OPENID
    assert delivered.at == datetime.datetime(2014, 3, 24, 11, 2, tzinfo=datetime.UTC)

    [blocked] = oa.receipts(finish_event("failed:user block"), {})
    assert (blocked.delivered, blocked.code) == (False, "user_block")

    [failed] = oa.receipts(finish_event("failed: system failed"), {})
    assert (failed.delivered, failed.code) == (False, "system_failed")


@pytest.mark.parametrize(
    "body",
    [
        finish_event("success", msg_id="0"),
        b"<xml><MsgType>event</MsgType><Event>subscribe</Event></xml>",
        b"<xml><ToUserName>gh_1</ToUserName><Encrypt>AAAA</Encrypt></xml>",
        b"not xml",
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Event>&a;</Event></xml>',
    ],
)
def test_other_callbacks_give_no_receipts(oa, body):
    assert oa.receipts(body, {}) == []


def test_template_content_checks(oa):
    oa.check_content(TEMPLATE_CONTENT)
    old_style = {"first": "您好\n", "keyword1": "x" * 40, "remark": "谢谢"}
    oa.check_content({**TEMPLATE_CONTENT, "data": old_style})  # untyped keys are not limited
    with pytest.raises(ValidationError) as bad_link:
        oa.check_content({**TEMPLATE_CONTENT, "url": "javascript:alert(1)"})
    assert bad_link.value.field == "url"
    with pytest.raises(ValidationError) as long_thing:
        oa.check_content({**TEMPLATE_CONTENT, "data": {"thing1": "一" * 21}})
    assert long_thing.value.field == "data.thing1"


def test_settings_and_identity(oa, mp):
    assert oa.address_app_id() == APPID and mp.address_app_id() == APPID
    assert (oa.consent_channel, oa.address_identity) == ("wechat", "wechat_openid")
    assert not oa.idempotent_resend and not mp.idempotent_resend
    assert {f.name for f in oa.secret_fields} == {"appsecret", "callback_token"}
    data = next(f for f in mp.template_fields if f.name == "data")
    assert (data.kind, data.template) == ("params", True)


# --- 小程序 subscribe messages -----------------------------------------------------------------


def test_subscribe_send_posts_the_documented_json(fake, mp):
    [result] = mp.send([subscribe()])

    assert result.outcome == Outcome.SENT
    assert result.vendor_id == str(fake.subscribe_sends[0]["msgid"])
    [request] = send_requests(fake, "/cgi-bin/message/subscribe/send")
    assert request.json() == {
        "touser": OPENID,
        "template_id": "TEMPLATE_ID",
        "page": "pages/index/index?foo=bar",
        "miniprogram_state": "trial",
        "lang": "zh_CN",
        "data": {
            "number01": {"value": "339208499"},
            "date01": {"value": "2015年01月05日"},
            "thing3": {"value": "TIT创意园"},
        },
    }


def test_subscribe_defaults_to_the_released_version(fake, mp):
    mp.send([subscribe(page="", miniprogram_state="", lang="")])

    body = send_requests(fake, "/cgi-bin/message/subscribe/send")[0].json()
    assert (body["miniprogram_state"], body["lang"]) == ("formal", "zh_CN")
    assert "page" not in body


def test_no_subscription_left_fails_with_43101(fake, mp):
    fake.unsubscribed.add(OPENID)

    [result] = mp.send([subscribe()])

    assert (result.outcome, result.code) == (Outcome.FAILED, "43101")


def test_subscribe_rate_limit_and_token_expiry(fake, mp):
    fake.rate_limit_next = 1
    assert mp.send([subscribe()])[0].outcome == Outcome.RETRY

    fake.expire_tokens()
    assert mp.send([subscribe()])[0].outcome == Outcome.SENT
    assert fake.token_fetches == 2


def test_subscribe_lookup_cannot_tell(fake, mp):
    assert mp.lookup(subscribe(), timezone.now()) is None
    assert fake.requests == []


def test_the_client_check_and_the_api_agree_on_a_long_thing(fake, mp):
    too_long = subscribe(data={"thing1": "这是一段超过二十个字符的很长很长的订单备注内容"})

    with pytest.raises(ValidationError) as refused:
        mp.check_content(too_long.content)
    [result] = mp.send([too_long])  # what WeChat says when the check is skipped

    assert refused.value.field == "data.thing1"
    assert (result.outcome, result.code) == (Outcome.FAILED, "47003")


VALID_VALUES = [
    ("thing1", "一二三四五六七八九十一二三四五六七八九十"),
    ("thing2", "Order #42 已发货!"),
    ("number1", "339208499"),
    ("number2", "12.50"),
    ("letter1", "ABCdef"),
    ("symbol1", "#$%-"),
    ("character_string1", "SO-2024/001_ab"),
    ("time1", "15:01"),
    ("time2", "15:01:30"),
    ("time3", "2019年10月1日 15:01"),
    ("time4", "15:01~17:30"),
    ("date1", "2019年10月1日"),
    ("date2", "2019-10-01 15:01"),
    ("date3", "2018/01/01"),
    ("date4", "2018.01.01"),
    ("date5", "2018-01"),
    ("date6", "01-01"),
    ("date7", "10月1日"),
    ("date8", "2019年10月1日~2019年10月7日"),
    ("amount1", "¥100.50"),
    ("amount2", "39.8元"),
    ("amount3", "1234567890"),
    ("phone_number1", "+86-0766-66888866"),
    ("car_number1", "粤A8Z888挂"),
    ("car_number2", "粤AD12345"),
    ("name1", "欧阳娜娜"),
    ("name2", "John O'Brien-Smith"),
    ("phrase1", "配送中"),
    ("enum1", "anything from the enum list"),
    ("short_thing1", "not in the documented table"),
]

INVALID_VALUES = [
    ("thing1", "一" * 21),
    ("thing1", ""),
    ("thing1", "two\nlines"),
    ("number1", "12a"),
    ("number1", "1" * 33),
    ("number1", "-3"),
    ("letter1", "abc1"),
    ("symbol1", "abc"),
    ("symbol1", "######"),
    ("character_string1", "订单123"),
    ("character_string1", "a" * 33),
    ("time1", "25:00"),
    ("time1", "3pm"),
    ("date1", "yesterday"),
    ("date1", "2019年10"),
    ("amount1", "12345678901"),
    ("amount1", "1,000.00"),
    ("amount1", "¥¥100"),
    ("phone_number1", "+86-0766-668888661"),
    ("phone_number1", "call me"),
    ("car_number1", "粤A8Z888挂X"),
    ("car_number1", "粤A-8Z88"),
    ("name1", "欧阳娜娜欧阳娜娜欧阳娜"),
    ("name1", "J" * 21),
    ("name1", "R2D2"),
    ("phrase1", "配送中了吗啊"),
    ("phrase1", "ok"),
]


@pytest.mark.parametrize(("key", "value"), VALID_VALUES)
def test_subscribe_accepts_documented_values(mp, key, value):
    mp.check_content({**SUBSCRIBE_CONTENT, "data": {key: value}})


@pytest.mark.parametrize(("key", "value"), INVALID_VALUES)
def test_subscribe_refuses_values_over_their_limits(mp, key, value):
    with pytest.raises(ValidationError) as refused:
        mp.check_content({**SUBSCRIBE_CONTENT, "data": {key: value}})
    assert refused.value.field == f"data.{key}"


def test_subscribe_content_checks(mp):
    for content, field in [
        ({**SUBSCRIBE_CONTENT, "template_id": ""}, "template_id"),
        ({**SUBSCRIBE_CONTENT, "miniprogram_state": "beta"}, "miniprogram_state"),
        ({**SUBSCRIBE_CONTENT, "data": {}}, "data"),
        ({**SUBSCRIBE_CONTENT, "data": {"thing1": 5}}, "data.thing1"),
    ]:
        with pytest.raises(ValidationError) as refused:
            mp.check_content(content)
        assert refused.value.field == field
