"""The WeChat API client both WeChat channels share (公众号 template messages and 小程序
subscribe messages): the access token, the one retry after WeChat rejects it, what each
errcode means for the outbox, and the documented limits of template data values.

Access token: `POST cgi-bin/stable_token` (getStableAccessToken), not `cgi-bin/token`. The
stable token is isolated from tokens fetched through `cgi-bin/token`, so siyu fetching one
never invalidates the token of another system the customer runs on the same appid, and in
its normal mode a second fetch inside the validity period returns the same token.

errcode → outcome (全局返回码, and the codes the two send APIs document):

    ====================  ==========================================  =====================
    errcode               meaning                                     outcome
    ====================  ==========================================  =====================
    -1                    system busy                                 retry
    45009                 daily API quota used up                     retry after the next
                                                                      00:00 Beijing time
    45011                 per-minute API quota used up                retry after 60 s
    40001, 40014, 42001   access token invalid / not latest / expired fetch a new token and
                                                                      call once more; then
                                                                      retry
    40003                 invalid openid (not of this appid)          failed
    43004                 user does not follow the Official Account   failed
    43101                 user refused / no subscription left (小程序)  failed (no consent)
    40036, 40037          template_id invalid (length / unknown)      failed
    47001, 47003          data format / argument invalid              failed
    41028, 41029, 41030   form id invalid or used / page invalid      failed
    40165                 invalid miniprogram pagepath                failed
    45015, 45047          reply window / reply count exceeded         failed
    48001, 50002, 43116   API not authorised / user limited /         failed
                          template restricted for abuse
    anything else         —                                           failed
    HTTP 5xx / 429, or a body that is not JSON (a gateway)            retry
    other HTTP status (a wrong base URL or proxy)                     failed
    ====================  ==========================================  =====================

From `cgi-bin/stable_token` (the whole call fails, every message of it): 40125 invalid
appsecret, 40013 invalid appid, 40164 siyu's IP not in the account's whitelist, and 40001
(older wording of a wrong secret) fail; -1, 45009 and 45011 retry as above.

Unknown codes fail rather than retry: they are far more often a configuration or parameter
problem than a passing one, and each retry spends the daily quota. Codes are matched, never
errmsg (WeChat rewords it and appends a request id)."""

import datetime
import json
import re
from typing import Any

import httpx
from django.conf import settings

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import FieldSpec, TokenStore, Transport, VendorError
from siyu.messaging.tokens import MemoryTokenStore

TOKEN_SCOPE = ""
TOKEN_REJECTED = frozenset({40001, 40014, 42001})
RETRYABLE = frozenset({-1, 45009, 45011}) | TOKEN_REJECTED
BEIJING = datetime.timezone(datetime.timedelta(hours=8))  # China has no daylight saving


class WechatError(VendorError):
    """WeChat answered one API call with a non-zero errcode (about this request, not about
    our credentials)."""


def _seconds_to_beijing_midnight() -> float:
    now = datetime.datetime.now(BEIJING)
    midnight = datetime.datetime.combine(
        now.date() + datetime.timedelta(days=1), datetime.time(), BEIJING
    )
    return (midnight - now).total_seconds()


def retry_after(code: int) -> float | None:
    """How long WeChat asks us to wait after a retryable code (None: no hint)."""
    if code == 45009:
        return _seconds_to_beijing_midnight()
    if code == 45011:
        return 60.0
    return None


def error_from(answer: dict[str, Any], error_class: type[VendorError] = WechatError) -> VendorError:
    code = int(answer.get("errcode", -1))
    return error_class(
        str(code),
        str(answer.get("errmsg", "")),
        retryable=code in RETRYABLE,
        retry_after=retry_after(code) if code in RETRYABLE else None,
    )


class WechatApi:
    """One appid's calls: `post(path, payload)` returns WeChat's answer when errcode is 0 and
    raises WechatError otherwise (VendorError when no token can be had)."""

    def __init__(self, appid: str, appsecret: str, tokens: TokenStore, http: httpx.Client):
        self.appid, self.appsecret = appid, appsecret
        self.tokens, self.http = tokens, http

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = self.tokens.get(TOKEN_SCOPE, self._fetch_token)
        answer = self._post(path, token, payload)
        if int(answer.get("errcode", 0)) in TOKEN_REJECTED:
            # expired early or replaced: one fresh token, one more try, then let it retry
            self.tokens.invalidate(TOKEN_SCOPE, token)
            fresh = self.tokens.get(TOKEN_SCOPE, lambda: self._fetch_token(rejected=token))
            answer = self._post(path, fresh, payload)
        if int(answer.get("errcode", 0)) != 0:
            raise error_from(answer)
        return answer

    def _post(self, path: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(
            f"{settings.SIYU_WECHAT_URL}/{path}",
            params={"access_token": token},
            # raw UTF-8: some WeChat APIs refuse \uXXXX escapes (40033)
            content=json.dumps(payload, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        return _answer(response)

    def _fetch_token(self, rejected: str = "") -> tuple[str, int]:
        answer = self._stable_token(force_refresh=False)
        if answer.get("access_token") == rejected:
            # WeChat still hands out the token it just refused: only a forced refresh helps
            # (limited per day, so only here)
            answer = self._stable_token(force_refresh=True)
        return str(answer["access_token"]), int(answer.get("expires_in", 7200))

    def _stable_token(self, *, force_refresh: bool) -> dict[str, Any]:
        response = self.http.post(
            f"{settings.SIYU_WECHAT_URL}/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.appsecret,
                "force_refresh": force_refresh,
            },
        )
        answer = _answer(response)
        code = int(answer.get("errcode", 0))
        if code in TOKEN_REJECTED:  # from the token endpoint it means a wrong secret
            raise VendorError(str(code), str(answer.get("errmsg", "")), retryable=False)
        if code:
            raise error_from(answer, VendorError)
        if not answer.get("access_token"):
            raise VendorError("no_token", "WeChat answered without a token", retryable=True)
        return answer


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 500 or response.status_code == 429:
        raise VendorError(f"http_{response.status_code}", "WeChat is unavailable", retryable=True)
    if response.status_code != 200:  # a wrong base URL or proxy
        raise VendorError(f"http_{response.status_code}", "unexpected status", retryable=False)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):  # a gateway's error page, most likely
        raise VendorError("not_json", "WeChat answered without JSON", retryable=True)
    return answer


class WechatTransport(Transport):
    """What both WeChat channels share: an appid and its secret, and openids of that appid."""

    consent_channel = "wechat"
    address_identity = "wechat_openid"
    max_batch = 1
    secret_fields = (FieldSpec("appsecret", "AppSecret"),)

    def __init__(self, settings: dict[str, Any], secrets: dict[str, Any], **kwargs: Any):
        super().__init__(settings, secrets, **kwargs)
        self.tokens = self.tokens or MemoryTokenStore()  # used without a saved channel
        self.api = WechatApi(
            settings.get("appid", ""), secrets.get("appsecret", ""), self.tokens, self.http
        )

    def address_app_id(self) -> str:
        return self.settings.get("appid", "")


# --- template data values ----------------------------------------------------------------------
# 订阅消息参数值内容限制: every data key is a type prefix and a number (thing1, time12,
# character_string3). "Symbol" is any common sign other than Chinese, letters and digits,
# never a control character. Keys of other types (enum, short_thing, the old keyword1 /
# first / remark of 公众号 templates) are not checked here.

_HAN = "\u3400-\u4dbf\u4e00-\u9fff"
# ASCII digits: [0-9], as \d would also take full-width digits
_DATE = (
    r"(?:[0-9]{4}年[0-9]{1,2}月[0-9]{1,2}日|[0-9]{4}年[0-9]{1,2}月|[0-9]{1,2}月[0-9]{1,2}日"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}|[0-9]{4}\.[0-9]{1,2}\.[0-9]{1,2}"
    r"|[0-9]{4}[-/.][0-9]{1,2}|[0-9]{1,2}[-/.][0-9]{1,2})"
)
_TIME = r"(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?"


def _range(point: str) -> re.Pattern[str]:
    return re.compile(rf"{point}(?:\s*~\s*{point})?")


def _is_symbol(char: str) -> bool:
    return not char.isalnum() and char.isprintable()


def _is_ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


# type → (max length or None, the documented rule as a check, the rule in words)
DATA_RULES: dict[str, tuple[int | None, Any, str]] = {
    "thing": (20, lambda v: True, "Chinese characters, letters, digits or symbols"),
    "number": (
        32,
        re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch,
        "digits, with an optional decimal part",
    ),
    "letter": (32, re.compile(r"[A-Za-z]+").fullmatch, "letters only"),
    "symbol": (5, lambda v: all(_is_symbol(c) for c in v), "symbols only"),
    "character_string": (
        32,
        lambda v: all(_is_ascii_alnum(c) or _is_symbol(c) for c in v),
        "digits, letters or symbols",
    ),
    "time": (
        None,
        _range(rf"(?:{_DATE}\s*)?{_TIME}").fullmatch,
        "a 24-hour time (HH:MM or HH:MM:SS), optionally after a date; a range joins two with ~",
    ),
    "date": (
        None,
        _range(rf"{_DATE}(?:\s*{_TIME})?").fullmatch,
        "a date (2019年10月1日, 2019-10-01, 2019/10/01, 2019.10.01, 2019-10, 10-01), "
        "optionally with a time; a range joins two with ~",
    ),
    "amount": (
        None,
        re.compile(r"[^\w\s]?[0-9]{1,10}(?:\.[0-9]+)?元?").fullmatch,
        "one currency symbol, at most 10 digits with an optional decimal part, optionally 元",
    ),
    "phone_number": (
        17,
        lambda v: all(c in "0123456789" or _is_symbol(c) for c in v),
        "digits and symbols",
    ),
    "car_number": (
        8,
        re.compile(rf"[{_HAN}A-Za-z0-9][A-Za-z0-9]*[{_HAN}]?").fullmatch,
        "letters and digits; the first and the last may be a Chinese character",
    ),
    "name": (None, lambda v: _name_ok(v), "at most 10 Chinese characters or 20 letters or symbols"),
    "phrase": (5, re.compile(rf"[{_HAN}]+").fullmatch, "Chinese characters only"),
}


def _name_ok(value: str) -> bool:
    if any(c.isdigit() for c in value):
        return False
    if re.search(rf"[{_HAN}]", value):  # mixed names count as Chinese ones
        return len(value) <= 10 and all(c.isalpha() or _is_symbol(c) for c in value)
    return len(value) <= 20 and all(c.isascii() and (c.isalpha() or _is_symbol(c)) for c in value)


def data_type(key: str) -> str:
    """thing1 → thing, character_string12 → character_string, keyword1 → keyword."""
    return key.rstrip("0123456789")


def check_data(data: Any, field: str = "data") -> dict[str, str]:
    """The rendered data items, refused (ValidationError naming `data.<key>`) when one breaks
    its type's documented limits."""
    if not isinstance(data, dict) or not data:
        raise ValidationError(field, "expected an object of at least one data item")
    for key, value in data.items():
        path = f"{field}.{key}"
        if not isinstance(value, str):
            raise ValidationError(path, "expected text")
        rule = DATA_RULES.get(data_type(key))
        if rule is None:  # a type we do not know, or an old-style 公众号 keyword
            continue
        if not value.isprintable():  # line breaks included
            raise ValidationError(path, "control characters and line breaks are not allowed")
        limit, check, words = rule
        if not value.strip():
            raise ValidationError(path, "this value is required")
        if limit is not None and len(value) > limit:
            raise ValidationError(
                path,
                "%(type)s values are at most %(limit)s characters (this one has %(length)s)",
                {"type": data_type(key), "limit": limit, "length": len(value)},
            )
        if not check(value):
            raise ValidationError(
                path, "%(type)s values must be %(rule)s", {"type": data_type(key), "rule": words}
            )
    return data


def wrap_data(data: dict[str, str]) -> dict[str, dict[str, str]]:
    return {key: {"value": value} for key, value in data.items()}
