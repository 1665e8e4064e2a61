"""WeCom customer mass sends (企业群发): the request body built from rendered content, and the
paged reads of what was created, who confirmed it and what each customer got.

- `add_msg_template` creates a task: up to 10,000 `external_userid`s, one `sender`, one
  text (≤ 4,000 bytes) and up to 9 attachments. Nothing reaches a customer until the sender
  confirms it in the WeCom app.
- `get_groupmsg_list_v2` lists tasks created between two times (at most a month apart, 100
  a page). A task created through the API carries no `creator`, so tasks are matched here by
  content and then by sender through `get_groupmsg_send_result`.
- `get_groupmsg_task` gives each staff member's state (status 0 not sent, 2 sent) and
  `get_groupmsg_send_result` each customer's (0 not sent, 1 sent, 2 not a friend, 3 already
  received another mass message), both 1,000 a page.
"""

import datetime
from collections.abc import Iterator
from typing import Any

from siyu.messaging.channels.wecom.api import WecomApi

ADD_MSG_TEMPLATE = "/cgi-bin/externalcontact/add_msg_template"
LIST_TASKS = "/cgi-bin/externalcontact/get_groupmsg_list_v2"
STAFF_TASKS = "/cgi-bin/externalcontact/get_groupmsg_task"
SEND_RESULTS = "/cgi-bin/externalcontact/get_groupmsg_send_result"

MAX_RECIPIENTS = 10_000
LIST_PAGE = 100
RESULT_PAGE = 1000
LIST_SPAN = datetime.timedelta(days=30)  # "起止时间间隔不能超过1个月"

STAFF_SENT = 2
NOT_SENT, SENT, NOT_FRIEND, RECEIVE_LIMIT = 0, 1, 2, 3

LINK_FIELDS = ("link_title", "link_url", "link_desc", "link_picurl")
MINIPROGRAM_FIELDS = (
    "miniprogram_title",
    "miniprogram_appid",
    "miniprogram_page",
    "miniprogram_pic_media_id",
)


def message_body(content: dict[str, Any]) -> dict[str, Any]:
    """`text` and `attachments` of add_msg_template for rendered content (checked before)."""
    attachments: list[dict[str, Any]] = []
    if content.get("image_media_id"):
        image = {"media_id": content["image_media_id"]}
        attachments.append({"msgtype": "image", "image": image})
    if content.get("link_url"):
        link = {"title": content.get("link_title") or "", "url": content["link_url"]}
        if content.get("link_desc"):
            link["desc"] = content["link_desc"]
        if content.get("link_picurl"):
            link["picurl"] = content["link_picurl"]
        attachments.append({"msgtype": "link", "link": link})
    if content.get("miniprogram_appid"):
        miniprogram = {
            "title": content.get("miniprogram_title") or "",
            "appid": content["miniprogram_appid"],
            "page": content.get("miniprogram_page") or "",
            "pic_media_id": content.get("miniprogram_pic_media_id") or "",
        }
        attachments.append({"msgtype": "miniprogram", "miniprogram": miniprogram})
    body: dict[str, Any] = {"text": {"content": str(content.get("text") or "")}}
    if attachments:
        body["attachments"] = attachments
    return body


def same_message(task: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether a listed task carries this text and these attachments. Attachments compare
    by what identifies them: WeCom may list an image by pic_url instead of its media_id."""
    text = (task.get("text") or {}).get("content") or ""
    return text == body["text"]["content"] and _attachment_keys(
        task.get("attachments")
    ) == _attachment_keys(body.get("attachments"))


def _attachment_keys(attachments: list[dict[str, Any]] | None) -> list[tuple[str, ...]]:
    keys = []
    for attachment in attachments or []:
        kind = str(attachment.get("msgtype") or "")
        part = attachment.get(kind) or {}
        if kind == "link":
            keys.append((kind, str(part.get("url") or "")))
        elif kind == "miniprogram":
            keys.append((kind, str(part.get("appid") or ""), str(part.get("page") or "")))
        else:
            keys.append((kind,))
    return sorted(keys)


def paged(
    api: WecomApi, scope: str, path: str, body: dict[str, Any], items: str, limit: int
) -> Iterator[dict[str, Any]]:
    """Every item of a cursor-paged list."""
    cursor, seen = "", set()
    while True:
        data = api.post(scope, path, {**body, "limit": limit, "cursor": cursor})
        yield from data.get(items) or []
        cursor = str(data.get("next_cursor") or "")
        if not cursor or cursor in seen:  # an empty cursor ends it; a repeated one would loop
            return
        seen.add(cursor)


def tasks_created(
    api: WecomApi, scope: str, start: datetime.datetime, end: datetime.datetime
) -> Iterator[dict[str, Any]]:
    """Customer mass sends the corp created (企业发表) between two times, in windows of at
    most a month."""
    while start < end:
        window_end = min(start + LIST_SPAN, end)
        body = {
            "chat_type": "single",
            "start_time": int(start.timestamp()),
            "end_time": int(window_end.timestamp()),
            "filter_type": 0,
        }
        yield from paged(api, scope, LIST_TASKS, body, "group_msg_list", LIST_PAGE)
        start = window_end


def staff_states(api: WecomApi, scope: str, msgid: str) -> dict[str, bool]:
    """Each staff member of a task → whether they confirmed (sent) it."""
    rows = paged(api, scope, STAFF_TASKS, {"msgid": msgid}, "task_list", RESULT_PAGE)
    return {str(row.get("userid")): as_int(row.get("status")) == STAFF_SENT for row in rows}


def send_results(api: WecomApi, scope: str, msgid: str, userid: str) -> Iterator[dict[str, Any]]:
    """One row per customer of this staff member in the task."""
    body = {"msgid": msgid, "userid": userid}
    yield from paged(api, scope, SEND_RESULTS, body, "send_list", RESULT_PAGE)


def as_int(value: Any) -> int:
    """WeCom's numbers, sometimes sent as strings (create_time); -1 when not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
