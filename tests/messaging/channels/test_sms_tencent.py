"""The Tencent Cloud SMS transport against a local fake of the SMS API: real HTTP, TC3
signatures, the documented answers and callback payloads."""

import datetime
import json

import httpx
import pytest

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import Outcome, Outgoing
from siyu.messaging.channels.sms_tencent import signing
from siyu.messaging.channels.sms_tencent.transport import TencentSmsTransport
from tests.messaging.fakes.tencent_sms import (
    SECRET_ID,
    SECRET_KEY,
    SMS_SDK_APP_ID,
    TencentSmsFake,
)

TEXT = "{1}您好，您的积分{2}即将到期，回TD退订"
CONTENT = {"template_code": "1110", "text": TEXT, "params": ["王芳", "1200"]}


@pytest.fixture
def fake(settings):
    with TencentSmsFake() as vendor:
        settings.SIYU_TENCENT_SMS_URL = vendor.url
        yield vendor


def make_transport(secret_key: str = SECRET_KEY, **kwargs) -> TencentSmsTransport:
    return TencentSmsTransport(
        {"sms_sdk_app_id": SMS_SDK_APP_ID, "sign_name": "星巴克", "region": "ap-guangzhou"},
        {"secret_id": SECRET_ID, "secret_key": secret_key},
        **kwargs,
    )


def message(key: str = "msg-1", phone: str = "+8613800138000", **content) -> Outgoing:
    return Outgoing(key=key, address=phone, content={**CONTENT, **content})


def test_signature_matches_the_worked_example_in_tencents_docs():
    # 签名方法 v3: CVM DescribeInstances, SecretKey Gu5t9xGARNpq86cd98joQYCN3EXAMPLE
    payload = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    host, content_type = "cvm.tencentcloudapi.com", "application/json; charset=utf-8"
    assert signing.sha256_hex(payload) == (
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    canonical = signing.canonical_request(host, content_type, payload)
    assert signing.sha256_hex(canonical.encode()) == (
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    header = signing.authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",  # noqa: S106
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",  # noqa: S106
        service="cvm",
        host=host,
        content_type=content_type,
        payload=payload,
        timestamp=1551113065,
    )
    assert header == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_a_signed_send_reaches_tencent_with_the_documented_parameters(fake):
    [result] = make_transport().send([message()])

    assert result.outcome == Outcome.SENT and result.key == "msg-1"
    [sms] = fake.sent
    assert result.vendor_id == sms.serial_no
    assert (sms.phone, sms.params, sms.session_context) == (
        "+8613800138000",
        ["王芳", "1200"],
        "msg-1",
    )
    assert (sms.sign_name, sms.template_id) == ("星巴克", "1110")
    request = fake.requests[0]
    assert request.headers["x-tc-action"] == "SendSms"
    assert request.headers["x-tc-version"] == "2021-01-11"
    assert request.headers["x-tc-region"] == "ap-guangzhou"
    assert request.json()["SmsSdkAppId"] == SMS_SDK_APP_ID


def test_a_wrong_secret_or_an_unknown_id_fails_for_good(fake):
    [result] = make_transport(secret_key="not-the-key").send([message()])  # noqa: S106
    assert result.outcome == Outcome.FAILED and result.code == "AuthFailure.SignatureFailure"

    transport = TencentSmsTransport(
        {"sms_sdk_app_id": SMS_SDK_APP_ID, "sign_name": "星巴克"},
        {"secret_id": "AKIDunknown", "secret_key": SECRET_KEY},
    )
    [result] = transport.send([message()])
    assert result.outcome == Outcome.FAILED and result.code == "AuthFailure.SecretIdNotFound"
    assert fake.sent == []


def test_a_rate_limit_is_retried_after_its_window(fake):
    fake.rate_limit_next = 1
    [limited] = make_transport().send([message()])
    assert limited.outcome == Outcome.RETRY
    assert limited.code == "LimitExceeded.PhoneNumberThirtySecondLimit"
    assert limited.retry_after == 30.0
    [sent] = make_transport().send([message()])
    assert sent.outcome == Outcome.SENT and len(fake.sent) == 1


def test_an_invalid_number_fails_with_tencents_code(fake):
    fake.fail_numbers = {"+8613800138000"}
    [result] = make_transport().send([message()])
    assert result.outcome == Outcome.FAILED
    assert result.code == "InvalidParameterValue.IncorrectPhoneNumber"


def test_missing_settings_fail_for_good(fake):
    no_sign = TencentSmsTransport(
        {"sms_sdk_app_id": SMS_SDK_APP_ID}, {"secret_id": SECRET_ID, "secret_key": SECRET_KEY}
    )
    [result] = no_sign.send([message()])
    assert result.outcome == Outcome.FAILED
    assert result.code == "FailedOperation.SignatureIncorrectOrUnapproved"
    [result] = make_transport().send([message(template_code="")])
    assert result.outcome == Outcome.FAILED and result.code == "MissingParameter"


def test_daily_limits_and_balance_wait_long_and_internal_errors_soon():
    from siyu.messaging.channels.sms_tencent.transport import error_for

    daily = error_for("LimitExceeded.PhoneNumberDailyLimit", "")
    assert daily.retryable and 0 < daily.retry_after <= 86400
    balance = error_for("FailedOperation.InsufficientBalanceInSmsPackage", "")
    assert balance.retryable and balance.retry_after == 3600.0
    assert error_for("InternalError.Timeout", "").retry_after == 10.0
    assert error_for("RequestLimitExceeded", "").retry_after == 1.0
    for permanent in (
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
        "LimitExceeded.PhoneNumberCountLimit",
    ):
        assert not error_for(permanent, "").retryable


def test_a_vendor_in_trouble_is_retried_and_a_timeout_is_left_to_the_outbox(fake):
    fake.server_error_next = 1
    [result] = make_transport().send([message()])
    assert result.outcome == Outcome.RETRY and result.code == "http_502"

    fake.delay = 0.5
    impatient = make_transport(http=httpx.Client(timeout=0.1))
    with pytest.raises(httpx.TimeoutException):  # Tencent may have got it: outcome unknown
        impatient.send([message()])


def test_lookup_finds_a_reported_message_by_its_key(fake):
    transport = make_transport()
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    transport.send([message(key="msg-1"), message(key="msg-2")])

    # accepted but not reported on yet: the pull API cannot tell
    assert transport.lookup(message(key="msg-2"), since) is None
    fake.report("msg-2")
    found = transport.lookup(message(key="msg-2"), since)
    assert found is not None and found.outcome == Outcome.SENT
    assert found.vendor_id == fake.sent[1].serial_no
    assert transport.lookup(message(key="never-sent"), since) is None

    fake.report("msg-1", delivered=False, description="用户关机")
    failed = transport.lookup(message(key="msg-1"), since)
    assert failed.outcome == Outcome.FAILED and failed.reason == "用户关机"
    pull = fake.requests[-1]
    assert pull.headers["x-tc-action"] == "PullSmsSendStatusByPhoneNumber"
    assert pull.json()["PhoneNumber"] == "+8613800138000" and pull.json()["Offset"] == 0


def test_receipts_parse_the_documented_status_callback():
    body = json.dumps(
        [
            {
                "user_receive_time": "2015-10-17 08:03:04",
                "nationcode": "86",
                "mobile": "13800138000",
                "report_status": "SUCCESS",
                "errmsg": "DELIVRD",
                "description": "用户短信送达成功",
                "sid": "2640:1045710669157053657849499619",
            },
            {
                "user_receive_time": "2015-10-17 08:03:09",
                "nationcode": "852",
                "mobile": "61234567",
                "report_status": "FAIL",
                "errmsg": "MK:0001",
                "description": "用户关机",
                "sid": "2640:1045710669157053657849499620",
            },
        ],
        ensure_ascii=False,
    ).encode()
    delivered, failed = make_transport().receipts(body, {})
    assert delivered.delivered and delivered.vendor_id == "2640:1045710669157053657849499619"
    assert delivered.address == "+8613800138000" and delivered.code == ""
    assert delivered.at == datetime.datetime(2015, 10, 17, 0, 3, 4, tzinfo=datetime.UTC)
    assert not failed.delivered and (failed.code, failed.reason) == ("MK:0001", "用户关机")
    assert failed.address == "+85261234567"


def test_replies_parse_the_documented_reply_callback():
    body = json.dumps(
        {
            "extend": "",
            "mobile": "13800138000",
            "nationcode": "86",
            "sign": "星巴克",
            "text": "退订",
            "time": 1457336869,
        },
        ensure_ascii=False,
    ).encode()
    [reply] = make_transport().replies(body, {})
    assert (reply.address, reply.text) == ("+8613800138000", "退订")
    assert reply.at == datetime.datetime(2016, 3, 7, 7, 47, 49, tzinfo=datetime.UTC)
    with pytest.raises(ValidationError):
        make_transport().receipts(b"[1, 2]", {})


def test_check_content_measures_the_text_a_recipient_reads():
    transport = make_transport()
    transport.check_content(CONTENT)  # a normal message passes

    with pytest.raises(ValidationError) as exc:
        transport.check_content({**CONTENT, "params": ["王" * 700, "1"]})
    assert exc.value.field == "content.text" and "segments" in exc.value.message

    with pytest.raises(ValidationError) as exc:
        transport.check_content({**CONTENT, "params": ["王芳"]})
    assert exc.value.field == "content.params" and "{2}" in exc.value.message
