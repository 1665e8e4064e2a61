"""A local WeCom (企业微信) server following the documented contract of the calls siyu makes:
gettoken, externalcontact/add_msg_template, get_groupmsg_list_v2, get_groupmsg_task,
get_groupmsg_send_result and message/send.

What it checks: the corp id and secret on gettoken (40013 / 40001), the access_token on
every other call (41001 missing, 40014 unknown, 42001 once after `expire_tokens()`), that
customer contact calls carry the 客户联系 token and app messages the app's token (48002
otherwise, as for an app not in the 可调用应用 list), the request fields the documentation
requires and the limits siyu relies on (10,000 recipients, 4,000 bytes of text, a month
between start_time and end_time, the agentid). Where the documentation names no errcode for
a bad parameter, the fake answers 40058 (不合法的参数).

Switches a test flips: `rate_limit_next = N` (the next N calls answer 45009),
`invalid_token_next = N` (40014), `not_customers` (external userids that land in fail_list),
`delay` seconds before answering (only the paths in `delay_paths`, when set; the work is done
first, as when WeCom's answer is lost on the way), `page_size` (small, so paging is
exercised). A staff member confirming a task is `confirm(msgid, ...)`."""

import itertools
import threading
import time
from dataclasses import dataclass, field

from tests.messaging.fakes import FakeVendor, Request, Response

CORP_ID = "ww0123456789abcdef"
CONTACT_SECRET = "contact-secret-for-tests"  # noqa: S105
APP_SECRET = "app-secret-for-tests"  # noqa: S105
AGENT_ID = 1000002
TOKEN_SECONDS = 7200
MAX_RECIPIENTS = 10_000
MAX_TEXT_BYTES = 4000
MAX_LIST_SPAN = 31 * 86400  # "起止时间间隔不能超过1个月"


@dataclass
class Task:
    msgid: str
    sender: str
    text: str
    attachments: list[dict]
    recipients: list[str]  # those not in fail_list
    created: int
    confirmed_at: int | None = None
    # external_userid → 0 not sent, 1 sent, 2 not a friend, 3 received another mass message
    results: dict[str, int] = field(default_factory=dict)


def ok(**data) -> Response:
    return Response.json({"errcode": 0, "errmsg": "ok", **data})


def error(errcode: int, errmsg: str) -> Response:
    return Response.json({"errcode": errcode, "errmsg": errmsg})


class FakeWecom(FakeVendor):
    def __init__(self, page_size: int = 3):
        super().__init__()
        self.page_size = page_size
        self.secrets = {CONTACT_SECRET: "contact", APP_SECRET: "app"}
        self.tokens: dict[str, str] = {}  # token → scope
        self.expiring: set[str] = set()
        self.gettoken_calls = 0
        self.rate_limit_next = 0
        self.invalid_token_next = 0
        self.not_customers: set[str] = set()
        self.delay = 0.0
        self.delay_paths: set[str] | None = None
        self.tasks: dict[str, Task] = {}
        self.app_messages: list[dict] = []
        self.staff: set[str] | None = None  # userids an app message reaches; None: anyone
        self._ids = itertools.count(1)
        self._state = threading.Lock()

    # --- switches and staff actions --------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001 once, then is unknown."""
        with self._state:
            self.expiring = set(self.tokens)

    def confirm(self, msgid: str, delivered=None, failed: dict[str, int] | None = None) -> None:
        """The sender confirms the task: customers in `failed` get that status (2 or 3), the
        others (or only `delivered`, when given) status 1."""
        failed = failed or {}
        with self._state:
            task = self.tasks[msgid]
            task.confirmed_at = int(time.time())
            for external_userid in task.recipients:
                if external_userid in failed:
                    task.results[external_userid] = failed[external_userid]
                elif delivered is None or external_userid in delivered:
                    task.results[external_userid] = 1

    def calls(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    # --- dispatch --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path == "/cgi-bin/gettoken":
            return self.gettoken(request)
        handler = self.ROUTES.get(request.path)
        if handler is None:
            return Response(404, b"not found")
        refused = self._check_token(request, "app" if request.path in self.APP_PATHS else "contact")
        if refused:
            return refused
        with self._state:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return error(45009, "api freq out of limit")
        response = handler(self, request.json())
        if self.delay and (self.delay_paths is None or request.path in self.delay_paths):
            time.sleep(self.delay)
        return response

    def gettoken(self, request: Request) -> Response:
        corpid, secret = request.query.get("corpid"), request.query.get("corpsecret")
        if not corpid:
            return error(41002, "corpid missing")
        if not secret:
            return error(41004, "corpsecret missing")
        if corpid != CORP_ID:
            return error(40013, "invalid corpid")
        if secret not in self.secrets:
            return error(40001, "invalid credential")
        with self._state:
            self.gettoken_calls += 1
            token = f"token-{self.secrets[secret]}-{next(self._ids)}"
            self.tokens[token] = self.secrets[secret]
        return ok(access_token=token, expires_in=TOKEN_SECONDS)

    def _check_token(self, request: Request, scope: str) -> Response | None:
        token = request.query.get("access_token")
        if not token:
            return error(41001, "access_token missing")
        with self._state:
            if self.invalid_token_next > 0:
                self.invalid_token_next -= 1
                return error(40014, "invalid access_token")
            if token in self.expiring:
                self.expiring.discard(token)
                del self.tokens[token]
                return error(42001, "access_token expired")
            if token not in self.tokens:
                return error(40014, "invalid access_token")
            if self.tokens[token] != scope:
                return error(48002, "api forbidden")
        return None

    # --- customer mass sends ---------------------------------------------------------------

    def add_msg_template(self, body: dict) -> Response:
        if body.get("chat_type", "single") != "single":
            return error(40058, "only single is faked")
        recipients, sender = body.get("external_userid") or [], body.get("sender") or ""
        if not recipients and not sender:
            return error(40058, "external_userid and sender both empty")
        if len(recipients) > MAX_RECIPIENTS:
            return error(40058, "external_userid exceeds 10000")
        text = (body.get("text") or {}).get("content") or ""
        attachments = body.get("attachments") or []
        if not text and not attachments:
            return error(40058, "text and attachments both empty")
        if len(text.encode()) > MAX_TEXT_BYTES:
            return error(45002, "content size out of limit")
        if len(attachments) > 9 or any(not _attachment_ok(a) for a in attachments):
            return error(40058, "invalid attachments")
        fail_list = [r for r in recipients if r in self.not_customers]
        sendable = [r for r in recipients if r not in self.not_customers]
        if not sendable:
            return error(41048, "no customer to send")
        with self._state:
            msgid = f"msg{next(self._ids):08d}"
            task = Task(msgid, sender, text, attachments, sendable, int(time.time()))
            task.results = dict.fromkeys(sendable, 0)
            self.tasks[msgid] = task
        return ok(fail_list=fail_list, msgid=msgid)

    def get_groupmsg_list_v2(self, body: dict) -> Response:
        if body.get("chat_type") not in ("single", "group"):
            return error(40058, "chat_type required")
        start, end = body.get("start_time"), body.get("end_time")
        if not isinstance(start, int) or not isinstance(end, int):
            return error(40058, "start_time and end_time required")
        if end - start > MAX_LIST_SPAN or end < start:
            return error(40058, "time range exceeds a month")
        if body.get("filter_type", 2) == 1:  # personal tasks: this fake keeps none
            return ok(next_cursor="", group_msg_list=[])
        with self._state:
            tasks = [
                t
                for t in self.tasks.values()
                if start <= t.created <= end and not body.get("creator")  # API tasks: no creator
            ]
        rows = [
            {
                "msgid": t.msgid,
                "create_time": str(t.created),
                "create_type": 0,
                "text": {"content": t.text},
                "attachments": t.attachments,
            }
            for t in tasks
        ]
        page, cursor = self._page(rows, body)
        return ok(next_cursor=cursor, group_msg_list=page)

    def get_groupmsg_task(self, body: dict) -> Response:
        task = self.tasks.get(body.get("msgid") or "")
        if task is None:
            return error(41047, "invalid msgid")
        row = {"userid": task.sender, "status": 2 if task.confirmed_at else 0}
        if task.confirmed_at:
            row["send_time"] = task.confirmed_at
        page, cursor = self._page([row], body)
        return ok(next_cursor=cursor, task_list=page)

    def get_groupmsg_send_result(self, body: dict) -> Response:
        task = self.tasks.get(body.get("msgid") or "")
        if task is None:
            return error(41047, "invalid msgid")
        if not body.get("userid"):
            return error(41009, "userid missing")
        rows = []
        if body["userid"] == task.sender:
            with self._state:
                results = dict(task.results)
            for external_userid, status in results.items():
                row = {"external_userid": external_userid, "userid": task.sender, "status": status}
                if status == 1:
                    row["send_time"] = task.confirmed_at
                rows.append(row)
        page, cursor = self._page(rows, body)
        return ok(next_cursor=cursor, send_list=page)

    def _page(self, rows: list[dict], body: dict) -> tuple[list[dict], str]:
        """One page at the cursor (an offset here: opaque to the client)."""
        offset = int(body.get("cursor") or 0)
        size = min(int(body.get("limit") or self.page_size), self.page_size)
        end = offset + size
        return rows[offset:end], (str(end) if end < len(rows) else "")

    # --- app messages ----------------------------------------------------------------------

    def message_send(self, body: dict) -> Response:
        if body.get("agentid") != AGENT_ID:
            return error(40056, "invalid agentid")
        if body.get("msgtype") != "text" or not (body.get("text") or {}).get("content"):
            return error(44004, "empty content")
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        if not users:
            return error(40031, "touser required")
        invalid = [u for u in users if self.staff is not None and u not in self.staff]
        if len(invalid) == len(users):
            return error(81013, "user & party & tag all invalid")
        with self._state:
            msgid = f"app{next(self._ids):08d}"
            self.app_messages.append({**body, "msgid": msgid})
        return ok(invaliduser="|".join(invalid), msgid=msgid)

    ROUTES = {
        "/cgi-bin/externalcontact/add_msg_template": add_msg_template,
        "/cgi-bin/externalcontact/get_groupmsg_list_v2": get_groupmsg_list_v2,
        "/cgi-bin/externalcontact/get_groupmsg_task": get_groupmsg_task,
        "/cgi-bin/externalcontact/get_groupmsg_send_result": get_groupmsg_send_result,
        "/cgi-bin/message/send": message_send,
    }
    APP_PATHS = frozenset({"/cgi-bin/message/send"})


def _attachment_ok(attachment: dict) -> bool:
    kind = attachment.get("msgtype")
    part = attachment.get(kind) or {}
    if kind == "link":
        return bool(part.get("title") and part.get("url"))
    if kind == "miniprogram":
        return all(part.get(k) for k in ("title", "pic_media_id", "appid", "page"))
    if kind == "image":
        return bool(part.get("media_id") or part.get("pic_url"))
    return kind in ("video", "file") and bool(part.get("media_id"))
