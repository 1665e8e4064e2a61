"""Load the demo brand: workspace, staff, tags and schema through the actions; customers,
identities, tags, consent and timeline as bulk inserts. Deterministic for a seed."""

import random
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from siyu.accounts import actions as account_actions
from siyu.contacts import actions as contact_actions
from siyu.core.audit import Actor, audit
from siyu.core.models import Workspace
from siyu.demo import data
from siyu.demo.activity import ActivityCounts, load_activity
from siyu.demo.bulk import Counts, Pool, insert_batch
from siyu.demo.logins import Login, planned_logins, write_logins
from siyu.demo.reach import ReachSummary, load_reach
from siyu.demo.segments import SegmentsSummary, load_segments

DEFAULT_SEED = 2026
DEFAULT_CONTACTS = 2000
BATCH = 5000


@dataclass
class DemoResult:
    workspace: Workspace
    logins: list[Login]
    counts: Counts
    seconds: float
    activity: ActivityCounts | None = None
    segments: SegmentsSummary | None = None
    reach: ReachSummary | None = None


def demo_workspace(slug: str = data.DEMO_SLUG) -> Workspace | None:
    return Workspace.objects.filter(slug=slug).first()


def load_demo(
    *, seed: int = DEFAULT_SEED, contacts: int = DEFAULT_CONTACTS, now=None
) -> DemoResult:
    """Create the demo workspace with its staff, tags, schema and `contacts` customers, their
    year of orders and events, segments and a CLV fit. Raises Conflict if it exists already
    (callers check `demo_workspace()` first)."""
    started = time.perf_counter()
    now = now or timezone.now()
    system = Actor.system("cli:demo")
    logins = planned_logins()
    with transaction.atomic():
        workspace = account_actions.workspace_create(
            name=data.BRAND_NAME, slug=data.DEMO_SLUG, actor=system
        )
        actors: dict[str, Actor] = {}
        for login in logins:
            membership = account_actions.staff_add(
                workspace=workspace,
                actor=actors.get("owner", system),
                email=login.email,
                role=login.role,
                name=login.name,
                password=login.password,
            )
            actors.setdefault(
                login.role, Actor(user=membership.staff, label=login.email, role=login.role)
            )
        for name, color, tags in data.TAG_GROUPS:
            group = contact_actions.tag_group_create(
                workspace=workspace, actor=actors["operator"], name=name, color=color
            )
            for tag in tags:
                contact_actions.tag_create(
                    workspace=workspace, actor=actors["operator"], group=group, name=tag
                )
        for key, label, kind, choices in data.ATTRIBUTES:
            contact_actions.attribute_define(
                workspace=workspace,
                actor=actors["owner"],
                key=key,
                label=label,
                type=kind,
                choices=choices,
            )
        pool = Pool.of(workspace)
        rng = random.Random(seed)
        counts, k = Counts(), 0
        while counts.contacts < contacts:
            n = min(BATCH, contacts - counts.contacts)
            k, batch = insert_batch(
                pool, start=k, count=n, rng=rng, now=now, rich=True, precheck=False
            )
            counts.add(batch)
        activity = load_activity(workspace, seed=seed, now=now)
        segments = load_segments(workspace, actor=actors["operator"], now=now)
        reach = load_reach(
            workspace,
            actor=actors["operator"],
            admin=actors.get("admin", actors["owner"]),
            now=now,
        )
        audit(
            workspace=workspace,
            actor=system,
            action="demo.load",
            obj=workspace,
            after={"seed": seed, **counts.as_dict(), "counter_start": 0, "counter_end": k},
        )
    write_logins(logins)
    seconds = time.perf_counter() - started
    return DemoResult(workspace, logins, counts, seconds, activity, segments, reach)
