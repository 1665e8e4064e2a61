"""A fake Aliyun SMS endpoint (dysmsapi 2017-05-25, RPC style, signature version 1.0).

It checks what the real service checks before doing anything: the common parameters, the
access key, the timestamp (15 minutes either way), that no nonce is used twice, and the
HMAC-SHA1 signature, recomputed here independently of siyu's signing code. Then SendSms
and QuerySendDetails, with the documented answers and error codes.

Switches a test flips: `rate_limit_next` (that many sends answer
isv.BUSINESS_LIMIT_CONTROL), `fail_numbers` (isv.MOBILE_NUMBER_ILLEGAL), `server_error_next`
(that many calls answer HTTP 503 with an HTML page), `delay` (seconds before any answer),
`templates` (code → approved text: unknown codes and missing ${params} are refused)."""

import base64
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
from urllib.parse import quote

from tests.messaging.fakes import FakeVendor, Request, Response

ACCESS_KEY_ID = "LTAI5tFakeAccessKey"
ACCESS_KEY_SECRET = "fake-access-key-secret"  # noqa: S105
CHINA_TIME = datetime.timezone(datetime.timedelta(hours=8))
COMMON = ("AccessKeyId", "Action", "SignatureMethod", "SignatureNonce", "SignatureVersion")
COMMON += ("Timestamp", "Version", "Signature")
REQUIRED = {
    "SendSms": ("PhoneNumbers", "SignName", "TemplateCode"),
    "SendBatchSms": ("PhoneNumberJson", "SignNameJson", "TemplateCode"),
    "QuerySendDetails": ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"),
}


@dataclass
class AliyunSms:
    """A message the fake accepted."""

    phone: str
    sign_name: str
    template_code: str
    params: dict
    out_id: str
    biz_id: str
    sent_at: datetime.datetime
    send_status: int = 1  # 1 waiting for the carrier, 2 failed, 3 delivered
    err_code: str = ""


def _error(code: str, message: str, status: int = 200) -> Response:
    return Response.json({"Code": code, "Message": message, "RequestId": str(uuid.uuid4())}, status)


def _missing(name: str) -> Response:
    return _error(f"Missing{name}", f"{name} is mandatory for this action.", 400)


class AliyunSmsFake(FakeVendor):
    def __init__(self, keys: dict[str, str] | None = None):
        super().__init__()
        _ignore_disconnects(self.server)
        self.keys = keys or {ACCESS_KEY_ID: ACCESS_KEY_SECRET}
        self.sent: list[AliyunSms] = []
        self.nonces: set[str] = set()
        self.rate_limit_next = 0
        self.server_error_next = 0
        self.fail_numbers: set[str] = set()
        self.delay = 0.0
        self.delay_after = 0.0
        self.templates: dict[str, str] | None = None
        self._biz_ids = itertools.count(900619746936498440)

    def report(self, out_id: str, *, delivered: bool = True, err_code: str = "") -> None:
        """The carrier's delivery report arrives for the message with this OutId."""
        for sms in self.sent:
            if sms.out_id == out_id:
                sms.send_status = 3 if delivered else 2
                sms.err_code = err_code or ("DELIVERED" if delivered else "MK:0001")

    def handle(self, request: Request) -> Response:
        if self.delay:
            time.sleep(self.delay)
        response = self._handle(request)
        sends = ("Action=SendSms", "Action=SendBatchSms")
        if self.delay_after and any(a in request.body.decode() for a in sends):
            # the message is in, the answer late: a crash can land in between
            time.sleep(self.delay_after)
        return response

    def _handle(self, request: Request) -> Response:
        with self.lock:
            if self.server_error_next > 0:
                self.server_error_next -= 1
                return Response(503, b"<html>503 Service Temporarily Unavailable</html>")
        params = dict(request.query)
        if request.method == "POST":
            params.update(request.form())
        refused = self._authenticate(request.method, params)
        if refused:
            return refused
        missing = [name for name in REQUIRED[params["Action"]] if not params.get(name)]
        if missing:
            return _error(
                f"Missing{missing[0]}", f"{missing[0]} is mandatory for this action.", 400
            )
        if params["Action"] == "SendSms":
            return self._send_sms(params)
        if params["Action"] == "SendBatchSms":
            return self._send_batch_sms(params)
        return self._query_send_details(params)

    def _authenticate(self, method: str, params: dict[str, str]) -> Response | None:
        missing = [name for name in COMMON if not params.get(name)]
        if missing:
            return _error(
                f"Missing{missing[0]}", f"{missing[0]} is mandatory for this action.", 400
            )
        if params["Action"] not in REQUIRED:
            return _error("InvalidAction.NotFound", "Specified api is not found.", 404)
        if params["Version"] != "2017-05-25":
            return _error("InvalidVersion", "Specified parameter Version is not valid.", 400)
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return _error("IncompleteSignature", "The request signature does not conform.", 400)
        try:
            stamp = datetime.datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return _error("InvalidTimeStamp.Format", "Specified time stamp is not valid.", 400)
        skew = abs(datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - stamp)
        if skew > datetime.timedelta(minutes=15):
            return _error("InvalidTimeStamp.Expired", "Specified time stamp is expired.", 400)
        secret = self.keys.get(params["AccessKeyId"])
        if secret is None:
            return _error("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        expected, string_to_sign = _signature(secret, method, params)
        if not hmac.compare_digest(expected, params["Signature"]):
            return _error(
                "SignatureDoesNotMatch",
                f"Specified signature is not matched with our calculation. "
                f"server string to sign is:{string_to_sign}",
                400,
            )
        with self.lock:
            if params["SignatureNonce"] in self.nonces:
                return _error(
                    "SignatureNonceUsed", "Specified signature nonce was used already.", 400
                )
            self.nonces.add(params["SignatureNonce"])
        return None

    def _send_sms(self, params: dict[str, str]) -> Response:
        try:
            template_params = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            template_params = None
        if not isinstance(template_params, dict):
            return _error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if self.templates is not None:
            text = self.templates.get(params["TemplateCode"])
            if text is None:
                return _error("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
            if set(re.findall(r"\$\{(\w+)\}", text)) - set(template_params):
                return _error("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
        with self.lock:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return _error("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
            if params["PhoneNumbers"] in self.fail_numbers:
                return _error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
            sms = AliyunSms(
                phone=params["PhoneNumbers"],
                sign_name=params["SignName"],
                template_code=params["TemplateCode"],
                params=template_params,
                out_id=params.get("OutId", ""),
                biz_id=f"{next(self._biz_ids)}^0",
                sent_at=datetime.datetime.now(CHINA_TIME),
            )
            self.sent.append(sms)
        return Response.json(
            {"Code": "OK", "Message": "OK", "BizId": sms.biz_id, "RequestId": str(uuid.uuid4())}
        )

    def _send_batch_sms(self, params: dict[str, str]) -> Response:
        """SendBatchSms: parallel JSON arrays of numbers, sign names and parameter objects (at
        most 100); one BizId and one OutId for the call, which fails as a whole."""
        try:
            phones = json.loads(params["PhoneNumberJson"])
            signs = json.loads(params["SignNameJson"])
            values = json.loads(params.get("TemplateParamJson") or "null")
        except ValueError:
            return _error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        values = values if values is not None else [{}] * len(phones)
        shapes_ok = all(isinstance(x, list) for x in (phones, signs, values))
        if not shapes_ok or not (len(phones) == len(signs) == len(values)) or not phones:
            return _error("isv.INVALID_PARAMETERS", "参数异常：号码、签名、模板变量个数不一致")
        if len(phones) > 100:
            return _error("isv.BUSINESS_LIMIT_CONTROL", "单次最多 100 个号码")
        if self.templates is not None:
            text = self.templates.get(params["TemplateCode"])
            if text is None:
                return _error("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
            needed = set(re.findall(r"\$\{(\w+)\}", text))
            if any(not isinstance(v, dict) or needed - set(v) for v in values):
                return _error("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
        with self.lock:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return _error("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
            if any(phone in self.fail_numbers for phone in phones):
                return _error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
            biz_id = f"{next(self._biz_ids)}^0"
            now = datetime.datetime.now(CHINA_TIME)
            for phone, sign, value in zip(phones, signs, values, strict=True):
                self.sent.append(
                    AliyunSms(
                        phone=phone,
                        sign_name=sign,
                        template_code=params["TemplateCode"],
                        params=value,
                        out_id=params.get("OutId", ""),
                        biz_id=biz_id,
                        sent_at=now,
                    )
                )
        return Response.json(
            {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": str(uuid.uuid4())}
        )

    def _query_send_details(self, params: dict[str, str]) -> Response:
        size, page = int(params["PageSize"]), int(params["CurrentPage"])
        if not 1 <= size <= 50:
            return _error("isv.INVALID_PARAMETERS", "PageSize must be between 1 and 50")
        with self.lock:
            matching = [
                sms
                for sms in self.sent
                if sms.phone == params["PhoneNumber"]
                and sms.sent_at.strftime("%Y%m%d") == params["SendDate"]
            ]
        details = [
            {
                "PhoneNum": sms.phone,
                "SendStatus": sms.send_status,
                "ErrCode": sms.err_code,
                "TemplateCode": sms.template_code,
                "Content": f"【{sms.sign_name}】{json.dumps(sms.params, ensure_ascii=False)}",
                "SendDate": sms.sent_at.strftime("%Y-%m-%d %H:%M:%S"),
                "ReceiveDate": sms.sent_at.strftime("%Y-%m-%d %H:%M:%S"),
                "OutId": sms.out_id,
            }
            for sms in matching[(page - 1) * size : page * size]
        ]
        return Response.json(
            {
                "Code": "OK",
                "Message": "OK",
                "RequestId": str(uuid.uuid4()),
                "TotalCount": str(len(matching)),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
            }
        )


def _signature(secret: str, method: str, params: dict[str, str]) -> tuple[str, str]:
    """Aliyun's V1 signature as the SMS docs spell it out (specialUrlEncode: URL-encode, then
    + → %20, * → %2A, %7E → ~), written apart from siyu's own."""

    def encode(value: str) -> str:
        return quote(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")

    query = "&".join(
        f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    string_to_sign = f"{method}&{encode('/')}&{encode(query)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode(), string_to_sign


def _ignore_disconnects(server) -> None:
    """A client that gave up waiting (a timeout test) leaves the answer nowhere to go: that
    broken pipe is expected, not worth a traceback on stderr."""
    report = server.handle_error

    def handle_error(request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            report(request, client_address)

    server.handle_error = handle_error
