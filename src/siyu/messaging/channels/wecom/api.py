"""The low-level WeCom (企业微信) server API client: access tokens, one POST or GET per call,
and errcode → `VendorError`.

Every call carries an `access_token` obtained with `gettoken?corpid=&corpsecret=` (valid
`expires_in` seconds, about two hours). Tokens live in the transport's token store, one
scope per secret: "contact" for the 客户联系 secret, "app" for the self-built app's secret.
When WeCom rejects a token (it expired early, or a refresh elsewhere replaced it), the token
is invalidated in the store and the call is made once more with a fresh one.

WeCom answers HTTP 200 with `{"errcode": 0, "errmsg": "ok", ...}` on success and a non-zero
errcode otherwise. The mapping below; the meanings are WeCom's 全局错误码 table (the codes
are what to match on, never errmsg, which WeCom may reword):

| errcode | meaning (全局错误码) | siyu |
| --- | --- | --- |
| -1 | 系统繁忙: server unavailable, retry later (WeCom: at most 3 times) | retry |
| 45009 | 接口调用超过限制: call frequency limit | retry after 60 s |
| 45033 | 接口并发调用超过限制: concurrency limit | retry |
| 45011 | not in WeCom's table; WeChat's "API调用太频繁，请稍候再试" | retry after 60 s |
| 40014 | 不合法的access_token | new token, call once more; then retry |
| 42001 | access_token已过期 | new token, call once more; then retry |
| 40001 | 不合法的secret参数 (gettoken); WeChat's invalid credential | see below |
| 40013 | 不合法的CorpID | permanent |
| 40003 | 无效的UserID (e.g. the sender) | permanent |
| 40056 | 不合法的agentid | permanent |
| 40096 | 不合法的外部联系人userid | permanent |
| 41001 | 缺少access_token参数 | permanent |
| 41047 | 无效的企业群发消息id | permanent |
| 41048 | 无可发送的客户 (no valid recipient in a mass send) | permanent |
| 48002 | API接口无权限调用 (the secret's app may not call this API) | permanent |
| 60011 | 指定的成员/部门/标签参数无权限 | permanent |
| 60020 | 访问ip不在白名单之中 (siyu's IP is not a trusted IP of the app) | permanent |
| 81013 | UserID、部门ID、标签ID全部非法或无权限 (app message) | permanent |
| 84061 | 不存在外部联系人的关系 | permanent |
| 50001 | redirect_url未登记可信域名 (an OAuth error, not a server error) | permanent |
| any other errcode | parameters, permissions, configuration | permanent |
| HTTP 5xx or 429, a body that is not JSON | a gateway or WeCom in trouble | retry |
| other HTTP status | a wrong base URL or proxy | permanent |

40001 from gettoken means the secret is wrong: permanent. Other calls are not documented to
answer it, but WeChat uses it for a stale token, so there it is handled like 40014 (the
refetch then tells a wrong secret apart). 50001 is listed because it is easily mistaken for
a server error; WeCom's server errors are -1 and HTTP 5xx.
"""

from collections.abc import Callable
from typing import Any

import httpx
from django.conf import settings

from siyu.messaging.channels.base import TokenStore, VendorError

# the access token is refused: fetch a new one and call once more
TOKEN_ERRORS = frozenset({40014, 42001, 40001})
# frequency limits, counted per minute by WeCom: no use trying again sooner
RATE_LIMITS = frozenset({45009, 45011})
RETRYABLE = frozenset({-1, 45033}) | RATE_LIMITS
RATE_LIMIT_RETRY_AFTER = 60.0

MEANINGS = {
    -1: "system busy",
    40001: "invalid secret or credential",
    40003: "invalid userid",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    40096: "invalid external_userid",
    41001: "access_token missing",
    41047: "invalid mass-send msgid",
    41048: "no customer to send to",
    42001: "access_token expired",
    45009: "API call frequency limit reached",
    45011: "API call frequency limit reached",
    45033: "API concurrency limit reached",
    48002: "no permission to call this API",
    50001: "redirect_url not a trusted domain",
    60011: "no permission for this member, department or tag",
    60020: "siyu's IP is not in the app's trusted IPs",
    81013: "every recipient is invalid or out of the app's visibility",
    84061: "no external-contact relationship",
}


def error_for(errcode: int, errmsg: str) -> VendorError:
    """The VendorError for a non-zero errcode (a token error that outlived its retry is
    retryable: the next attempt gets yet another token)."""
    message = MEANINGS.get(errcode, errmsg or "error")
    if errmsg and errmsg != message:
        message = f"{message} ({errmsg})"
    retry_after = RATE_LIMIT_RETRY_AFTER if errcode in RATE_LIMITS else None
    retryable = errcode in RETRYABLE or errcode in TOKEN_ERRORS
    return VendorError(str(errcode), message, retryable=retryable, retry_after=retry_after)


class WecomApi:
    """Calls to one corp's WeCom API. `secrets` maps a token scope to its secret."""

    def __init__(
        self, http: httpx.Client, tokens: TokenStore, corp_id: str, secrets: dict[str, str]
    ):
        self.http, self.tokens, self.corp_id, self.secrets = http, tokens, corp_id, secrets

    @staticmethod
    def base_url() -> str:
        # read at call time: tests point it at a local fake
        return settings.SIYU_WECOM_URL.rstrip("/")

    def post(self, scope: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._with_token(scope, lambda token: self._send("POST", path, token, body))

    def _with_token(self, scope: str, call: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        fetch = lambda: self.fetch_token(scope)  # noqa: E731
        token = self.tokens.get(scope, fetch)
        data = call(token)
        if _errcode(data) in TOKEN_ERRORS:
            self.tokens.invalidate(scope, token)
            data = call(self.tokens.get(scope, fetch))
        return _checked(data)

    def fetch_token(self, scope: str) -> tuple[str, int]:
        secret = self.secrets.get(scope) or ""
        if not self.corp_id or not secret:
            raise VendorError(
                "not_configured", f"corp_id or the {scope} secret is not set", retryable=False
            )
        query = {"corpid": self.corp_id, "corpsecret": secret}
        data = self._send("GET", "/cgi-bin/gettoken", "", None, **query)
        if _errcode(data) == 40001:  # here it means the secret is wrong: no retry helps
            raise VendorError("40001", "invalid secret", retryable=False)
        data = _checked(data)
        return str(data["access_token"]), int(data.get("expires_in") or 7200)

    def _send(
        self, method: str, path: str, token: str, body: dict[str, Any] | None, **params: str
    ) -> dict[str, Any]:
        if token:
            params["access_token"] = token
        response = self.http.request(method, self.base_url() + path, params=params, json=body)
        if response.status_code >= 500 or response.status_code == 429:
            raise VendorError(f"http_{response.status_code}", "WeCom unavailable", retryable=True)
        if response.status_code != 200:
            raise VendorError(
                f"http_{response.status_code}", "unexpected HTTP status", retryable=False
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise VendorError("bad_response", "not a JSON answer", retryable=True) from exc
        if not isinstance(data, dict):
            raise VendorError("bad_response", "not a JSON object", retryable=True)
        return data


def _errcode(data: dict[str, Any]) -> int:
    try:
        return int(data.get("errcode") or 0)
    except (TypeError, ValueError):
        return -1


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    errcode = _errcode(data)
    if errcode:
        raise error_for(errcode, str(data.get("errmsg") or ""))
    return data
