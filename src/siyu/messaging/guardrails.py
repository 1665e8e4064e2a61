"""The rules no message may break, checked for a group of messages at once when they are
about to be sent (the broadcast planner applies the same rules to whole audiences in SQL
first; checking again at send time covers what changed in between).

- **Consent** per channel: with `consent_required` the contact must have granted it,
  otherwise only a withdrawal stops the message.
- **Frequency caps** (`ReachPolicy.caps`): per contact, per channel (sms, email, wecom,
  wechat, webhook: channels.REACH) and for all
  channels together, at most N messages in the last 24 hours ("day") and 7 days ("week").
  Messages being sent count as sent.
- **Quiet hours** in the workspace's time zone: a message waits until they end; it is not
  dropped.
"""

import datetime
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q

from siyu.contacts.models import Consent, ConsentStatus
from siyu.messaging.channels import REACH, kinds_reaching
from siyu.messaging.models import OutboxMessage, OutboxStatus, ReachPolicy

WINDOWS = {"day": datetime.timedelta(days=1), "week": datetime.timedelta(days=7)}
# what counts against a cap: a message that left, or is leaving now
COUNTED = (OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.BOUNCED)


@dataclass(frozen=True)
class Policy:
    caps: dict[str, dict[str, int]]
    quiet_start: datetime.time | None
    quiet_end: datetime.time | None
    tz: zoneinfo.ZoneInfo

    def cap(self, scope: str, window: str) -> int | None:
        value = (self.caps.get(scope) or {}).get(window)
        return int(value) if value is not None else None


def policy_for(workspace) -> Policy:
    row = ReachPolicy.objects.filter(workspace=workspace).first()
    return Policy(
        caps=dict(row.caps) if row else {},
        quiet_start=row.quiet_start if row else None,
        quiet_end=row.quiet_end if row else None,
        tz=zoneinfo.ZoneInfo(workspace.timezone),
    )


def quiet_until(policy: Policy, now: datetime.datetime) -> datetime.datetime | None:
    """When the quiet hours that `now` falls in end (UTC), or None outside them. A window
    may wrap midnight (21:00–09:00)."""
    start, end = policy.quiet_start, policy.quiet_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(policy.tz)
    t = local.time()
    wraps = start > end
    inside = (t >= start or t < end) if wraps else (start <= t < end)
    if not inside:
        return None
    day = local.date()
    if wraps and t >= start:
        day += datetime.timedelta(days=1)
    ends = datetime.datetime.combine(day, end, tzinfo=policy.tz)
    return ends.astimezone(datetime.UTC)


def consent_blocked(
    workspace_id: int, consent_channel: str | None, required: bool, contact_ids: list[int]
) -> set[int]:
    """The contacts among these whose consent forbids the channel."""
    if not consent_channel or not contact_ids:
        return set()
    rows = Consent.objects.filter(
        workspace_id=workspace_id, channel=consent_channel, contact_id__in=contact_ids
    ).values_list("contact_id", "status")
    status = dict(rows)
    if required:
        return {c for c in contact_ids if status.get(c) != ConsentStatus.GRANTED}
    return {c for c in contact_ids if status.get(c) == ConsentStatus.WITHDRAWN}


@dataclass(frozen=True)
class Cap:
    """At most `limit` messages per contact within `window`, on channels of `kinds` (None:
    all channels); `name` is what a suppression reports (`sms/day`, `wecom/mass`)."""

    name: str
    window: datetime.timedelta
    limit: int
    kinds: tuple[str, ...] | None


def caps_for(policy: Policy, channel_kind: str, channel_settings: dict | None = None) -> list[Cap]:
    """The caps a message on a channel of this kind must respect: the reach policy's for all
    channels and for the channel's reach, and for WeCom its per-customer mass-send cap (WeCom's
    own limit, which has changed over time, so it is a channel setting)."""
    reach = REACH[channel_kind]
    caps = [
        Cap(
            f"{scope}/{window}",
            WINDOWS[window],
            limit,
            None if scope == "all" else tuple(kinds_reaching(scope)),
        )
        for scope in ("all", reach)
        for window in WINDOWS
        if (limit := policy.cap(scope, window)) is not None
    ]
    settings = channel_settings or {}
    if channel_kind == "wecom" and settings.get("mass_send_cap") not in (None, ""):
        days = int(settings.get("mass_send_cap_days") or 1)
        caps.append(
            Cap(
                "wecom/mass",
                datetime.timedelta(days=days),
                int(settings["mass_send_cap"]),
                ("wecom",),
            )
        )
    return caps


class CapCounter:
    """How many messages each of a group's contacts got in the cap windows, kept current as
    the group's own messages are let through (two messages to one contact in one group count
    twice)."""

    def __init__(
        self,
        workspace_id: int,
        caps: list[Cap],
        contact_ids: list[int],
        now: datetime.datetime,
    ):
        self.caps = caps
        self.counts: dict[int, dict[str, int]] = {}
        if not caps or not contact_ids:
            return
        aggregates: dict[str, Any] = {}
        for cap in caps:
            condition = Q(sent_at__gte=now - cap.window)
            if cap.kinds is not None:
                condition &= Q(channel__kind__in=cap.kinds)
            aggregates[cap.name] = Count("id", filter=condition)
        rows = (
            OutboxMessage.objects.filter(
                workspace_id=workspace_id,
                contact_id__in=contact_ids,
                status__in=COUNTED,
                sent_at__gte=now - max(cap.window for cap in caps),
            )
            .values("contact_id")
            .annotate(**aggregates)
        )
        for row in rows:
            contact_id = row.pop("contact_id")
            self.counts[contact_id] = row

    def reached(self, contact_id: int) -> str | None:
        """The first cap this contact has reached (`sms/day`, `all/week`), or None."""
        counts = self.counts.get(contact_id, {})
        for cap in self.caps:
            if counts.get(cap.name, 0) >= cap.limit:
                return cap.name
        return None

    def add(self, contact_id: int) -> None:
        counts = self.counts.setdefault(contact_id, {})
        for cap in self.caps:
            counts[cap.name] = counts.get(cap.name, 0) + 1


def clean_caps(caps: Any) -> dict[str, dict[str, int]]:
    """Caps as stored, or ValidationError naming the entry."""
    from siyu.core.errors import ValidationError

    if not isinstance(caps, dict):
        raise ValidationError("caps", "expected an object")
    cleaned: dict[str, dict[str, int]] = {}
    for scope, windows in caps.items():
        if scope != "all" and scope not in set(REACH.values()):
            raise ValidationError(
                f"caps.{scope}",
                "expected all or a channel: %(choices)s",
                params={"choices": ", ".join(sorted(set(REACH.values())))},
            )
        if not isinstance(windows, dict):
            raise ValidationError(f"caps.{scope}", "expected an object of day / week")
        for window, limit in windows.items():
            path = f"caps.{scope}.{window}"
            if window not in WINDOWS:
                raise ValidationError(path, "expected day or week")
            if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 1000:
                raise ValidationError(path, "expected a whole number from 0 to 1000")
        cleaned[scope] = {w: int(v) for w, v in windows.items()}
    return cleaned
