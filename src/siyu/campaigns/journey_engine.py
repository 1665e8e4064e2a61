"""Walking contacts through journeys: durable timers moved in batches, never sleeping tasks.

Every active walk has a step and a `wake_at`. The worker takes a workspace's due walks in
batches (under a workspace lock, so two workers never move one walk twice), groups them by
version and step, runs each step for its whole group as set operations, and writes every
walk's move in one statement. A step that finishes at once (send, branch, split, tag,
attribute) moves the walk on with `wake_at` = now, so the next batch carries it further; a
wait sets its timer (`waiting`) and moves on when the timer fires."""

import datetime
import json
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from siyu.campaigns.journey_graph import duration
from siyu.campaigns.journey_models import (
    EnrollmentStatus,
    Journey,
    JourneyEnrollment,
    JourneyStatus,
    JourneyVersion,
)
from siyu.contacts.actions.tags import contacts_tag
from siyu.contacts.models import Contact
from siyu.core import sqlbulk
from siyu.core.audit import Actor
from siyu.core.models import Workspace
from siyu.messaging import guardrails
from siyu.messaging.models import ChannelConfig, OutboxMessage
from siyu.messaging.scheduling import send_soon
from siyu.segments.compiler import sample_bucket, segment_queryset

BATCH = 5000
_LOCK_CLASS = 0x10E7  # pg_advisory_xact_lock(class, workspace): one stepper per workspace


@dataclass(slots=True)
class Walk:
    id: int
    journey_id: int
    version_id: int
    contact_id: int
    step: str
    waiting: bool


@dataclass(slots=True)
class Move:
    id: int
    step: str
    wake_at: datetime.datetime | None
    waiting: bool = False
    waiting_for: str = ""
    status: str = EnrollmentStatus.ACTIVE
    finished_at: datetime.datetime | None = None


def go(walk: Walk, target: str | None, now: datetime.datetime) -> Move:
    """On to `target` at once, or the end of the walk when there is none."""
    if target is None:
        return Move(walk.id, walk.step, None, status=EnrollmentStatus.COMPLETED, finished_at=now)
    return Move(walk.id, target, now)


def advance(now: datetime.datetime | None = None, max_batches: int | None = None) -> int:
    """Move every workspace's due walks; how many steps were taken."""
    workspace_ids = (
        Journey.objects.filter(status__in=(JourneyStatus.ACTIVE, JourneyStatus.PAUSED))
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    return sum(advance_workspace(ws, now, max_batches) for ws in list(workspace_ids))


def advance_workspace(
    workspace_id: int, now: datetime.datetime | None = None, max_batches: int | None = None
) -> int:
    now = now or timezone.now()
    workspace = Workspace.objects.get(pk=workspace_id)
    taken = batches = 0
    while max_batches is None or batches < max_batches:
        with transaction.atomic():
            sqlbulk.workspace_lock(_LOCK_CLASS, workspace_id)
            walks = _due(workspace_id, now)
            if not walks:
                break
            taken += _run_batch(workspace, walks, now)
        batches += 1
    return taken


def _due(workspace_id: int, now) -> list[Walk]:
    rows = (
        JourneyEnrollment.objects.filter(
            workspace_id=workspace_id, status=EnrollmentStatus.ACTIVE, wake_at__lte=now
        )
        .exclude(journey__status=JourneyStatus.PAUSED)
        .order_by("wake_at", "id")
        .values_list("id", "journey_id", "version_id", "contact_id", "step", "waiting")[:BATCH]
    )
    return [Walk(*row) for row in rows]


def _run_batch(workspace: Workspace, walks: list[Walk], now) -> int:
    versions = {
        v.pk: v for v in JourneyVersion.objects.filter(pk__in={w.version_id for w in walks})
    }
    groups: dict[tuple[int, str], list[Walk]] = defaultdict(list)
    for walk in walks:
        groups[(walk.version_id, walk.step)].append(walk)
    moves: list[Move] = []
    entered: dict[tuple[int, str], int] = {}
    channels: set[int] = set()
    for (version_id, step_id), group in groups.items():
        step = versions[version_id].graph["steps"].get(step_id)
        if step is None:  # cannot happen with a validated graph; never loop on it
            moves += [
                Move(w.id, w.step, None, status=EnrollmentStatus.EXITED, finished_at=now)
                for w in group
            ]
            continue
        fresh = sum(1 for w in group if not w.waiting)
        if fresh:
            entered[(version_id, step_id)] = fresh
        context = StepContext(workspace, versions[version_id], step_id, now, channels)
        moves += RUNNERS[step["type"]](context, step, group)
    _write(moves, walks)
    _count(workspace.pk, entered)
    if channels:
        send_soon(channels)
    return len(walks)


@dataclass
class StepContext:
    workspace: Workspace
    version: JourneyVersion
    step_id: str
    now: datetime.datetime
    channels: set[int]


def _wait(ctx: StepContext, step: dict, walks: list[Walk]) -> list[Move]:
    moves = []
    for walk in walks:
        if walk.waiting:  # the timer fired
            target = step.get("timeout_next") if "until_event" in step else step.get("next")
            moves.append(go(walk, target, ctx.now))
        elif "duration" in step:
            moves.append(Move(walk.id, walk.step, ctx.now + duration(step["duration"], ""), True))
        elif "until_time" in step:
            moves.append(Move(walk.id, walk.step, _next_local(ctx, step["until_time"]), True))
        else:
            wake = ctx.now + duration(step["timeout"], "")
            moves.append(Move(walk.id, walk.step, wake, True, step["until_event"]["event"]))
    return moves


def _next_local(ctx: StepContext, at: str) -> datetime.datetime:
    tz = zoneinfo.ZoneInfo(ctx.workspace.timezone)
    local = ctx.now.astimezone(tz)
    candidate = datetime.datetime.combine(local.date(), datetime.time.fromisoformat(at), tzinfo=tz)
    if candidate <= local:
        candidate += datetime.timedelta(days=1)
    return candidate.astimezone(datetime.UTC)


def _branch(ctx: StepContext, step: dict, walks: list[Walk]) -> list[Move]:
    ids = [w.contact_id for w in walks]
    matched = set(
        segment_queryset(ctx.workspace, step["rule"], ctx.now, only=ids).values_list(
            "pk", flat=True
        )
    )
    return [go(w, step["yes"] if w.contact_id in matched else step["no"], ctx.now) for w in walks]


def _split(ctx: StepContext, step: dict, walks: list[Walk]) -> list[Move]:
    seed = f"journey:{ctx.version.journey_id}:{ctx.step_id}"
    moves = []
    for walk in walks:
        bucket, edge = sample_bucket(walk.contact_id, seed), 0
        target = step["branches"][-1]["next"]
        for branch in step["branches"]:
            edge += branch["percent"] * 100
            if bucket < edge:
                target = branch["next"]
                break
        moves.append(go(walk, target, ctx.now))
    return moves


def _send(ctx: StepContext, step: dict, walks: list[Walk]) -> list[Move]:
    channel = ChannelConfig.objects.get(pk=step["channel_id"], workspace=ctx.workspace)
    policy = guardrails.policy_for(ctx.workspace)
    due_at = guardrails.quiet_until(policy, ctx.now) or ctx.now
    source = f"journey:{ctx.version.journey_id}:{ctx.step_id}"
    rows = [
        OutboxMessage(
            workspace_id=ctx.workspace.pk,
            # one message per walk: a contact who enters again gets the step again
            key=f"{source}:{w.id}:{channel.kind}",
            contact_id=w.contact_id,
            channel_id=channel.pk,
            template_id=step["template_id"],
            source=source,
            due_at=due_at,
            created_at=ctx.now,
        )
        for w in walks
    ]
    sqlbulk.insert_rows(OutboxMessage, rows, ignore_conflicts=True)
    ctx.channels.add(channel.pk)
    return [go(w, step.get("next"), ctx.now) for w in walks]


def _tag(ctx: StepContext, step: dict, walks: list[Walk]) -> list[Move]:
    contacts_tag(
        workspace=ctx.workspace,
        actor=Actor.system(f"journey {ctx.version.journey_id}"),
        contact_ids=[w.contact_id for w in walks],
        add=step.get("add") or [],
        remove=step.get("remove") or [],
    )
    return [go(w, step.get("next"), ctx.now) for w in walks]


def _attribute(ctx: StepContext, step: dict, walks: list[Walk]) -> list[Move]:
    table = Contact._meta.db_table
    ids = [w.contact_id for w in walks]
    value = json.dumps(step["value"], ensure_ascii=False, default=str)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            marks = ", ".join(["%s"] * len(chunk))
            if connection.vendor == "postgresql":
                setter = "jsonb_set(attributes, %s, %s::jsonb, true)"
                params = [[step["key"]], value]
            else:
                setter = "json_set(attributes, %s, json(%s))"
                params = [f'$."{step["key"]}"', value]
            cursor.execute(
                f"UPDATE {table} SET attributes = {setter}, updated_at = %s "
                f"WHERE workspace_id = %s AND id IN ({marks})",
                [*params, ctx.now, ctx.workspace.pk, *chunk],
            )
    return [go(w, step.get("next"), ctx.now) for w in walks]


def _exit(ctx: StepContext, step: dict, walks: list[Walk]) -> list[Move]:
    return [go(w, None, ctx.now) for w in walks]


RUNNERS = {
    "wait": _wait,
    "branch": _branch,
    "split": _split,
    "send": _send,
    "webhook": _send,
    "tag": _tag,
    "attribute": _attribute,
    "exit": _exit,
}


def _write(moves: list[Move], walks: list[Walk]) -> None:
    """Every move in one statement, each only if the walk is still where the batch found it:
    a goal reached, a wait-for-event answered or an archive meanwhile (the event hook and
    the status actions do not take the stepping lock) wins over the batch's move."""
    before = {w.id: w for w in walks}
    table = JourneyEnrollment._meta.db_table
    sqlbulk.update_from_values(
        table,
        [
            ("id", "int"),
            ("step", "text"),
            ("wake_at", "ts"),
            ("waiting", "bool"),
            ("waiting_for", "text"),
            ("status", "text"),
            ("finished_at", "ts"),
            ("old_step", "text"),
            ("old_waiting", "bool"),
        ],
        [
            (
                m.id,
                m.step,
                m.wake_at,
                m.waiting,
                m.waiting_for,
                m.status,
                m.finished_at,
                before[m.id].step,
                before[m.id].waiting,
            )
            for m in moves
        ],
        "step = v.step, wake_at = v.wake_at, waiting = v.waiting, waiting_for = v.waiting_for, "
        "status = v.status, finished_at = v.finished_at",
        where=f"{table}.status = 'active' AND {table}.step = v.old_step "
        f"AND {table}.waiting = v.old_waiting",
    )


def _count(workspace_id: int, entered: dict[tuple[int, str], int]) -> None:
    from siyu.campaigns.journey_models import JourneyStepStat

    table = JourneyStepStat._meta.db_table
    sqlbulk.upsert_values(
        table,
        [("workspace_id", "int"), ("version_id", "int"), ("step", "text"), ("entered", "int")],
        [(workspace_id, version_id, step, n) for (version_id, step), n in entered.items()],
        ["version_id", "step"],
        f"entered = {table}.entered + excluded.entered",
    )
