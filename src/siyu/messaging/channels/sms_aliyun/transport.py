"""Aliyun SMS (阿里云短信服务, dysmsapi, API version 2017-05-25).

Calls are RPC style: the common parameters (AccessKeyId, Action, Format=JSON, RegionId,
SignatureMethod=HMAC-SHA1, SignatureNonce, SignatureVersion=1.0, Timestamp, Version) and the
action's own, signed (signing.py) and POSTed as an application/x-www-form-urlencoded body, as
the RPC request syntax allows besides GET: phone numbers and message parameters then stay out
of URLs, proxy logs and httpx's request log.

- send: `SendSms` to one number (PhoneNumbers, SignName, TemplateCode, TemplateParam as a
  JSON string, OutId = our idempotency key). The answer `{"Code": "OK", "BizId": ...}`.
  Several messages go in one `SendBatchSms` (up to 100: PhoneNumberJson, SignNameJson,
  TemplateCode, TemplateParamJson as parallel JSON arrays, OutId = the batch's reference,
  which the outbox stored with each message before the call); Aliyun answers for the call.
- lookup: `QuerySendDetails` (PhoneNumber, SendDate yyyyMMdd, PageSize, CurrentPage) for each
  day since the message was marked sending, matching `OutId` (the key, or the batch's
  reference). SendStatus 1 waiting for the
  carrier, 2 failed, 3 delivered. The records carry no BizId.
- receipts: the SmsReport HTTP push (a JSON list: phone_number, success, err_code, err_msg,
  biz_id, out_id, report_time); replies: the SmsUp HTTP push (phone_number, content,
  send_time, dest_code, sequence_id).

Mainland numbers go without a country code (13800138000), others as country code + number
without "+" (85261234567), as SendSms documents for PhoneNumbers.

Errors, matched on `Code` (Aliyun may reword Message), and what siyu does:

| Code | meaning | siyu |
| --- | --- | --- |
| isv.BUSINESS_LIMIT_CONTROL | per-number flow control, 分钟级/小时级/天级 | retry |
| isv.DAY_LIMIT_CONTROL | the daily quota set in the console | retry at 00:00 UTC+8 |
| isv.MONTH_LIMIT_CONTROL | the monthly quota set in the console | retry after 1 h |
| isv.AMOUNT_NOT_ENOUGH | balance too low | retry after 1 h |
| isv.OUT_OF_SERVICE | 业务停机; the docs give 余额不足 as its cause | retry after 1 h |
| Throttling, Throttling.* | API call frequency | retry after 1 s |
| isp.SYSTEM_ERROR, ServiceUnavailable, InternalError | Aliyun in trouble | retry after 10 s |
| SignatureNonceUsed | a nonce seen before (each call draws anew) | retry after 1 s |
| isv.MOBILE_NUMBER_ILLEGAL | not a valid number | permanent |
| isv.TEMPLATE_MISSING_PARAMETERS | a ${name} without a value | permanent |
| isv.SMS_TEMPLATE_ILLEGAL, isv.SMS_SIGNATURE_ILLEGAL | unknown or unapproved | permanent |
| InvalidAccessKeyId.NotFound, SignatureDoesNotMatch | wrong key or secret | permanent |
| Missing<Parameter> | a required parameter is empty | permanent |
| any other Code | | permanent |
| HTTP 5xx or 429, or a 2xx body that is not JSON | a gateway or Aliyun in trouble | retry |
| another status with a body that is not JSON | a wrong base URL or proxy | permanent |

BUSINESS_LIMIT_CONTROL waits for the window its message names: 60 s, 1 h, or until midnight.
Midnight is Beijing time, when Aliyun's daily counters reset.
"""

import datetime
import json
import re
import uuid
from collections.abc import Iterator
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
from siyu.messaging.channels.sms_aliyun.signing import canonical_query, percent_encode, signature
from siyu.messaging.limits import check_sms

API_VERSION = "2017-05-25"
REGION_ID = "cn-hangzhou"  # dysmsapi has one mainland endpoint; the docs sign with this region
CHINA_TIME = datetime.timezone(datetime.timedelta(hours=8), "Asia/Shanghai")
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")

LOOKUP_DAYS = 30  # QuerySendDetails keeps the last 30 days
PAGE_SIZE = 50  # the largest page QuerySendDetails serves
# errors a batch gets when one of its numbers or parameter sets is bad
PER_MESSAGE_ERRORS = {
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.INVALID_JSON_PARAM",
    "isv.PARAM_LENGTH_LIMIT",
}
MAX_PAGES = 20  # 1,000 messages to one number in one day is past any real campaign

VENDOR_TROUBLE = 10.0  # seconds
OPERATOR_MUST_ACT = 3600.0  # top-ups and quota changes take a person
RETRY_AFTER = {
    "isp.SYSTEM_ERROR": VENDOR_TROUBLE,
    "ServiceUnavailable": VENDOR_TROUBLE,
    "InternalError": VENDOR_TROUBLE,
    "SignatureNonceUsed": 1.0,
    "isv.AMOUNT_NOT_ENOUGH": OPERATOR_MUST_ACT,
    "isv.OUT_OF_SERVICE": OPERATOR_MUST_ACT,
    "isv.MONTH_LIMIT_CONTROL": OPERATOR_MUST_ACT,
}


class AliyunSmsTransport(Transport):
    kind = "sms_aliyun"
    consent_channel = "sms"
    address_identity = "phone"
    # SendBatchSms carries up to 100 numbers, each with its own parameters and sign name
    max_batch = 100
    # SendSms allows 5,000 calls/s per account; carriers' per-number flow control and our
    # own pacing matter more than that ceiling
    default_rate = 50.0
    settings_fields = (
        FieldSpec("sign_name", "Sign name", help="The approved signature (签名) shown as 【…】."),
    )
    secret_fields = (
        FieldSpec("access_key_id", "AccessKey ID"),
        FieldSpec("access_key_secret", "AccessKey secret"),
    )
    template_fields = (
        FieldSpec("template_code", "Template code", help="The approved template, e.g. SMS_1530…"),
        FieldSpec(
            "text",
            "Template text",
            kind="textarea",
            help="The approved text with ${name} placeholders, for length checks and previews.",
        ),
        FieldSpec(
            "params",
            "Parameters",
            kind="params",
            template=True,
            required=False,
            help="The value of each ${name}, rendered per message.",
        ),
        FieldSpec(
            "sign_name",
            "Sign name",
            required=False,
            help="Overrides the channel's sign name.",
        ),
    )

    def check_content(self, content: dict[str, Any]) -> None:
        text = fill_placeholders(content.get("text") or "", content.get("params") or {})
        check_sms(text, self._sign_name(content), field="content.text")

    def send(self, batch: list[Outgoing]) -> list[SendResult]:
        if len(batch) == 1 or not batch[0].ref:
            # without a batch reference a crash could not be asked about: one by one
            return [self._send_one(message) for message in batch]
        # one template per call: a broadcast's batch is one group
        groups: dict[str, list[Outgoing]] = {}
        for message in batch:
            groups.setdefault(message.content.get("template_code") or "", []).append(message)
        results: list[SendResult] = []
        for n, messages in enumerate(groups.values()):
            ref = batch[0].ref if n == 0 else f"{batch[0].ref}~{n}"
            results += self._send_batch(messages, ref)
        return results

    def _send_batch(self, messages: list[Outgoing], ref: str) -> list[SendResult]:
        """One SendBatchSms call. Aliyun answers for the whole call, so an error that one bad
        number or parameter can cause is retried one message at a time (each with its own
        key as OutId), so that the others still go."""
        params = {
            "PhoneNumberJson": _json([vendor_phone(m.address) for m in messages]),
            "SignNameJson": _json([self._sign_name(m.content) for m in messages]),
            "TemplateCode": messages[0].content.get("template_code") or "",
            "TemplateParamJson": _json([m.content.get("params") or {} for m in messages]),
            "OutId": ref,
        }
        try:
            answer = self._call("SendBatchSms", params)
        except VendorError as error:
            if error.code in PER_MESSAGE_ERRORS:
                return [self._send_one(m) for m in messages]
            return [error.result(m.key) for m in messages]
        biz_id = str(answer.get("BizId") or "")
        return [SendResult(m.key, Outcome.SENT, vendor_id=biz_id) for m in messages]

    def lookup(self, message: Outgoing, since: datetime.datetime) -> SendResult | None:
        phone = vendor_phone(message.address)
        today = datetime.datetime.now(CHINA_TIME).date()
        day = max(since.astimezone(CHINA_TIME).date(), today - datetime.timedelta(LOOKUP_DAYS - 1))
        while day <= today:
            for detail in self._send_details(phone, day):
                if _carried(message, str(detail.get("OutId") or "")):
                    return _lookup_result(message.key, detail)
            day += datetime.timedelta(days=1)
        # QuerySendDetails may lag behind SendSms: not finding a recent message proves
        # nothing (ask again later); not finding one sent longer ago than the lag means
        # Aliyun never got it, so the outbox sends it
        lag = datetime.timedelta(seconds=settings.SIYU_ALIYUN_LOOKUP_LAG_SECONDS)
        if datetime.datetime.now(datetime.UTC) - since < lag:
            raise VendorError(
                "lookup_too_early", "the send may not be queryable yet", retryable=True
            )
        return SendResult(message.key, Outcome.RETRY, code="not_found")

    def receipts(self, body: bytes, headers: dict[str, str]) -> list[Receipt]:
        receipts = []
        for item in json_items(body):
            delivered = item.get("success") in (True, "true")
            receipts.append(
                Receipt(
                    delivered=delivered,
                    vendor_id=str(item.get("biz_id") or ""),
                    key=str(item.get("out_id") or ""),
                    address=e164(item.get("phone_number")),
                    code="" if delivered else str(item.get("err_code") or ""),
                    reason="" if delivered else str(item.get("err_msg") or ""),
                    at=china_time(item.get("report_time")),
                )
            )
        return receipts

    def replies(self, body: bytes, headers: dict[str, str]) -> list[Reply]:
        return [
            Reply(
                address=e164(item.get("phone_number")),
                text=str(item.get("content") or ""),
                at=china_time(item.get("send_time")),
            )
            for item in json_items(body)
        ]

    def _sign_name(self, content: dict[str, Any]) -> str:
        return content.get("sign_name") or self.settings.get("sign_name") or ""

    def _send_one(self, message: Outgoing) -> SendResult:
        params = {
            "PhoneNumbers": vendor_phone(message.address),
            "SignName": self._sign_name(message.content),
            "TemplateCode": message.content.get("template_code") or "",
            "OutId": message.key,
        }
        if message.content.get("params"):
            params["TemplateParam"] = json.dumps(message.content["params"], ensure_ascii=False)
        try:
            answer = self._call("SendSms", params)
        except VendorError as error:
            return error.result(message.key)
        return SendResult(message.key, Outcome.SENT, vendor_id=str(answer.get("BizId") or ""))

    def _send_details(self, phone: str, day: datetime.date) -> Iterator[dict[str, Any]]:
        for page in range(1, MAX_PAGES + 1):
            answer = self._call(
                "QuerySendDetails",
                {
                    "PhoneNumber": phone,
                    "SendDate": day.strftime("%Y%m%d"),
                    "PageSize": str(PAGE_SIZE),
                    "CurrentPage": str(page),
                },
            )
            details = (answer.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
            yield from details
            if len(details) < PAGE_SIZE or page * PAGE_SIZE >= int(answer.get("TotalCount") or 0):
                return

    def _call(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        """One signed call; the answer when Code is OK, else VendorError. httpx errors
        (timeouts, refused connections) pass through: whether Aliyun got the call is
        unknown, and the outbox treats that differently from an answer."""
        request = {
            **params,
            "AccessKeyId": self.secrets.get("access_key_id") or "",
            "Action": action,
            "Format": "JSON",
            "RegionId": REGION_ID,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        signed = signature(self.secrets.get("access_key_secret") or "", "POST", request)
        # the form exactly as signed; in the body, phone numbers stay out of URLs and logs
        response = self.http.post(
            f"{settings.SIYU_ALIYUN_SMS_URL}/",
            content=f"Signature={percent_encode(signed)}&{canonical_query(request)}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        return _answer(response)


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if not isinstance(body, dict) or "Code" not in body:
        transient = status >= 500 or status == 429 or response.is_success
        raise VendorError(f"http_{status}", "Aliyun's answer is not JSON", retryable=transient)
    if body["Code"] == "OK":
        return body
    raise error_for(str(body["Code"]), str(body.get("Message") or ""), status)


def error_for(code: str, message: str, status: int = 200) -> VendorError:
    retry_after = retry_after_for(code, message)
    if retry_after is None and (status >= 500 or status == 429):
        retry_after = VENDOR_TROUBLE
    return VendorError(code, message, retryable=retry_after is not None, retry_after=retry_after)


def retry_after_for(code: str, message: str) -> float | None:
    """Seconds until a retry can succeed; None when retrying cannot help."""
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        # the message names the window that was hit: 触发分钟级流控 / 小时级 / 天级
        if "天级" in message:
            return seconds_until_china_midnight()
        return 3600.0 if "小时级" in message else 60.0
    if code == "isv.DAY_LIMIT_CONTROL":
        return seconds_until_china_midnight()
    if code == "Throttling" or code.startswith("Throttling."):
        return 1.0
    return RETRY_AFTER.get(code)


def _carried(message: Outgoing, out_id: str) -> bool:
    """Whether a send with this OutId carried the message: alone (its key), in its batch (the
    batch's reference, or a further call of that batch `<ref>~n`)."""
    if out_id == message.key:
        return True
    ref = message.ref
    return bool(ref) and (out_id == ref or out_id.startswith(f"{ref}~"))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _lookup_result(key: str, detail: dict[str, Any]) -> SendResult:
    if str(detail.get("SendStatus")) == "2":
        return SendResult(
            key,
            Outcome.FAILED,
            code=str(detail.get("ErrCode") or ""),
            reason="the carrier reported the message undelivered",
        )
    return SendResult(key, Outcome.SENT)


def seconds_until_china_midnight() -> float:
    """Daily limits reset at 00:00 Beijing time."""
    now = datetime.datetime.now(CHINA_TIME)
    midnight = datetime.datetime.combine(
        now.date() + datetime.timedelta(days=1), datetime.time(), CHINA_TIME
    )
    return (midnight - now).total_seconds()


def fill_placeholders(text: str, params: dict[str, Any]) -> str:
    """The template text as a recipient reads it: each ${name} replaced by its value."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise ValidationError(
                "content.params",
                "the template text uses ${%(name)s} but no parameter has that name",
                {"name": name},
            )
        return str(params[name])

    return PLACEHOLDER.sub(value, text)


def vendor_phone(address: str) -> str:
    """E.164 to what SendSms expects: mainland numbers without +86, others without +."""
    digits = address.strip().lstrip("+")
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits


def e164(phone: Any) -> str:
    """A number as Aliyun pushes it (mainland without country code) to E.164."""
    phone = str(phone or "").strip()
    if not phone or phone.startswith("+"):
        return phone
    return f"+86{phone}" if len(phone) == 11 and phone.startswith("1") else f"+{phone}"


def china_time(value: Any) -> datetime.datetime | None:
    """Aliyun's push times are Beijing time: "2017-01-01 00:00:00" (older pushes:
    "20170101000000")."""
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S"):
        try:
            return datetime.datetime.strptime(str(value), pattern).replace(tzinfo=CHINA_TIME)
        except ValueError:
            continue
    return None


def json_items(body: bytes) -> list[dict[str, Any]]:
    """The objects of a pushed JSON list (a single object is taken as a list of one)."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ValidationError("body", "expected JSON") from exc
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise ValidationError("body", "expected a list of objects")
    return items
