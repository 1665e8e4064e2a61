"""A fake Tencent Cloud SMS endpoint (API version 2021-01-11, signature v3).

It checks what the real service checks first: the X-TC-* headers, the Authorization's
credential (known SecretId, scope date = the UTC date of X-TC-Timestamp, service "sms"), the
timestamp (5 minutes either way) and the TC3-HMAC-SHA256 signature over the headers the
request says it signed, recomputed here apart from siyu's signing code. Then SendSms and
PullSmsSendStatusByPhoneNumber with the documented answers and error codes. Every answer is
HTTP 200; errors are `{"Response": {"Error": {...}}}` or a SendStatus's Code.

Switches a test flips: `rate_limit_next` (that many numbers answer
LimitExceeded.PhoneNumberThirtySecondLimit), `fail_numbers` (E.164 numbers answering
InvalidParameterValue.IncorrectPhoneNumber), `server_error_next` (that many calls answer HTTP
502 with an HTML page), `delay` (seconds before any answer)."""

import datetime
import hashlib
import hmac
import itertools
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass

from tests.messaging.fakes import FakeVendor, Request, Response

SECRET_ID = "AKIDfakeSecretId0123456789"  # noqa: S105
SECRET_KEY = "fake-secret-key"  # noqa: S105
SMS_SDK_APP_ID = "1400006666"
ACTIONS = {
    "SendSms": ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"),
    "PullSmsSendStatusByPhoneNumber": (
        "BeginTime",
        "Offset",
        "Limit",
        "PhoneNumber",
        "SmsSdkAppId",
    ),
}
AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)"
    r"/tc3_request, SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
E164 = re.compile(r"\+\d{6,15}")


@dataclass
class TencentSms:
    """A message the fake accepted."""

    phone: str
    sign_name: str
    template_id: str
    params: list
    session_context: str
    serial_no: str
    sent_at: int  # unix seconds
    report_status: str | None = None  # SUCCESS or FAIL once the carrier reports
    description: str = ""


def _answer(data: dict) -> Response:
    return Response.json({"Response": {**data, "RequestId": str(uuid.uuid4())}})


def _error(code: str, message: str) -> Response:
    return _answer({"Error": {"Code": code, "Message": message}})


class TencentSmsFake(FakeVendor):
    def __init__(self, keys: dict[str, str] | None = None, app_id: str = SMS_SDK_APP_ID):
        super().__init__()
        _ignore_disconnects(self.server)
        self.keys = keys or {SECRET_ID: SECRET_KEY}
        self.app_id = app_id
        self.sent: list[TencentSms] = []
        self.rate_limit_next = 0
        self.server_error_next = 0
        self.fail_numbers: set[str] = set()
        self.delay = 0.0
        self._serials = itertools.count(1045710669157053657849499619)

    def report(self, session_context: str, *, delivered: bool = True, description: str = ""):
        """The carrier's delivery report arrives for the message with this SessionContext."""
        for sms in self.sent:
            if sms.session_context == session_context:
                sms.report_status = "SUCCESS" if delivered else "FAIL"
                sms.description = description or ("用户短信送达成功" if delivered else "用户关机")

    def handle(self, request: Request) -> Response:
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            if self.server_error_next > 0:
                self.server_error_next -= 1
                return Response(502, b"<html>502 Bad Gateway</html>")
        refused = self._authenticate(request)
        if refused:
            return refused
        try:
            params = json.loads(request.body)
        except ValueError:
            return _error("FailedOperation.JsonParseFail", "解析请求包体时候失败。")
        action = request.headers["x-tc-action"]
        missing = [name for name in ACTIONS[action] if params.get(name) in (None, "")]
        if missing:
            return _error("MissingParameter", f"The request is missing `{missing[0]}`.")
        if params["SmsSdkAppId"] != self.app_id:
            return _error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId 不存在。")
        if action == "SendSms":
            return self._send_sms(params)
        return self._pull_status(params)

    def _authenticate(self, request: Request) -> Response | None:
        headers = request.headers
        for name in ("x-tc-action", "x-tc-timestamp", "x-tc-version", "x-tc-region"):
            if not headers.get(name):
                return _error("MissingParameter", f"The request is missing `{name}`.")
        if headers["x-tc-action"] not in ACTIONS:
            return _error("InvalidAction", "The action does not exist.")
        if headers["x-tc-version"] != "2021-01-11":
            return _error("NoSuchVersion", "The API version does not exist.")
        if request.method != "POST" or not headers.get("content-type", "").startswith(
            "application/json"
        ):
            return _error("InvalidParameter", "expected a POST of application/json")
        credential = AUTHORIZATION.fullmatch(headers.get("authorization", ""))
        if credential is None:
            return _error("AuthFailure.InvalidAuthorization", "Authorization is invalid.")
        secret = self.keys.get(credential["id"])
        if secret is None:
            return _error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        timestamp = int(headers["x-tc-timestamp"])
        if abs(time.time() - timestamp) > 300:
            return _error("AuthFailure.SignatureExpire", "Signature expired.")
        signed = credential["headers"].split(";")
        if not {"content-type", "host"} <= set(signed) or credential["service"] != "sms":
            return _error("AuthFailure.InvalidAuthorization", "Authorization is invalid.")
        expected = _signature(secret, request, signed, timestamp, credential["service"])
        date = datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d")
        if credential["date"] != date or not hmac.compare_digest(expected, credential["signature"]):
            return _error(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. "
                "Please check your signature is correct.",
            )
        return None

    def _send_sms(self, params: dict) -> Response:
        numbers = params["PhoneNumberSet"]
        if len(numbers) > 200:
            return _error("LimitExceeded.PhoneNumberCountLimit", "号码个数超过200个。")
        if not params.get("SignName"):  # every number here is a mainland one
            return _error(
                "FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误。"
            )
        statuses = []
        with self.lock:
            for phone in numbers:
                status = {"PhoneNumber": phone, "SessionContext": params.get("SessionContext", "")}
                if self.rate_limit_next > 0:
                    self.rate_limit_next -= 1
                    code, message = (
                        "LimitExceeded.PhoneNumberThirtySecondLimit",
                        "单个手机号30秒内下发短信条数超过设定的上限",
                    )
                elif not E164.fullmatch(phone) or phone in self.fail_numbers:
                    code, message = "InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误"
                else:
                    sms = TencentSms(
                        phone=phone,
                        sign_name=params["SignName"],
                        template_id=params["TemplateId"],
                        params=list(params.get("TemplateParamSet") or []),
                        session_context=params.get("SessionContext", ""),
                        serial_no=f"2640:{next(self._serials)}",
                        sent_at=int(time.time()),
                    )
                    self.sent.append(sms)
                    code, message = "Ok", "send success"
                    status.update(SerialNo=sms.serial_no, Fee=1, IsoCode="CN")
                statuses.append(
                    {"SerialNo": "", "Fee": 0, **status, "Code": code, "Message": message}
                )
        return _answer({"SendStatusSet": statuses})

    def _pull_status(self, params: dict) -> Response:
        end = params.get("EndTime") or int(time.time())
        with self.lock:
            reported = [
                sms
                for sms in self.sent
                if sms.phone == params["PhoneNumber"]
                and sms.report_status
                and params["BeginTime"] <= sms.sent_at <= end
            ]
        statuses = [
            {
                "UserReceiveTime": sms.sent_at,
                "CountryCode": "86",
                "SubscriberNumber": sms.phone.removeprefix("+86"),
                "PhoneNumber": sms.phone,
                "SerialNo": sms.serial_no,
                "ReportStatus": sms.report_status,
                "Description": sms.description,
                "SessionContext": sms.session_context,
            }
            for sms in reported[: min(int(params["Limit"]), 100)]
        ]
        return _answer({"PullSmsSendStatusSet": statuses})


def _signature(secret: str, request: Request, signed: list[str], timestamp: int, service: str):
    """TC3-HMAC-SHA256 as the 签名方法 v3 page spells it out, over the signed headers."""
    canonical_headers = "".join(
        f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in signed
    )
    canonical = "\n".join(
        [
            request.method,
            "/",
            "",
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    date = datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n"
    to_sign += hashlib.sha256(canonical.encode()).hexdigest()
    key = hmac.new(f"TC3{secret}".encode(), date.encode(), hashlib.sha256).digest()
    key = hmac.new(key, service.encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"tc3_request", hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _ignore_disconnects(server) -> None:
    """A client that gave up waiting (a timeout test) leaves the answer nowhere to go: that
    broken pipe is expected, not worth a traceback on stderr."""
    report = server.handle_error

    def handle_error(request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            report(request, client_address)

    server.handle_error = handle_error
