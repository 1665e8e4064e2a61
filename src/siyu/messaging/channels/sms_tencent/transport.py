"""Tencent Cloud SMS (腾讯云短信, API version 2021-01-11).

Every call is a POST of a JSON body to the endpoint with the X-TC-Action, X-TC-Version,
X-TC-Timestamp and X-TC-Region headers and a TC3-HMAC-SHA256 Authorization (signing.py).
Answers are HTTP 200 with `{"Response": {..., "RequestId"}}`, or
`{"Response": {"Error": {"Code", "Message"}, "RequestId"}}` when the whole call fails.

- send: `SendSms` to one number (PhoneNumberSet in E.164, SmsSdkAppId, SignName, TemplateId,
  TemplateParamSet, SessionContext = our idempotency key). Each number's outcome is in
  `SendStatusSet[].Code`: "Ok", or an error code of the table below.
- lookup: `PullSmsSendStatusByPhoneNumber` (BeginTime/EndTime in unix seconds, Offset fixed
  at 0, Limit ≤ 100, PhoneNumber, SmsSdkAppId), matching SessionContext. It lists delivery
  reports, so a message the carrier has not reported on yet is not there; and Tencent fills
  SessionContext there only once its SMS helper enables it for the account.
- receipts: the 短信下发状态通知 callback (a JSON list: mobile, nationcode, report_status
  SUCCESS/FAIL, errmsg, description, sid = SerialNo, user_receive_time); replies: the 短信回复
  callback (one object: mobile, nationcode, text, sign, time, extend). Neither carries
  SessionContext: receipts are matched by SerialNo.

Errors, matched on the code (in `Error.Code` or `SendStatusSet[].Code`):

| Code | siyu |
| --- | --- |
| LimitExceeded.PhoneNumberThirtySecondLimit | retry after 30 s |
| LimitExceeded.PhoneNumberOneHourLimit | retry after 1 h |
| LimitExceeded.*Daily* (PhoneNumberDailyLimit, AppDailyLimit, …) | retry at 00:00 UTC+8 |
| LimitExceeded.DeliveryFrequencyLimit, other LimitExceeded.* | retry after 60 s |
| LimitExceeded.PhoneNumberCountLimit (over 200 numbers: our bug) | permanent |
| FailedOperation.InsufficientBalanceInSmsPackage | retry after 1 h (top-up) |
| UnauthorizedOperation.SerivceSuspendDueToArrears (sic) | retry after 1 h (top-up) |
| FailedOperation.MarketingSendTimeConstraint (08:00–22:00 only) | retry at 08:00 UTC+8 |
| RequestLimitExceeded, RequestLimitExceeded.* | retry after 1 s |
| InternalError, InternalError.* | retry after 10 s |
| AuthFailure.*, InvalidParameter*, MissingParameter* | permanent |
| FailedOperation.* (TemplateIncorrectOrUnapproved, SignatureIncorrectOrUnapproved, …) | permanent |
| UnauthorizedOperation.*, UnsupportedOperation.*, any other code | permanent |
| HTTP 5xx or 429, or a 2xx body without `Response` | retry |
| another status with a body without `Response` (a wrong base URL or proxy) | permanent |
"""

import datetime
import json
import re
import time
from typing import Any

import httpx
from django.conf import settings

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import (
    FieldSpec,
    Outcome,
    Outgoing,
    Receipt,
    Reply,
    SendResult,
    Transport,
    VendorError,
)
from siyu.messaging.channels.sms_tencent.signing import authorization
from siyu.messaging.limits import check_sms

API_VERSION = "2021-01-11"
SERVICE = "sms"
DEFAULT_REGION = "ap-guangzhou"
CONTENT_TYPE = "application/json; charset=utf-8"
CHINA_TIME = datetime.timezone(datetime.timedelta(hours=8), "Asia/Shanghai")
PLACEHOLDER = re.compile(r"\{(\d+)\}")

LOOKUP_WINDOW = 7 * 86400 - 60  # the pull API reaches 7 days back
PULL_LIMIT = 100  # its largest page; Offset is fixed at 0, so this is all it shows
CLOCK_SLACK = 60  # seconds: our clock and Tencent's may disagree a little

OPERATOR_MUST_ACT = 3600.0  # top-ups take a person
RETRY_AFTER = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
    "FailedOperation.InsufficientBalanceInSmsPackage": OPERATOR_MUST_ACT,
    # Tencent's own spelling, and the corrected one should they fix it
    "UnauthorizedOperation.SerivceSuspendDueToArrears": OPERATOR_MUST_ACT,
    "UnauthorizedOperation.ServiceSuspendDueToArrears": OPERATOR_MUST_ACT,
}


class TencentSmsTransport(Transport):
    kind = "sms_tencent"
    consent_channel = "sms"
    address_identity = "phone"
    max_batch = 1  # one SessionContext per message, so one SendSms per message
    # SendSms allows 3,000 calls/s; carriers' per-number limits matter more than that ceiling
    default_rate = 50.0
    settings_fields = (
        FieldSpec("sms_sdk_app_id", "SMS SdkAppId", help="The SMS application's ID, e.g. 1400…"),
        FieldSpec(
            "sign_name",
            "Sign name",
            required=False,
            help="The approved signature (签名); needed for mainland numbers.",
        ),
        FieldSpec("region", "Region", default=DEFAULT_REGION, help="e.g. ap-guangzhou."),
    )
    secret_fields = (FieldSpec("secret_id", "SecretId"), FieldSpec("secret_key", "SecretKey"))
    template_fields = (
        FieldSpec("template_code", "Template ID", help="The approved template's ID, e.g. 1110."),
        FieldSpec(
            "text",
            "Template text",
            kind="textarea",
            help="The approved text with {1}, {2} placeholders, for length checks and previews.",
        ),
        FieldSpec(
            "params",
            "Parameters",
            kind="param_list",
            template=True,
            required=False,
            help="The values of {1}, {2}, … in order, rendered per message.",
        ),
        FieldSpec(
            "sign_name",
            "Sign name",
            required=False,
            help="Overrides the channel's sign name.",
        ),
    )

    def check_content(self, content: dict[str, Any]) -> None:
        text = fill_placeholders(content.get("text") or "", content.get("params") or [])
        check_sms(text, self._sign_name(content), field="content.text")

    def send(self, batch: list[Outgoing]) -> list[SendResult]:
        return [self._send_one(message) for message in batch]

    def lookup(self, message: Outgoing, since: datetime.datetime) -> SendResult | None:
        now = int(time.time())
        answer = self._call(
            "PullSmsSendStatusByPhoneNumber",
            {
                "BeginTime": max(int(since.timestamp()) - CLOCK_SLACK, now - LOOKUP_WINDOW),
                "EndTime": now + CLOCK_SLACK,
                "Offset": 0,
                "Limit": PULL_LIMIT,
                "PhoneNumber": message.address,
                "SmsSdkAppId": self.settings.get("sms_sdk_app_id") or "",
            },
        )
        for status in answer.get("PullSmsSendStatusSet") or []:
            if status.get("SessionContext") == message.key:
                serial_no = str(status.get("SerialNo") or "")
                if status.get("ReportStatus") == "FAIL":
                    reason = str(status.get("Description") or "")
                    return SendResult(message.key, Outcome.FAILED, serial_no, "FAIL", reason)
                return SendResult(message.key, Outcome.SENT, vendor_id=serial_no)
        # not reported on yet, or SessionContext not enabled: Tencent cannot tell
        return None

    def receipts(self, body: bytes, headers: dict[str, str]) -> list[Receipt]:
        receipts = []
        for item in json_items(body):
            delivered = item.get("report_status") == "SUCCESS"
            receipts.append(
                Receipt(
                    delivered=delivered,
                    vendor_id=str(item.get("sid") or ""),
                    address=e164(item.get("nationcode"), item.get("mobile")),
                    code="" if delivered else str(item.get("errmsg") or ""),
                    reason="" if delivered else str(item.get("description") or ""),
                    at=china_time(item.get("user_receive_time")),
                )
            )
        return receipts

    def replies(self, body: bytes, headers: dict[str, str]) -> list[Reply]:
        return [
            Reply(
                address=e164(item.get("nationcode"), item.get("mobile")),
                text=str(item.get("text") or ""),
                at=unix_time(item.get("time")),
            )
            for item in json_items(body)
        ]

    def _sign_name(self, content: dict[str, Any]) -> str:
        return content.get("sign_name") or self.settings.get("sign_name") or ""

    def _send_one(self, message: Outgoing) -> SendResult:
        payload: dict[str, Any] = {
            "PhoneNumberSet": [message.address],
            "SmsSdkAppId": self.settings.get("sms_sdk_app_id") or "",
            "TemplateId": message.content.get("template_code") or "",
            "TemplateParamSet": [str(value) for value in message.content.get("params") or []],
            "SessionContext": message.key,
        }
        if sign_name := self._sign_name(message.content):
            payload["SignName"] = sign_name
        try:
            answer = self._call("SendSms", payload)
            status = (answer.get("SendStatusSet") or [None])[0]  # one number, one status
            if not isinstance(status, dict):
                raise VendorError("bad_response", "no SendStatus in the answer", retryable=True)
            code = str(status.get("Code") or "")
            if code.lower() != "ok":
                raise error_for(code, str(status.get("Message") or ""))
        except VendorError as error:
            return error.result(message.key)
        return SendResult(message.key, Outcome.SENT, vendor_id=str(status.get("SerialNo") or ""))

    def _call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One signed call; `Response` when it has no Error, else VendorError. httpx errors
        (timeouts, refused connections) pass through: whether Tencent got the call is
        unknown, and the outbox treats that differently from an answer."""
        base = settings.SIYU_TENCENT_SMS_URL
        host = httpx.URL(base).netloc.decode()  # what httpx sends as Host, port included
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(time.time())
        signed = authorization(
            secret_id=self.secrets.get("secret_id") or "",
            secret_key=self.secrets.get("secret_key") or "",
            service=SERVICE,
            host=host,
            content_type=CONTENT_TYPE,
            payload=body,
            timestamp=timestamp,
        )
        headers = {
            "Authorization": signed,
            "Content-Type": CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": action,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": API_VERSION,
            "X-TC-Region": self.settings.get("region") or DEFAULT_REGION,
        }
        return _answer(self.http.post(f"{base}/", content=body, headers=headers))


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    answer = body.get("Response") if isinstance(body, dict) else None
    status = response.status_code
    if not isinstance(answer, dict):
        transient = status >= 500 or status == 429 or response.is_success
        message = "Tencent Cloud's answer has no Response"
        raise VendorError(f"http_{status}", message, retryable=transient)
    error = answer.get("Error")
    if isinstance(error, dict):
        raise error_for(str(error.get("Code") or ""), str(error.get("Message") or ""))
    return answer


def error_for(code: str, message: str) -> VendorError:
    retry_after = retry_after_for(code)
    return VendorError(code, message, retryable=retry_after is not None, retry_after=retry_after)


def retry_after_for(code: str) -> float | None:
    """Seconds until a retry can succeed; None when retrying cannot help."""
    if code in RETRY_AFTER:
        return RETRY_AFTER[code]
    if code == "LimitExceeded.PhoneNumberCountLimit":
        return None
    if code.startswith("LimitExceeded.") and "Daily" in code:
        return seconds_until_china_hour(0)  # daily limits reset at midnight Beijing time
    if code == "FailedOperation.MarketingSendTimeConstraint":
        return seconds_until_china_hour(8)
    if code == "RequestLimitExceeded" or code.startswith("RequestLimitExceeded."):
        return 1.0
    if code == "InternalError" or code.startswith("InternalError."):
        return 10.0
    if code.startswith("LimitExceeded."):
        return 60.0
    return None


def seconds_until_china_hour(hour: int) -> float:
    now = datetime.datetime.now(CHINA_TIME)
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if at <= now:
        at += datetime.timedelta(days=1)
    return (at - now).total_seconds()


def fill_placeholders(text: str, params: list[Any]) -> str:
    """The template text as a recipient reads it: {1}, {2}, … replaced by the values."""

    def value(match: re.Match[str]) -> str:
        index = int(match.group(1))
        if not 1 <= index <= len(params):
            raise ValidationError(
                "content.params",
                "the template text uses {%(index)s} but only %(n)s parameters are given",
                {"index": index, "n": len(params)},
            )
        return str(params[index - 1])

    return PLACEHOLDER.sub(value, text)


def e164(nationcode: Any, mobile: Any) -> str:
    mobile = str(mobile or "").strip()
    if not mobile or mobile.startswith("+"):
        return mobile
    return f"+{str(nationcode or '86').strip().lstrip('+')}{mobile}"


def china_time(value: Any) -> datetime.datetime | None:
    """The callback's "2015-10-17 08:03:04", Beijing time."""
    try:
        return datetime.datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=CHINA_TIME
        )
    except ValueError:
        return None


def unix_time(value: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromtimestamp(int(value), datetime.UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def json_items(body: bytes) -> list[dict[str, Any]]:
    """The objects of a callback body: a list (status reports) or one object (a reply)."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ValidationError("body", "expected JSON") from exc
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise ValidationError("body", "expected an object or a list of objects")
    return items
