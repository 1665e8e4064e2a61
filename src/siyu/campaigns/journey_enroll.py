"""Contacts entering a journey: from its trigger's signals, a date, or the API.

Entering is one bulk insert per chunk of contacts. The entry rule keeps out who is inside
already, and who entered before (once) or within the last `reentry_days`; a partial unique
index (one active walk per contact and journey) settles races between two workers. The
holdout share, by a stable hash of journey and contact, enters as `holdout`: it takes no
step but its goal conversions are counted, for the uplift."""

import datetime
import zoneinfo
from collections.abc import Iterable

from django.db.models import Min, Q
from django.utils import timezone

from siyu.campaigns.journey_models import (
    EnrollmentStatus,
    Journey,
    JourneyEnrollment,
    JourneyStatus,
)
from siyu.contacts.models import Contact
from siyu.core import sqlbulk
from siyu.segments.compiler import sample_bucket
from siyu.segments.models import ChangeKind, SegmentChange
from siyu.tracking.models import Order

CHUNK = 5000


def enroll(
    journey: Journey, contact_ids: Iterable[int], now: datetime.datetime | None = None
) -> int:
    """Let these contacts (of the journey's workspace) in, as the entry rule allows; how
    many entered (the holdout included)."""
    now = now or timezone.now()
    version = journey.live_version
    if journey.status != JourneyStatus.ACTIVE or version is None:
        return 0
    ids = sorted(set(contact_ids))
    entered = 0
    for start in range(0, len(ids), CHUNK):
        entered += _enroll_chunk(journey, version, ids[start : start + CHUNK], now)
    return entered


def _enroll_chunk(journey: Journey, version, ids: list[int], now) -> int:
    ids = list(
        Contact.objects.filter(workspace_id=journey.workspace_id, pk__in=ids).values_list(
            "pk", flat=True
        )
    )
    prior = JourneyEnrollment.objects.filter(journey=journey, contact_id__in=ids)
    if journey.reentry_days is not None:
        since = now - datetime.timedelta(days=journey.reentry_days)
        prior = prior.filter(Q(status=EnrollmentStatus.ACTIVE) | Q(entered_at__gt=since))
    blocked = set(prior.values_list("contact_id", flat=True))
    threshold = round(float(journey.holdout_percent) * 100)
    start = version.graph["start"]
    rows = []
    for contact_id in ids:
        if contact_id in blocked:
            continue
        held_out = threshold and sample_bucket(contact_id, f"journey:{journey.pk}") < threshold
        rows.append(
            JourneyEnrollment(
                workspace_id=journey.workspace_id,
                journey_id=journey.pk,
                version_id=version.pk,
                contact_id=contact_id,
                status=EnrollmentStatus.HOLDOUT if held_out else EnrollmentStatus.ACTIVE,
                step="" if held_out else start,
                wake_at=None if held_out else now,
                entered_at=now,
            )
        )
    sqlbulk.insert_rows(JourneyEnrollment, rows, ignore_conflicts=True)
    return len(rows)


def enroll_from_segment_changes(journey: Journey, now: datetime.datetime | None = None) -> int:
    """Contacts that entered (or left) the trigger's segment since the journey last looked."""
    trigger = journey.live_version.graph["trigger"] if journey.live_version else {}
    if trigger.get("type") not in ("segment_entered", "segment_exited"):
        return 0
    kind = ChangeKind.ENTERED if trigger["type"] == "segment_entered" else ChangeKind.EXITED
    entered = 0
    while True:
        changes = list(
            SegmentChange.objects.filter(
                workspace_id=journey.workspace_id,
                segment_id=trigger["segment_id"],
                kind=kind,
                id__gt=journey.trigger_cursor,
            )
            .order_by("id")
            .values_list("id", "contact_id")[:CHUNK]
        )
        if not changes:
            return entered
        entered += enroll(journey, [contact_id for _, contact_id in changes], now)
        journey.trigger_cursor = changes[-1][0]
        Journey.objects.filter(pk=journey.pk).update(trigger_cursor=journey.trigger_cursor)


def latest_change_id(workspace_id: int) -> int:
    last = SegmentChange.objects.filter(workspace_id=workspace_id).order_by("-id").first()
    return last.pk if last else 0


def next_date_run(journey: Journey, after: datetime.datetime) -> datetime.datetime:
    """The next moment after `after` at the trigger's local time of day."""
    tz = zoneinfo.ZoneInfo(journey.workspace.timezone)
    at = datetime.time.fromisoformat(journey.live_version.graph["trigger"]["at"])
    local = after.astimezone(tz)
    candidate = datetime.datetime.combine(local.date(), at, tzinfo=tz)
    if candidate <= local:
        candidate += datetime.timedelta(days=1)
    return candidate.astimezone(datetime.UTC)


def enroll_by_date(journey: Journey, now: datetime.datetime | None = None) -> int:
    """Once a day at the trigger's time: contacts whose date falls today. `birthday`: the
    birthday is `offset_days` from today (7: a week before it); `first_order` and a date
    attribute: the date was `offset_days` ago (30: a month after the first order)."""
    now = now or timezone.now()
    if journey.next_date_run_at is None or journey.next_date_run_at > now:
        return 0
    trigger = journey.live_version.graph["trigger"]
    tz = zoneinfo.ZoneInfo(journey.workspace.timezone)
    today = now.astimezone(tz).date()
    ws = journey.workspace_id
    field, offset = trigger["field"], trigger["offset_days"]
    if field == "birthday":
        day = today + datetime.timedelta(days=offset)
        match = Q(birthday__month=day.month, birthday__day=day.day)
        if (day.month, day.day) == (2, 28) and not _leap(day.year):
            match |= Q(birthday__month=2, birthday__day=29)  # their day, in a common year
        ids = Contact.objects.filter(match, workspace_id=ws).values_list("pk", flat=True)
    elif field == "first_order":
        day = today - datetime.timedelta(days=offset)
        start = datetime.datetime.combine(day, datetime.time(), tzinfo=tz)
        ids = (
            Order.objects.filter(workspace_id=ws, contact_id__isnull=False)
            .values("contact_id")
            .annotate(first=Min("placed_at"))
            .filter(first__gte=start, first__lt=start + datetime.timedelta(days=1))
            .values_list("contact_id", flat=True)
        )
    else:
        key = field.split(":", 1)[1]
        day = today - datetime.timedelta(days=offset)
        ids = Contact.objects.filter(
            workspace_id=ws, **{f"attributes__{key}": day.isoformat()}
        ).values_list("pk", flat=True)
    entered = enroll(journey, list(ids), now)
    journey.next_date_run_at = next_date_run(journey, now)
    Journey.objects.filter(pk=journey.pk).update(next_date_run_at=journey.next_date_run_at)
    return entered


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
