"""WeCom (企业微信) customer mass sends: a message to a customer goes out as a task of the
staff member it is sent for (`Outgoing.sender`, else the channel's `default_sender`), who
confirms it in the WeCom app; only then does the customer get it.

So a message passes three states, each read from WeCom:
- **created**: `send` answers SENT with the task's msgid as vendor_id (customers WeCom
  refuses at once, e.g. not a customer of that staff member, are FAILED);
- **confirmed**: `task_confirmed(msgid)` (or `staff_states` per staff member) says the
  staff member sent it; `notify_staff` reminds them through the self-built app;
- **sent**: `track(msgid)` gives one Receipt per customer with a final result.

Recipients of one task all get the same text, so a batch is grouped by sender and by
rendered content: a template that renders differently per customer makes one task per
customer, each to be confirmed. WeCom also caps how many mass messages one customer
receives (the documented cap has changed: 4 a month, later 1 a day); `mass_send_cap` and
`mass_send_cap_days` declare it for the outbox's guardrail, and a customer over it shows
up in `track` as failed with code `receive_limit`.

Tokens: the 客户联系 secret (scope "contact") for customer-contact calls, or the app secret
when only that is set (an app in the 可调用应用 list may make them too); the app secret (scope
"app") for app messages."""

import datetime
import json
import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import httpx
from django.utils import timezone

from siyu.core.errors import ValidationError
from siyu.messaging.channels.base import (
    FieldSpec,
    Outcome,
    Outgoing,
    Receipt,
    SendResult,
    Transport,
    VendorError,
)
from siyu.messaging.channels.wecom import groupmsg
from siyu.messaging.channels.wecom.api import WecomApi
from siyu.messaging.limits import check_wecom_text
from siyu.messaging.tokens import MemoryTokenStore

log = logging.getLogger(__name__)

CONTACT, APP = "contact", "app"  # token scopes, one per secret
SEND_APP_MESSAGE = "/cgi-bin/message/send"
APP_TEXT_MAX_BYTES = 2048  # an app text message; WeCom truncates what is longer
# WeCom's clock and ours differ a little: search for tasks this much before and after
CLOCK_SKEW = datetime.timedelta(minutes=5)
# byte limits of add_msg_template's attachment fields
FIELD_MAX_BYTES = {
    "link_title": 128,
    "link_url": 2048,
    "link_desc": 512,
    "link_picurl": 2048,
    "miniprogram_title": 64,
}
CUSTOMER_FAILURES = {
    groupmsg.NOT_FRIEND: ("not_friend", "the customer is not a friend of the sender"),
    groupmsg.RECEIVE_LIMIT: (
        "receive_limit",
        "the customer already received another mass message (WeCom's cap)",
    ),
}


class WecomTransport(Transport):
    kind = "wecom"
    consent_channel = "wecom"
    address_identity = "wecom_external_userid"
    max_batch = groupmsg.MAX_RECIPIENTS
    # the throttle counts recipients, and one call carries up to 10,000 of them
    default_rate = 10_000.0
    settings_fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("corp_id", "Corp ID", help="My Enterprise → Enterprise Information."),
        FieldSpec(
            "agent_id",
            "Agent ID of the self-built app",
            kind="int",
            required=False,
            help="Needed to remind staff members to confirm a mass send.",
        ),
        FieldSpec(
            "default_sender",
            "Default sender (staff userid)",
            required=False,
            help="Sends the messages that name no staff member.",
        ),
        FieldSpec(
            "mass_send_cap",
            "Mass messages a customer may receive",
            kind="int",
            required=False,
            default=1,
            help="WeCom's cap per customer; it has changed over time.",
        ),
        FieldSpec(
            "mass_send_cap_days",
            "… in this many days",
            kind="int",
            required=False,
            default=1,
        ),
    )
    secret_fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("contact_secret", "Customer contact secret", help="Customer Contact → API."),
        FieldSpec(
            "app_secret",
            "Self-built app secret",
            required=False,
            help="For reminders to staff members (app messages).",
        ),
    )
    template_fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec(
            "text",
            "Text",
            kind="textarea",
            template=True,
            help="At most 4,000 bytes (a Chinese character takes 3). Customers of one staff "
            "member with the same rendered message share one task to confirm.",
        ),
        FieldSpec("link_title", "Link title", required=False, template=True),
        FieldSpec("link_url", "Link URL", required=False, help="Adds a link card."),
        FieldSpec("link_desc", "Link description", required=False, template=True),
        FieldSpec("link_picurl", "Link cover image URL", required=False),
        FieldSpec(
            "image_media_id",
            "Image media_id",
            required=False,
            help="A temporary media_id lasts three days.",
        ),
        FieldSpec("miniprogram_title", "Mini program title", required=False),
        FieldSpec("miniprogram_appid", "Mini program appid", required=False),
        FieldSpec("miniprogram_page", "Mini program page", required=False),
        FieldSpec("miniprogram_pic_media_id", "Mini program cover media_id", required=False),
    )

    def __init__(self, settings, secrets, *, tokens=None, http=None):
        super().__init__(settings, secrets, tokens=tokens or MemoryTokenStore(), http=http)
        scopes = {CONTACT: secrets.get("contact_secret") or "", APP: secrets.get("app_secret")}
        self.api = WecomApi(self.http, self.tokens, str(settings.get("corp_id") or ""), scopes)
        self.contact_scope = CONTACT if scopes[CONTACT] else APP
        # a task's recipients never change once created: lookups of one group ask once
        self._recipients: dict[tuple[str, str], frozenset[str]] = {}

    # --- content ---------------------------------------------------------------------------

    def check_content(self, content: dict[str, Any]) -> None:
        check_wecom_text(str(content.get("text") or ""), field="text")
        for name, limit in FIELD_MAX_BYTES.items():
            size = len(str(content.get(name) or "").encode())
            if size > limit:
                raise ValidationError(
                    name, "%(n)s bytes; WeCom accepts at most %(max)s", {"n": size, "max": limit}
                )
        _require_together(content, "link", ("link_title", "link_url"), groupmsg.LINK_FIELDS)
        mini = groupmsg.MINIPROGRAM_FIELDS
        _require_together(content, "mini program", mini, mini)

    # --- sending ---------------------------------------------------------------------------

    def send(self, batch: list[Outgoing]) -> list[SendResult]:
        results: list[SendResult] = []
        groups: dict[tuple[str, str], list[Outgoing]] = {}
        for message in batch:
            sender = self._sender(message)
            if not sender:
                results.append(_no_sender(message))
                continue
            body = json.dumps(groupmsg.message_body(message.content), sort_keys=True)
            groups.setdefault((sender, body), []).append(message)
        for (sender, body), messages in groups.items():
            for start in range(0, len(messages), groupmsg.MAX_RECIPIENTS):
                chunk = messages[start : start + groupmsg.MAX_RECIPIENTS]
                results += self._create_task(sender, json.loads(body), chunk)
        return results

    def _create_task(
        self, sender: str, body: dict[str, Any], messages: list[Outgoing]
    ) -> list[SendResult]:
        """One add_msg_template call. Its errors answer for its messages only, so that the
        tasks other groups of the batch created stay recorded."""
        request = {
            "chat_type": "single",
            "external_userid": [m.address for m in messages],
            "sender": sender,
            **body,
        }
        started = timezone.now()
        try:
            data = self.api.post(self.contact_scope, groupmsg.ADD_MSG_TEMPLATE, request)
        except VendorError as exc:
            return [exc.result(m.key) for m in messages]
        except httpx.HTTPError as exc:
            return self._after_lost_answer(sender, body, messages, started, exc)
        msgid = str(data.get("msgid") or "")
        refused = set(data.get("fail_list") or [])
        if msgid and len(refused) < len(messages):
            self._remind(sender, len(messages) - len(refused))
        return [_refused(m) if m.address in refused else _sent(m, msgid) for m in messages]

    def _remind(self, sender: str, customers: int) -> None:
        """Tell the staff member a mass send waits for their confirmation in WeCom (an app
        message, when the channel has an app); a failure here changes nothing sent."""
        if not self.settings.get("agent_id") or not self.secrets.get("app_secret"):
            return
        text = f"您有一条客户群发待确认（{customers} 位客户），请在企业微信「客户群发」中确认发送。"
        try:
            self.notify_staff(sender, text)
        except (VendorError, httpx.HTTPError):
            log.warning("WeCom: could not remind %s of a mass send", sender, exc_info=True)

    def _after_lost_answer(self, sender, body, messages, started, exc) -> list[SendResult]:
        """The call failed on the way: unless it never left (no connection), WeCom may have
        created the task, so look for it before answering RETRY (a resend would make the
        staff member confirm a second, identical task)."""
        retry = [
            SendResult(m.key, Outcome.RETRY, code="network", reason=str(exc) or type(exc).__name__)
            for m in messages
        ]
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return retry
        try:
            addresses = {m.address for m in messages}
            for msgid in self._matching_tasks(sender, body, started):
                recipients = self._task_recipients(msgid, sender)
                if recipients & addresses:
                    # who is not in it was in the lost answer's fail_list
                    return [
                        _sent(m, msgid) if m.address in recipients else _refused(m)
                        for m in messages
                    ]
        except (VendorError, httpx.HTTPError):
            log.warning("WeCom: could not tell whether a mass send was created", exc_info=True)
        return retry

    # --- after a crash ---------------------------------------------------------------------

    def lookup(self, message: Outgoing, since: datetime.datetime) -> SendResult | None:
        """SENT with the msgid when a task created since `since` by this message's sender,
        with its content, includes its customer; RETRY when none does (it was not sent);
        None when WeCom refuses to tell (no permission). Raises VendorError or
        httpx.HTTPError when WeCom could not be asked now: ask again later."""
        sender = self._sender(message)
        if not sender:
            return _no_sender(message)
        body = groupmsg.message_body(message.content)
        try:
            for msgid in self._matching_tasks(sender, body, since):
                if message.address in self._task_recipients(msgid, sender):
                    return _sent(message, msgid)
        except VendorError as exc:
            if exc.retryable:
                raise
            log.warning("WeCom lookup of %s refused: %s", message.key, exc)
            return None
        return SendResult(
            message.key,
            Outcome.RETRY,
            code="not_sent",
            reason=f"WeCom has no mass send for this customer since {since.isoformat()}",
        )

    def _matching_tasks(self, sender, body, since: datetime.datetime) -> list[str]:
        """Msgids of tasks with this content created since then, newest first. The sender
        is not in the list (API-created tasks carry no creator): `_task_recipients` asks."""
        end = timezone.now() + CLOCK_SKEW
        tasks = groupmsg.tasks_created(self.api, self.contact_scope, since - CLOCK_SKEW, end)
        matching = [t for t in tasks if groupmsg.same_message(t, body)]
        matching.sort(key=lambda t: groupmsg.as_int(t.get("create_time")), reverse=True)
        return [str(t.get("msgid")) for t in matching]

    def _task_recipients(self, msgid: str, sender: str) -> frozenset[str]:
        key = (msgid, sender)
        if key not in self._recipients:
            rows = groupmsg.send_results(self.api, self.contact_scope, msgid, sender)
            self._recipients[key] = frozenset(str(r.get("external_userid")) for r in rows)
        return self._recipients[key]

    # --- confirmation and delivery ---------------------------------------------------------

    def staff_states(self, msgid: str) -> dict[str, bool]:
        """Each staff member of the task → whether they confirmed (sent) it."""
        return groupmsg.staff_states(self.api, self.contact_scope, msgid)

    def task_confirmed(self, msgid: str) -> bool:
        """Whether the staff member (every one, if several) confirmed the task."""
        states = self.staff_states(msgid)
        return bool(states) and all(states.values())

    def track(self, msgid: str) -> list[Receipt]:
        """One Receipt per customer of the task whose outcome is final: delivered for status
        1, not delivered with code `not_friend` (2) or `receive_limit` (3). Customers not yet
        sent to (the staff member has not confirmed) give none. Asking again returns the
        same receipts again, with the ones that became final since."""
        receipts: list[Receipt] = []
        for userid, confirmed in self.staff_states(msgid).items():
            if not confirmed:  # nobody of theirs has a result before they confirm
                continue
            for row in groupmsg.send_results(self.api, self.contact_scope, msgid, userid):
                receipt = _receipt(msgid, row)
                if receipt:
                    receipts.append(receipt)
        return receipts

    def notify_staff(self, userid: str, text: str) -> str:
        """Send a staff member an app message (e.g. "please confirm the mass send"); the
        app message's msgid."""
        try:
            agent_id = int(self.settings.get("agent_id") or 0)
        except (TypeError, ValueError):
            agent_id = 0
        if agent_id <= 0:
            raise VendorError("not_configured", "agent_id is not set", retryable=False)
        body = {
            "touser": userid,
            "msgtype": "text",
            "agentid": agent_id,
            "text": {"content": _truncate(text, APP_TEXT_MAX_BYTES)},
        }
        data = self.api.post(APP, SEND_APP_MESSAGE, body)
        # a recipient the app cannot reach is listed, not an error (unless all are)
        for field in ("invaliduser", "unlicenseduser"):
            if userid.lower() in str(data.get(field) or "").lower().split("|"):
                raise VendorError(field, f"WeCom cannot reach {userid}", retryable=False)
        return str(data.get("msgid") or "")

    def _sender(self, message: Outgoing) -> str:
        return message.sender or str(self.settings.get("default_sender") or "")


def _require_together(
    content: dict[str, Any], attachment: str, required: Iterable[str], fields: Iterable[str]
) -> None:
    """When any field of an attachment is set, every one it needs must be."""
    if any(content.get(name) for name in fields):
        for name in required:
            if not content.get(name):
                raise ValidationError(
                    name, "required for a %(attachment)s attachment", {"attachment": attachment}
                )


def _sent(message: Outgoing, msgid: str) -> SendResult:
    # SENT means the task exists: the customer gets it once the staff member confirms
    return SendResult(message.key, Outcome.SENT, vendor_id=msgid)


def _refused(message: Outgoing) -> SendResult:
    return SendResult(
        message.key,
        Outcome.FAILED,
        code="fail_list",
        reason="WeCom cannot send to this customer (not a customer of the sender, or invalid)",
    )


def _no_sender(message: Outgoing) -> SendResult:
    return SendResult(
        message.key,
        Outcome.FAILED,
        code="no_sender",
        reason="no staff member to send it: set the channel's default sender",
    )


def _receipt(msgid: str, row: dict[str, Any]) -> Receipt | None:
    status = groupmsg.as_int(row.get("status"))
    address = str(row.get("external_userid") or "")
    if status == groupmsg.SENT:
        at = groupmsg.as_int(row.get("send_time"))
        when = datetime.datetime.fromtimestamp(at, datetime.UTC) if at > 0 else None
        return Receipt(True, vendor_id=msgid, address=address, at=when)
    if status in CUSTOMER_FAILURES:
        code, reason = CUSTOMER_FAILURES[status]
        return Receipt(False, vendor_id=msgid, address=address, code=code, reason=reason)
    return None


def _truncate(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, cut between characters."""
    return text.encode()[:max_bytes].decode(errors="ignore")
