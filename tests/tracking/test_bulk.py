"""The resolver writes a whole batch at once (bulk.py, and known.py on PostgreSQL); it must
end where writing each event on its own ends. The same random stream of messages goes into
two workspaces: ours in batches, the other one event at a time through the planner.
Contacts, identities, profiles, seen times, which event belongs to whom, orders and
aggregates must be the same, and the incrementally kept aggregates must equal a rebuild."""

import datetime
import random
import re

import pytest
from django.db import connection

from siyu.contacts.models import AttributeDefinition, Contact, Identity, TimelineEntry
from siyu.core import sqlbulk
from siyu.tracking import aggregates
from siyu.tracking.known import Known
from siyu.tracking.models import ContactStats, DailyEventCount, Event, Order
from siyu.tracking.resolve import _Batch, process_pending_events

UTC = datetime.UTC
EVENTS = ["Product Viewed", "Product Added", "Signed Up", "Coupon Claimed"]
NAMES = ["王芳", "李娜", "张伟", "刘洋"]
CITIES = ["上海", "杭州", "成都"]


def stream(seed: int, count: int) -> list[dict]:
    """A believable mix: anonymous browsing, logins with traits (some phones shared between
    users, which the conflict rule keeps apart), aliases, orders, screens."""
    rng = random.Random(seed)
    users = [f"u{n}" for n in range(12)]
    anons = [f"a{n}" for n in range(20)]
    phones = [f"1380013{n:04d}" for n in range(8)]
    base = datetime.datetime(2026, 3, 1, tzinfo=UTC)
    messages = []
    for n in range(count):
        when = base + datetime.timedelta(minutes=rng.randrange(60 * 24 * 7))
        common = {"messageId": f"s{seed}-{n}", "timestamp": when.isoformat()}
        who = (
            {"userId": rng.choice(users)}
            if rng.random() < 0.4
            else {"anonymousId": rng.choice(anons)}
        )
        roll = rng.random()
        if roll < 0.4:
            context = {"channel": rng.choice(["mini_program", "web", "app"])}
            messages.append(
                {"type": "track", "event": rng.choice(EVENTS), "context": context, **who, **common}
            )
        elif roll < 0.55:
            messages.append({"type": "page", "name": "首页", **who, **common})
        elif roll < 0.8:
            traits = {"name": rng.choice(NAMES), "vip_level": rng.randrange(1, 4)}
            if rng.random() < 0.5:
                traits["phone"] = rng.choice(phones)
            if rng.random() < 0.3:
                traits["address"] = {"city": rng.choice(CITIES)}
            ids = {"userId": rng.choice(users)}
            if rng.random() < 0.6:
                ids["anonymousId"] = rng.choice(anons)
            messages.append({"type": "identify", "traits": traits, **ids, **common})
        elif roll < 0.86:
            messages.append(
                {
                    "type": "alias",
                    "userId": rng.choice(users),
                    "previousId": rng.choice(anons),
                    **common,
                }
            )
        elif roll < 0.93:
            props = {"order_id": f"o-{seed}-{n}", "total": f"{rng.randrange(10, 500)}.50"}
            messages.append(
                {"type": "track", "event": "Order Completed", "properties": props, **who, **common}
            )
        else:
            messages.append({"type": "screen", "name": "购物车", **who, **common})
    return messages


def outcome(workspace) -> dict:
    """What processing produced, with database ids replaced by each contact's identities
    (ids differ between the two workspaces; identity hashes do not)."""
    key = {}
    for contact_id, kind, app_id, value_hash in Identity.objects.filter(
        workspace=workspace
    ).values_list("contact_id", "kind", "app_id", "value_hash"):
        key.setdefault(contact_id, set()).add((kind, app_id, value_hash))
    key = {cid: tuple(sorted(idents)) for cid, idents in key.items()}
    contacts = {
        key.get(c.pk, ("none", c.pk)): (
            c.name,
            c.gender,
            c.birthday,
            c.city,
            c.source,
            c.attributes,
            c.first_seen_at,
            c.last_seen_at,
        )
        for c in Contact.objects.filter(workspace=workspace)
    }

    def named(error: str) -> str:
        # "held by contact 12": a batch names the contact that survives the batch, one by
        # one names it as it was then (it may be merged away later): compared without it
        return re.sub(r"contact \d+", "contact …", error)

    events = sorted(
        (e.message_id, e.status, key.get(e.contact_id), named(e.note))
        for e in Event.objects.filter(workspace=workspace).select_related("resolution")
    )
    orders = sorted(
        (external_id, key.get(cid), total)
        for external_id, cid, total in Order.objects.filter(workspace=workspace).values_list(
            "external_id", "contact_id", "total_fen"
        )
    )
    stats = sorted(
        (key[cid], *rest)
        for cid, *rest in ContactStats.objects.filter(workspace=workspace).values_list(
            "contact_id",
            "order_count",
            "net_spend_fen",
            "last_order_at",
            "last_channel",
            "last_event_at",
        )
    )
    daily = sorted(
        (key[cid], day, event, count)
        for cid, day, event, count in DailyEventCount.objects.filter(
            workspace=workspace
        ).values_list("contact_id", "day", "event", "count")
    )
    return {
        "contacts": contacts,
        "events": events,
        "orders": orders,
        "stats": stats,
        "daily": daily,
    }


@pytest.fixture
def one_by_one_in_the_other_workspace(cast, monkeypatch):
    """The other workspace writes every event on its own (what the resolver falls back to);
    ours writes whole batches, and fails the test if a batch ever fell back (that would
    hide a bug of the batch path)."""
    from siyu.tracking import resolve

    real_run, real_one_by_one = _Batch.run, _Batch.one_by_one
    real_known = resolve.resolve_known

    class Counts(list):
        attached = 0  # plain events that took their ids' one holder without being planned
        repeated = 0  # plain events with an earlier event's ids, not even read
        late = 0  # repeated events whose ids two contacts hold, planned after the others

    known = Counts()

    def resolve_known(workspace, ids):
        if workspace.pk == cast.outsider_workspace.pk:
            # one by one, in id order: every event through the planner
            return lambda: Known(0, {}, [], list(ids))
        fetch = real_known(workspace, ids)

        def result():
            found = fetch()
            known.append(found.resolved)
            known.repeated += sum(pair.count for pair in found.repeated.values())
            return found

        return result

    def run(self, parsed, repeated=None, batch_ids=None):
        if self.workspace.pk == cast.outsider_workspace.pk:
            real_one_by_one(self, [p.event for p in parsed])
            return
        real_run(self, parsed, repeated, batch_ids)
        known.attached += len(self.plan.attached)
        known.late += self.late

    def one_by_one(self, events):
        raise AssertionError("a batch failed and fell back to one by one")

    monkeypatch.setattr(_Batch, "run", run)
    monkeypatch.setattr(_Batch, "one_by_one", one_by_one)
    monkeypatch.setattr(resolve, "resolve_known", resolve_known)
    return known


@pytest.mark.parametrize(("seed", "batch_size"), [(1, 500), (2, 9)])
def test_the_fast_path_ends_where_the_per_event_path_ends(
    cast, collector, outsider_collector, one_by_one_in_the_other_workspace, seed, batch_size
):
    for ws in (cast.workspace, cast.outsider_workspace):
        AttributeDefinition.objects.create(
            workspace=ws, key="vip_level", label="会员等级", type="number"
        )
    messages = stream(seed, 240)
    for start in range(0, len(messages), 60):  # four requests, processed after each
        for client, ws in (
            (collector, cast.workspace),
            (outsider_collector, cast.outsider_workspace),
        ):
            body = {"batch": messages[start : start + 60]}
            assert client.post("/v1/batch", body).status_code == 200
            process_pending_events(ws.pk, batch_size=batch_size)

    fast, slow = outcome(cast.workspace), outcome(cast.outsider_workspace)
    assert one_by_one_in_the_other_workspace.attached > 0
    if connection.vendor == "postgresql":  # events of known people took the SQL pass
        assert sum(one_by_one_in_the_other_workspace) > 20
        assert one_by_one_in_the_other_workspace.repeated > 0
    assert {e[1] for e in fast["events"]} == {"processed"}
    assert len(fast["contacts"]) > 10 and len(fast["orders"]) > 10
    for part in fast:
        assert fast[part] == slow[part], part
    # a "created" row per contact, as creating them one by one writes
    for ws in (cast.workspace, cast.outsider_workspace):
        created = TimelineEntry.objects.filter(workspace=ws, kind="created").count()
        assert created >= Contact.objects.filter(workspace=ws).count()

    # the incrementally kept aggregates are the rebuilt ones
    aggregates.rebuild(cast.workspace)
    assert outcome(cast.workspace) == fast


def test_repeated_events_in_conflict_end_as_in_id_order(
    cast, collector, outsider_collector, one_by_one_in_the_other_workspace
):
    """A device two members share: the later events repeating a conflicting pair are left to
    the SQL pass, which cannot take them, and are planned after the rest of the batch. The
    end state is the one of planning every event in id order."""

    def message(n: int, kind: str, **fields) -> dict:
        when = f"2026-10-0{1 + n // 10}T10:{n % 10:02d}:00Z"
        base = {"type": kind, "messageId": f"m-{n}", "timestamp": when}
        if kind == "track":
            base["event"] = "Video Played"
        return base | fields

    messages = [
        message(0, "identify", userId="u-1", anonymousId="d-1", traits={"name": "王芳"}),
        message(1, "track", userId="u-2", anonymousId="d-1"),  # u-2 on u-1's device
        message(2, "track", userId="u-2", anonymousId="d-1"),  # the same pair again
        message(3, "page", anonymousId="d-1", name="首页"),
        message(4, "track", userId="u-2", anonymousId="d-1"),
        message(5, "identify", userId="u-2", anonymousId="d-2", traits={"name": "李娜"}),
        message(6, "track", userId="u-2", anonymousId="d-1"),
        message(7, "screen", userId="u-1", anonymousId="d-1", name="首页"),
        message(8, "track", userId="u-2", anonymousId="d-2"),
    ]
    for client in (collector, outsider_collector):
        assert client.post("/v1/batch", {"batch": messages}).status_code == 200
    for ws in (cast.workspace, cast.outsider_workspace):
        process_pending_events(ws.pk)

    fast, slow = outcome(cast.workspace), outcome(cast.outsider_workspace)
    if connection.vendor == "postgresql":
        counts = one_by_one_in_the_other_workspace
        assert counts.repeated >= 3 and counts.late >= 3  # m-2, m-4, m-6
    assert fast == slow
    notes = {message_id: error for message_id, _, _, error in fast["events"]}
    assert "identity_conflict" in notes["m-2"] and "identity_conflict" in notes["m-6"]


def test_update_from_values_and_upsert(cast, make_contact):
    """The two statements behind the fast path, on whichever database runs the suite."""
    a, b = make_contact(name="甲"), make_contact(name="乙")
    early = datetime.datetime(2020, 1, 1, tzinfo=UTC)
    late = datetime.datetime(2030, 1, 1, 12, 30, 0, 5, tzinfo=UTC)
    table = Contact._meta.db_table
    changed = sqlbulk.update_from_values(
        table,
        [("id", "int"), ("name", "text"), ("seen", "ts")],
        [(a.pk, "甲'; --", late), (b.pk, None, early)],
        f"name = COALESCE(v.name, {table}.name), "
        f"last_seen_at = {sqlbulk.greatest(f'{table}.last_seen_at', 'v.seen')}",
    )
    assert changed == 2
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.name, a.last_seen_at) == ("甲'; --", late)
    assert b.name == "乙" and b.last_seen_at > early  # GREATEST kept the later time

    table = DailyEventCount._meta.db_table
    day = datetime.date(2026, 3, 1)
    for count in (2, 3):
        sqlbulk.upsert_values(
            table,
            [
                ("workspace_id", "int"),
                ("contact_id", "int"),
                ("day", "date"),
                ("event", "text"),
                ("count", "int"),
            ],
            [(cast.workspace.pk, a.pk, day, "X", count)],
            ["contact_id", "day", "event"],
            f"count = {table}.count + excluded.count",
        )
    assert DailyEventCount.objects.get(contact=a).count == 5


def test_insert_plain_fills_defaults_and_names_an_unknown_column(cast, make_contact):
    """Rows as dicts, the model's defaults filling the rest, on either database; a misspelt
    column is an error that names it, and nothing is written."""
    contact = make_contact(name="丙")
    rows = [
        {
            "workspace_id": cast.workspace.pk,
            "contact_id": contact.pk,
            "kind": "note",
            "data": {"text": "第一条", "n": n},
        }
        for n in range(3)
    ]
    sqlbulk.insert_plain(TimelineEntry, rows)
    saved = list(TimelineEntry.objects.filter(contact=contact, kind="note").order_by("pk"))
    assert [e.data for e in saved] == [{"text": "第一条", "n": n} for n in range(3)]
    assert all(e.created_at is not None and e.actor_label == "" for e in saved)

    with pytest.raises(TypeError, match="kindd"):
        sqlbulk.insert_plain(TimelineEntry, [{**rows[0], "kindd": "x"}])
    assert TimelineEntry.objects.filter(contact=contact, kind="note").count() == 3


def test_the_cycle_collector_is_paused_for_a_batch_only():
    import gc

    from siyu.tracking.resolve import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a batch failed")
    assert gc.isenabled()  # back on after a failure too

    gc.disable()  # paused by someone else: left as it was
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
