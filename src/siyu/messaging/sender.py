"""Sending the outbox of one channel: exactly once per key, even when a sender dies.

One sender drains a channel at a time (a lease on the channel row, renewed while it works),
so the channel's rate limit is simple to respect and two workers never race for a row. It
takes due messages in groups. For each group, in one transaction, it decides every message
(guardrails, address, rendering, the channel's limits) and marks those that will go
`sending`; only then does it call the vendor, and it records the answers in a second
transaction. So at any moment at most one group is in flight, and after a crash only its
messages are in `sending`: the next sender asks the vendor about each of them (`lookup`)
before anything is sent again (recovery.py). Retryable failures go back to `queued` with a
backoff; messages in quiet hours wait for their end."""

import datetime
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import get_random_string

from siyu.contacts.models import Contact
from siyu.core.errors import ValidationError
from siyu.messaging import guardrails
from siyu.messaging.addresses import addresses_for
from siyu.messaging.channels import transport_class
from siyu.messaging.channels.base import Outcome, Outgoing, SendResult, Transport, VendorError
from siyu.messaging.content import render_content
from siyu.messaging.inbound import unsubscribe_url
from siyu.messaging.links import LinkMaker
from siyu.messaging.models import ChannelConfig, OutboxMessage, OutboxStatus
from siyu.messaging.outbox_writes import ANSWERED, DECIDED, write_messages
from siyu.messaging.templating import TemplateRenderError, contact_context
from siyu.messaging.tokens import DbTokenStore

log = logging.getLogger(__name__)

GROUP = 100  # messages decided and in flight at once: what a crash can leave unknown
# vendor calls of a group made at the same time: with a vendor 30 ms away, 16 in flight
# allow ~500 calls a second per channel
THREADS = 16
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = (30, 60, 300, 900, 1800, 3600, 3 * 3600)


def backoff(attempts: int, retry_after: float | None = None) -> datetime.timedelta:
    base = BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1] if attempts else 30
    seconds = max(base * random.uniform(0.8, 1.2), retry_after or 0)
    return datetime.timedelta(seconds=seconds)


def transport_for(channel: ChannelConfig, http: httpx.Client | None = None) -> Transport:
    cls = transport_class(channel.kind)
    return cls(channel.settings, channel.secrets(), tokens=DbTokenStore(channel), http=http)


# --- the channel lease -------------------------------------------------------------------------


def _lease() -> datetime.timedelta:
    """How long a sender's hold on a channel lasts unless renewed: after a crash, the
    channel waits this long before another sender recovers it."""
    return datetime.timedelta(seconds=settings.SIYU_SEND_LEASE_SECONDS)


def claim_channel(channel_id: int, holder: str) -> bool:
    now = timezone.now()
    return bool(
        ChannelConfig.objects.filter(pk=channel_id)
        .filter(
            Q(send_lease_until__isnull=True) | Q(send_lease_until__lt=now) | Q(send_holder=holder)
        )
        .update(send_holder=holder, send_lease_until=now + _lease())
    )


def renew_channel(channel_id: int, holder: str) -> bool:
    """Extend the hold; False when another sender took the channel over (ours ran out)."""
    return bool(
        ChannelConfig.objects.filter(pk=channel_id, send_holder=holder).update(
            send_lease_until=timezone.now() + _lease()
        )
    )


class Lease:
    """The sender's hold, checked before every wave of vendor calls and renewed at most every
    RENEW_SECONDS, so that a slow group never outlives it; once lost, no further call is
    made and the group's messages stay `sending` for the new holder's recovery to settle."""

    RENEW_SECONDS = 10.0

    def __init__(self, channel_id: int, holder: str):
        self.channel_id, self.holder = channel_id, holder
        self.renewed = time.monotonic()
        self.lost = False

    def keep(self) -> bool:
        """Before each vendor call: renew when due, else check the hold is still ours (one
        indexed read: a sender that stalled past its lease must not send what the new
        holder's recovery is already sending)."""
        if self.lost:
            return False
        every = min(self.RENEW_SECONDS, settings.SIYU_SEND_LEASE_SECONDS / 4)
        if time.monotonic() - self.renewed >= every:
            # succeeds while nobody else took the channel, even past the lease's end
            self.lost = not renew_channel(self.channel_id, self.holder)
            self.renewed = time.monotonic()
        else:
            self.lost = not ChannelConfig.objects.filter(
                pk=self.channel_id, send_holder=self.holder
            ).exists()
        return not self.lost


def release_channel(channel_id: int, holder: str) -> None:
    ChannelConfig.objects.filter(pk=channel_id, send_holder=holder).update(
        send_holder="", send_lease_until=None
    )


# --- draining ----------------------------------------------------------------------------------


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    retried: int = 0
    waiting: int = 0  # quiet hours
    recovered: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def count(self, status: str, reason: str = "") -> None:
        attr = {"sent": "sent", "failed": "failed", "suppressed": "suppressed"}.get(status)
        if attr:
            setattr(self, attr, getattr(self, attr) + 1)
        if reason:
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1


def send_channel(channel_id: int, *, max_seconds: float | None = None) -> Tally:
    """Send the channel's due messages until none is due (or `max_seconds` passed). Returns
    at once when another sender holds the channel."""
    from siyu.messaging.recovery import recover_interrupted

    tally = Tally()
    holder = f"sender-{get_random_string(10)}"
    if not claim_channel(channel_id, holder):
        return tally
    started = time.monotonic()
    try:
        channel = ChannelConfig.objects.select_related("workspace").get(pk=channel_id)
        if not channel.enabled:
            return tally
        transport = transport_for(channel)
        tally.recovered = recover_interrupted(channel, transport)
        throttle = Throttle(channel.rate_per_second)
        lease = Lease(channel_id, holder)
        if not renew_channel(channel_id, holder):  # recovery may have taken a while
            return tally
        with ThreadPoolExecutor(THREADS) as pool:
            while max_seconds is None or time.monotonic() - started < max_seconds:
                group = _due(channel, group_size(channel, transport))
                if not group:
                    break
                _send_group(channel, transport, group, tally, pool, throttle, lease)
                if lease.lost or not renew_channel(channel_id, holder):
                    break  # another sender has the channel now
    finally:
        release_channel(channel_id, holder)
    return tally


def group_size(channel: ChannelConfig, transport: Transport) -> int:
    """Messages per group: 100, or one vendor call's worth (a WeCom mass send is one task per
    call for the staff member to confirm); fewer on a slow channel, so that a group takes
    at most a quarter of the lease to send."""
    size = max(GROUP, transport.max_batch)
    budget = channel.rate_per_second * settings.SIYU_SEND_LEASE_SECONDS / 4
    return max(1, min(size, int(budget)))


def _due(channel: ChannelConfig, size: int) -> list[OutboxMessage]:
    return list(
        OutboxMessage.objects.filter(
            channel=channel, status=OutboxStatus.QUEUED, due_at__lte=timezone.now()
        )
        .select_related("template")
        # the outbox_due index ends (due_at, id): no sort of the whole queue per group
        .order_by("due_at", "id")[:size]
    )


class Throttle:
    """At most `rate` messages a second, spread evenly."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def wait(self, messages: int) -> None:
        """Called by the group's threads: each takes the next slot, then sleeps until it."""
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval * messages
        if start > now:
            time.sleep(start - now)


def _send_group(channel, transport, group, tally, pool, throttle, lease) -> None:
    now = timezone.now()
    policy = guardrails.policy_for(channel.workspace)
    quiet_end = guardrails.quiet_until(policy, now)
    if quiet_end is not None:
        OutboxMessage.objects.filter(pk__in=[m.pk for m in group]).update(due_at=quiet_end)
        tally.waiting += len(group)
        return
    chunks = _decide(channel, transport, group, policy, now, tally)
    if not chunks:
        return

    def call(chunk: list[Outgoing]) -> list[SendResult]:
        throttle.wait(len(chunk))
        try:
            return call_transport(transport, chunk)
        finally:
            connections.close_all()  # a token refresh may have opened one in this thread

    results: list[SendResult] = []
    for start in range(0, len(chunks), THREADS):
        # a wave of calls, each wave only while the hold is still ours (checked here, in the
        # sender's own thread and transaction); what is left stays `sending` for the new
        # holder's recovery
        if not lease.keep():
            break
        for answer in pool.map(call, chunks[start : start + THREADS]):
            results += answer
    _record(channel, {m.key: m for m in group}, results, tally)


def call_transport(transport: Transport, chunk: list[Outgoing]) -> list[SendResult]:
    """The vendor's answer for each message; a failure of the whole call answers for all."""
    try:
        results = transport.send(chunk)
    except VendorError as exc:
        return [exc.result(m.key) for m in chunk]
    except httpx.HTTPError as exc:
        return [SendResult(m.key, Outcome.RETRY, code="network", reason=str(exc)) for m in chunk]
    except Exception as exc:  # noqa: BLE001 - a plugin bug must not lose the group
        log.exception("transport %s failed", transport.kind)
        return [SendResult(m.key, Outcome.RETRY, code="error", reason=str(exc)) for m in chunk]
    answered = {r.key for r in results}
    missing = [
        SendResult(m.key, Outcome.RETRY, code="no_answer", reason="the transport gave no result")
        for m in chunk
        if m.key not in answered
    ]
    return results + missing


def _decide(channel, transport, group, policy, now, tally) -> list[list[Outgoing]]:
    """Apply the guardrails, resolve addresses and render; mark what will go `sending` and
    record what will not, in one transaction. The messages to send, in vendor calls."""
    workspace = channel.workspace
    contact_ids = sorted({m.contact_id for m in group})
    contacts = Contact.objects.in_bulk(contact_ids)
    blocked = guardrails.consent_blocked(
        workspace.pk, transport.consent_channel, channel.consent_required, contact_ids
    )
    caps = guardrails.CapCounter(
        workspace.pk, guardrails.caps_for(policy, channel.kind, channel.settings), contact_ids, now
    )
    addresses = addresses_for(
        workspace.pk, transport.address_identity, transport.address_app_id(), contact_ids
    )
    ready: list[Outgoing] = []
    updates: list[OutboxMessage] = []
    links: dict[str, int] = {}  # tracked link ids by URL, shared by the group
    for message in group:
        contact = contacts.get(message.contact_id)
        address = addresses.get(message.contact_id, ("", ""))
        status, reason, detail = OutboxStatus.SENDING, "", ""
        if contact is None:
            status, reason = OutboxStatus.SUPPRESSED, "contact_gone"
        elif message.contact_id in blocked:
            status, reason = OutboxStatus.SUPPRESSED, "no_consent"
        elif cap := caps.reached(message.contact_id):
            status, reason = OutboxStatus.SUPPRESSED, f"frequency_cap:{cap}"
        elif transport.address_identity and not address[0]:
            status, reason = OutboxStatus.SUPPRESSED, "no_address"
        elif message.template is None:
            status, reason = OutboxStatus.FAILED, "no_template"
        else:
            try:
                context = {
                    **contact_context(contact, workspace=workspace),
                    "link": LinkMaker(workspace.pk, message.pk, links),
                }
                content = render_content(channel.kind, message.template.content, context)
                if transport.consent_channel == "email":
                    content["unsubscribe_url"] = unsubscribe_url(message, "email")
                transport.check_content(content)
            except TemplateRenderError as exc:
                status, reason, detail = OutboxStatus.FAILED, "template_error", exc.message
            except ValidationError as exc:
                status, reason, detail = OutboxStatus.FAILED, "content_limit", exc.message
        message.status, message.reason, message.detail = status, reason, detail
        message.address_masked = address[1]
        if status == OutboxStatus.SENDING:
            caps.add(message.contact_id)
            message.content, message.sent_at = content, now
            message.attempts += 1
            ready.append(Outgoing(message.key, address[0], content, message.contact_id))
        else:
            message.finished_at = now
            tally.count(status, reason)
        updates.append(message)
    with transaction.atomic():
        # claim: rows changed since they were read (a broadcast cancelled, another sender)
        # are left alone and not sent; the row locks hold off a cancel until this commits
        still = set(
            OutboxMessage.objects.select_for_update()
            .filter(pk__in=[m.pk for m in updates], status=OutboxStatus.QUEUED)
            .values_list("pk", flat=True)
        )
        keys = {m.key for m in updates if m.pk in still}
        ready = [o for o in ready if o.key in keys]
        chunks = _chunks(ready, transport.max_batch)
        refs = {m.key: m.ref for chunk in chunks for m in chunk}
        updates = [m for m in updates if m.pk in still]
        for message in updates:
            message.vendor_ref = refs.get(message.key, "")
        write_messages(updates, DECIDED)
    return chunks


def _chunks(ready: list[Outgoing], size: int) -> list[list[Outgoing]]:
    """The vendor calls of a group, each with the reference the vendor is given: the key of a
    message that goes alone, one reference for a batch (stored with its messages before the
    call, so that a crash can be asked about)."""
    token = get_random_string(8)
    chunks = [ready[i : i + size] for i in range(0, len(ready), size)]
    for n, chunk in enumerate(chunks):
        for message in chunk:
            message.ref = message.key if len(chunk) == 1 else f"batch:{token}:{n}"
    return chunks


def _record(channel, by_key: dict[str, OutboxMessage], results, tally) -> None:
    """Store the vendor's answers in one transaction."""
    now = timezone.now()
    updates = []
    for result in results:
        message = by_key.get(result.key)
        if message is None:
            continue
        apply_result(message, result, now)
        tally.count(message.status, message.reason)
        if message.status == OutboxStatus.QUEUED:
            tally.retried += 1
        updates.append(message)
    with transaction.atomic():
        write_messages(updates, ANSWERED)


def apply_result(message: OutboxMessage, result: SendResult, now: datetime.datetime) -> None:
    """A vendor's answer onto the message (not saved)."""
    message.vendor_id = result.vendor_id or message.vendor_id
    message.detail = result.reason[:2000]
    if result.outcome == Outcome.SENT:
        message.status, message.reason = OutboxStatus.SENT, ""
        message.sent_at = message.sent_at or now
    elif result.outcome == Outcome.RETRY and message.attempts < MAX_ATTEMPTS:
        message.status, message.reason = OutboxStatus.QUEUED, f"retry:{result.code}"[:120]
        message.sent_at = None  # not sent: does not count against a cap
        message.due_at = now + backoff(message.attempts, result.retry_after)
    else:
        exhausted = result.outcome == Outcome.RETRY
        message.status = OutboxStatus.FAILED
        message.reason = ("retries_exhausted:" if exhausted else "vendor:") + result.code
        message.reason = message.reason[:120]
        message.sent_at, message.finished_at = None, now
