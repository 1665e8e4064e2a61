"""The Aliyun SMS transport against a local fake of dysmsapi: real HTTP, signed requests,
the documented answers and push payloads."""

import dataclasses
import datetime
import json

import httpx
import pytest
from django.conf import settings

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import Outcome, Outgoing, VendorError
from siyu.messaging.channels.sms_aliyun.signing import signature, string_to_sign
from siyu.messaging.channels.sms_aliyun.transport import AliyunSmsTransport
from tests.messaging.fakes.aliyun_sms import ACCESS_KEY_ID, ACCESS_KEY_SECRET, AliyunSmsFake

TEXT = "亲爱的${name}，您的积分${points}即将到期，回TD退订"
CONTENT = {
    "template_code": "SMS_71390007",
    "text": TEXT,
    "params": {"name": "王芳", "points": "1200"},
}


@pytest.fixture
def fake(settings):
    with AliyunSmsFake() as vendor:
        settings.SIYU_ALIYUN_SMS_URL = vendor.url
        yield vendor


def make_transport(secret: str = ACCESS_KEY_SECRET, **kwargs) -> AliyunSmsTransport:
    return AliyunSmsTransport(
        {"sign_name": "星巴克"},
        {"access_key_id": ACCESS_KEY_ID, "access_key_secret": secret},
        **kwargs,
    )


def message(key: str = "msg-1", phone: str = "+8613800138000", **content) -> Outgoing:
    return Outgoing(key=key, address=phone, content={**CONTENT, **content})


def test_signature_matches_the_worked_example_in_aliyuns_docs():
    # 短信服务 › HTTP协议及签名: AccessKeyId testId, AccessKeySecret testSecret
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert string_to_sign("GET", params).startswith(
        "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    )
    assert "SignName%3D%25E9%2598%25BF" in string_to_sign("GET", params)
    assert signature("testSecret", "GET", params) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_a_signed_send_reaches_aliyun_with_the_documented_parameters(fake):
    [result] = make_transport().send([message()])

    assert result.outcome == Outcome.SENT and result.key == "msg-1"
    [sms] = fake.sent
    assert result.vendor_id == sms.biz_id
    assert sms.phone == "13800138000"  # mainland numbers go without +86
    assert sms.params == {"name": "王芳", "points": "1200"}
    assert (sms.out_id, sms.sign_name, sms.template_code) == ("msg-1", "星巴克", "SMS_71390007")
    request = fake.requests[0]
    assert request.method == "POST" and request.query == {}  # nothing personal in the URL
    query = request.form()
    assert query["Action"] == "SendSms" and query["Format"] == "JSON"
    assert query["Version"] == "2017-05-25" and query["RegionId"] == "cn-hangzhou"
    assert query["SignatureMethod"] == "HMAC-SHA1" and query["SignatureVersion"] == "1.0"


def test_international_numbers_keep_their_country_code_and_a_template_may_set_the_sign(fake):
    make_transport().send([message(phone="+85261234567", sign_name="星巴克香港")])
    assert (fake.sent[0].phone, fake.sent[0].sign_name) == ("85261234567", "星巴克香港")


def test_a_wrong_secret_or_an_unknown_key_fails_for_good(fake):
    [result] = make_transport(secret="not-the-secret").send([message()])  # noqa: S106
    assert result.outcome == Outcome.FAILED and result.code == "SignatureDoesNotMatch"

    transport = AliyunSmsTransport({"sign_name": "星巴克"}, {"access_key_id": "LTAI-x"})
    [result] = transport.send([message()])
    assert result.outcome == Outcome.FAILED and result.code == "InvalidAccessKeyId.NotFound"
    assert fake.sent == []


def test_flow_control_is_retried_after_the_window_it_names(fake):
    fake.rate_limit_next = 1
    [limited] = make_transport().send([message()])
    assert limited.outcome == Outcome.RETRY and limited.code == "isv.BUSINESS_LIMIT_CONTROL"
    assert limited.retry_after == 60.0
    [sent] = make_transport().send([message()])
    assert sent.outcome == Outcome.SENT and len(fake.sent) == 1


def test_an_invalid_number_fails_with_aliyuns_code(fake):
    fake.fail_numbers = {"13800138000"}
    [result] = make_transport().send([message()])
    assert result.outcome == Outcome.FAILED and result.code == "isv.MOBILE_NUMBER_ILLEGAL"


def test_template_errors_and_missing_parameters_fail_for_good(fake):
    fake.templates = {"SMS_71390007": TEXT}
    [missing] = make_transport().send([message(params={"name": "王芳"})])
    assert missing.outcome == Outcome.FAILED
    assert missing.code == "isv.TEMPLATE_MISSING_PARAMETERS"
    [unknown] = make_transport().send([message(template_code="SMS_0")])
    assert unknown.code == "isv.SMS_TEMPLATE_ILLEGAL"
    [no_code] = make_transport().send([message(template_code="")])
    assert no_code.outcome == Outcome.FAILED and no_code.code == "MissingTemplateCode"


def test_a_vendor_in_trouble_is_retried_and_a_timeout_is_left_to_the_outbox(fake):
    fake.server_error_next = 1
    [result] = make_transport().send([message()])
    assert result.outcome == Outcome.RETRY and result.code == "http_503"

    fake.delay = 0.5
    impatient = make_transport(http=httpx.Client(timeout=0.1))
    with pytest.raises(httpx.TimeoutException):  # Aliyun may have got it: outcome unknown
        impatient.send([message()])


def test_lookup_finds_a_sent_message_by_its_key(fake):
    transport = make_transport()
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    transport.send([message(key="msg-1"), message(key="msg-2")])

    found = transport.lookup(message(key="msg-2"), since)
    assert found is not None and found.outcome == Outcome.SENT and found.key == "msg-2"
    # not found: too recent to tell (asked again later), or long enough ago to resend
    with pytest.raises(VendorError) as early:
        transport.lookup(message(key="never-sent"), since)
    assert early.value.retryable
    long_ago = since - datetime.timedelta(seconds=settings.SIYU_ALIYUN_LOOKUP_LAG_SECONDS)
    missing = transport.lookup(message(key="never-sent"), long_ago)
    assert missing.outcome == Outcome.RETRY and missing.code == "not_found"

    fake.report("msg-1", delivered=False, err_code="MK:0001")
    failed = transport.lookup(message(key="msg-1"), since)
    assert failed.outcome == Outcome.FAILED and failed.code == "MK:0001"
    query = fake.requests[-1].form()
    assert query["Action"] == "QuerySendDetails" and query["PhoneNumber"] == "13800138000"
    assert query["PageSize"] == "50" and query["CurrentPage"] == "1"


def test_lookup_pages_through_a_busy_day(fake):
    transport = make_transport()
    since = datetime.datetime.now(datetime.UTC)
    transport.send([message(key="msg-0")])
    # 54 more to the same number that day: the last is on the second page of 50
    fake.sent += [dataclasses.replace(fake.sent[0], out_id=f"msg-{n}") for n in range(1, 55)]
    assert transport.lookup(message(key="msg-54"), since).outcome == Outcome.SENT
    assert fake.requests[-1].form()["CurrentPage"] == "2"


def test_receipts_parse_the_documented_smsreport_push():
    body = json.dumps(
        [
            {
                "phone_number": "13811112222",
                "send_time": "2017-01-01 00:00:00",
                "report_time": "2017-01-01 00:00:05",
                "success": True,
                "err_code": "DELIVERED",
                "err_msg": "用户接收成功",
                "sms_size": "1",
                "biz_id": "12345^0",
                "out_id": "67890",
            },
            {
                "phone_number": "85261234567",
                "send_time": "2017-01-01 00:00:00",
                "report_time": "2017-01-01 00:01:00",
                "success": False,
                "err_code": "MK:0001",
                "err_msg": "用户接收失败",
                "sms_size": "1",
                "biz_id": "12346^0",
                "out_id": "67891",
            },
        ],
        ensure_ascii=False,
    ).encode()
    delivered, failed = make_transport().receipts(body, {})
    assert delivered.delivered and (delivered.vendor_id, delivered.key) == ("12345^0", "67890")
    assert delivered.address == "+8613811112222" and delivered.code == ""
    assert delivered.at == datetime.datetime(2016, 12, 31, 16, 0, 5, tzinfo=datetime.UTC)
    assert not failed.delivered and failed.code == "MK:0001" and failed.reason == "用户接收失败"
    assert failed.address == "+85261234567"


def test_replies_parse_the_documented_smsup_push():
    body = json.dumps(
        [
            {
                "phone_number": "13811112222",
                "content": "TD",
                "send_time": "2017-09-01 00:00:00",
                "dest_code": "1234",
                "sequence_id": "1234567890",
            }
        ]
    ).encode()
    [reply] = make_transport().replies(body, {})
    assert (reply.address, reply.text) == ("+8613811112222", "TD")
    assert reply.at == datetime.datetime(2017, 8, 31, 16, 0, tzinfo=datetime.UTC)
    with pytest.raises(ValidationError):
        make_transport().replies(b"not json", {})


def test_check_content_measures_the_text_a_recipient_reads():
    transport = make_transport()
    transport.check_content(CONTENT)  # a normal message passes

    long_value = {"name": "王" * 700, "points": "1"}
    with pytest.raises(ValidationError) as exc:
        transport.check_content({**CONTENT, "params": long_value})
    assert exc.value.field == "content.text" and "segments" in exc.value.message

    with pytest.raises(ValidationError) as exc:
        transport.check_content({**CONTENT, "params": {"name": "王芳"}})
    assert exc.value.field == "content.params" and "${points}" in exc.value.message


def batch(n: int, ref: str = "batch:abc:0") -> list[Outgoing]:
    messages = [
        message(key=f"k{i}", phone=f"+86138001380{i:02d}", params={"name": f"客户{i}"})
        for i in range(n)
    ]
    for m in messages:
        m.ref = ref
    return messages


def test_several_messages_go_in_one_signed_send_batch_sms(fake):
    results = make_transport().send(batch(3))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert len({r.vendor_id for r in results}) == 1
    (call,) = [r.form() for r in fake.requests if r.form().get("Action") == "SendBatchSms"]
    assert json.loads(call["PhoneNumberJson"]) == ["13800138000", "13800138001", "13800138002"]
    assert json.loads(call["TemplateParamJson"])[2] == {"name": "客户2"}
    assert json.loads(call["SignNameJson"]) == ["星巴克"] * 3 and call["OutId"] == "batch:abc:0"
    assert [s.params["name"] for s in fake.sent] == ["客户0", "客户1", "客户2"]


def test_a_bad_number_in_a_batch_fails_alone(fake):
    fake.fail_numbers = {"13800138001"}
    results = {r.key: r for r in make_transport().send(batch(3))}
    assert results["k1"].outcome == Outcome.FAILED
    assert results["k1"].code == "isv.MOBILE_NUMBER_ILLEGAL"
    assert {results["k0"].outcome, results["k2"].outcome} == {Outcome.SENT}
    # the others went one by one, each with its own key as OutId
    assert sorted(s.out_id for s in fake.sent) == ["k0", "k2"]


def test_lookup_finds_a_batched_message_by_its_batch_reference(fake):
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    transport = make_transport()
    sent = batch(2)
    transport.send(sent)
    assert transport.lookup(sent[1], since).outcome == Outcome.SENT
    other = batch(1, ref="batch:zzz:0")[0]
    other.key, other.address = "k-other", sent[1].address
    with pytest.raises(VendorError):  # not that batch's, and too recent to be sure
        transport.lookup(other, since)
