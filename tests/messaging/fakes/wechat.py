"""A fake WeChat API (api.weixin.qq.com) for one appid: stable access tokens, 公众号 template
messages and 小程序 subscribe messages, with the documented errcodes.

Switches a test flips: `expire_tokens()` (current tokens answer 42001), `reject_tokens`
(every token answers 40001), `rate_limit_next = N` (the next N sends answer 45009),
`unsubscribed` (openids answering 43004 to template and 43101 to subscribe sends) and
`invalid_openids` (40003). Subscribe data is checked like the real API (47003), by rules
written here independently of the transport's, so the two can be compared."""

import itertools
import re
import secrets
import threading
from typing import Any

from tests.messaging.fakes import FakeVendor, Request, Response

APPID = "wx0123456789abcdef"
APPSECRET = "fake-app-secret"  # noqa: S105
TOKEN_LIFETIME = 7200
STATES = {"formal", "trial", "developer"}

# a few of the subscribe data limits (订阅消息参数值内容限制), for the comparison
_SUBSCRIBE_LIMITS = {
    "thing": lambda v: len(v) <= 20,
    "number": lambda v: len(v) <= 32 and re.fullmatch(r"[0-9]+(\.[0-9]+)?", v),
    "letter": lambda v: len(v) <= 32 and re.fullmatch(r"[a-zA-Z]+", v),
    "character_string": lambda v: len(v) <= 32 and v.isascii() and v.isprintable(),
    "phrase": lambda v: len(v) <= 5 and re.fullmatch(r"[\u4e00-\u9fff]+", v),
}


def _error(code: int, message: str) -> Response:
    return Response.json({"errcode": code, "errmsg": f"{message} rid: fake"})


class FakeWechat(FakeVendor):
    def __init__(self, appid: str = APPID, appsecret: str = APPSECRET):
        super().__init__()
        # a short poll interval: the server shuts down in milliseconds between tests
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.appid, self.appsecret = appid, appsecret
        self.live_tokens: set[str] = set()
        self.expired_tokens: set[str] = set()
        self.current_token = ""
        self.token_fetches = 0
        self.template_sends: list[dict[str, Any]] = []  # messages WeChat would deliver
        self.subscribe_sends: list[dict[str, Any]] = []
        self._by_client_msg_id: dict[tuple[str, str], int] = {}
        self._msgids = itertools.count(2_000_000_001)
        self.rate_limit_next = 0
        self.reject_tokens = False
        self.unsubscribed: set[str] = set()
        self.invalid_openids: set[str] = set()

    def expire_tokens(self) -> None:
        with self.lock:
            self.expired_tokens |= self.live_tokens
            self.live_tokens.clear()
            self.current_token = ""

    def handle(self, request: Request) -> Response:
        with self.lock:
            if request.path == "/cgi-bin/stable_token" and request.method == "POST":
                return self._stable_token(request.json())
            if request.method != "POST":
                return _error(43002, "require POST method")
            refused = self._check_token(request.query.get("access_token", ""))
            if refused:
                return refused
            if request.path == "/cgi-bin/message/template/send":
                return self._template_send(request.json())
            if request.path == "/cgi-bin/message/subscribe/send":
                return self._subscribe_send(request.json())
            return _error(40066, "invalid url")

    def _stable_token(self, body: dict[str, Any]) -> Response:
        self.token_fetches += 1
        if body.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        if body.get("appid") != self.appid:
            return _error(40013, "invalid appid")
        if body.get("secret") != self.appsecret:
            return _error(40125, "invalid appsecret")
        # normal mode hands out the current token while it lives; force_refresh replaces it
        if body.get("force_refresh") or not self.current_token:
            self.live_tokens.discard(self.current_token)
            self.current_token = f"token-{secrets.token_hex(8)}"
            self.live_tokens.add(self.current_token)
        return Response.json({"access_token": self.current_token, "expires_in": TOKEN_LIFETIME})

    def _check_token(self, token: str) -> Response | None:
        if not token:
            return _error(41001, "access_token missing")
        if token in self.expired_tokens:
            return _error(42001, "access_token expired")
        if token not in self.live_tokens or self.reject_tokens:
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        return None

    def _refusal(self, body: dict[str, Any], not_reachable: tuple[int, str]) -> Response | None:
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return _error(45009, "reach max api daily quota limit")
        openid = body.get("touser")
        if not openid or openid in self.invalid_openids:
            return _error(40003, "invalid openid")
        if not body.get("template_id"):
            return _error(40037, "invalid template_id")
        if openid in self.unsubscribed:
            return _error(*not_reachable)
        data = body.get("data")
        if not isinstance(data, dict) or not all(
            isinstance(item, dict) and isinstance(item.get("value"), str) for item in data.values()
        ):
            return _error(47001, "data format error")
        return None

    def _template_send(self, body: dict[str, Any]) -> Response:
        refused = self._refusal(body, (43004, "require subscribe"))
        if refused:
            return refused
        dedupe = (body["touser"], body.get("client_msg_id") or "")
        if dedupe[1] and dedupe in self._by_client_msg_id:
            msgid = self._by_client_msg_id[dedupe]  # the same message, not a second one
        else:
            msgid = next(self._msgids)
            self.template_sends.append({**body, "msgid": msgid})
            if dedupe[1]:
                self._by_client_msg_id[dedupe] = msgid
        return Response.json({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    def _subscribe_send(self, body: dict[str, Any]) -> Response:
        refused = self._refusal(body, (43101, "user refuse to accept the msg"))
        if refused:
            return refused
        if body.get("miniprogram_state", "formal") not in STATES:
            return _error(47003, "argument invalid! miniprogram_state invalid")
        for key, item in body["data"].items():
            check = _SUBSCRIBE_LIMITS.get(key.rstrip("0123456789"))
            if not item["value"] or (check and not check(item["value"])):
                return _error(47003, f"argument invalid! data.{key}.value invalid")
        msgid = next(self._msgids)
        self.subscribe_sends.append({**body, "msgid": msgid})
        return Response.json({"errcode": 0, "errmsg": "ok", "msgid": msgid})
