"""Migration tracking 0012 moves each event's status, contact and note out of the event row:
pending events into the resolution queue, processed ones into resolutions, and back. 0013
gives the daily rollup a composite primary key; its rows stay. 0014 gives the events still
queued their routing fields; 0015 leaves room in the aggregate tables' pages."""

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("tracking", "0011_pending_index_fewer_constraints")
AFTER = ("tracking", "0012_event_queue_and_resolution")
WHEN = datetime.datetime(2026, 11, 1, 8, 0, tzinfo=datetime.UTC)


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def migrate_to_latest():
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("tracking"))


@pytest.mark.django_db(transaction=True)
def test_events_split_into_queue_and_resolutions_and_back(cast, make_contact):
    ws, contact = cast.workspace, make_contact(name="王芳")
    try:
        apps = migrate(BEFORE)
        Event = apps.get_model("tracking", "Event")
        common = {"workspace_id": ws.pk, "type": "track", "timestamp": WHEN, "received_at": WHEN}
        waiting = Event.objects.create(message_id="a", status="pending", error="boom", **common)
        done = Event.objects.create(
            message_id="b",
            status="processed",
            contact_id=contact.pk,
            error="traits.level: not a number",
            processed_at=WHEN,
            **common,
        )
        bare = Event.objects.create(message_id="c", status="processed", **common)

        apps = migrate(AFTER)
        Queued = apps.get_model("tracking", "QueuedEvent")
        Resolved = apps.get_model("tracking", "ResolvedEvent")
        assert list(Queued.objects.values_list("workspace_id", "event_id", "error")) == [
            (ws.pk, waiting.pk, "boom")
        ]
        resolved = Resolved.objects.order_by("event_id").values_list(
            "event_id", "workspace_id", "contact_id", "timestamp", "note"
        )
        assert list(resolved) == [
            (done.pk, ws.pk, contact.pk, WHEN, "traits.level: not a number"),
            (bare.pk, ws.pk, None, WHEN, ""),
        ]
        assert Resolved.objects.get(event_id=done.pk).processed_at == WHEN

        apps = migrate(BEFORE)
        Event = apps.get_model("tracking", "Event")
        rows = Event.objects.order_by("id").values_list("status", "contact_id", "error")
        assert list(rows) == [
            ("pending", None, "boom"),
            ("processed", contact.pk, "traits.level: not a number"),
            ("processed", None, ""),
        ]
    finally:
        migrate_to_latest()


@pytest.mark.django_db(transaction=True)
def test_daily_counts_keep_their_rows_across_the_composite_key(cast, make_contact):
    ws, contact = cast.workspace, make_contact(name="李娜")
    day = WHEN.date()
    rows = [(contact.pk, day, "Product Viewed", 3), (contact.pk, day, "page", 1)]
    try:
        apps = migrate(AFTER)  # before 0013
        Daily = apps.get_model("tracking", "DailyEventCount")
        for cid, d, event, count in rows:
            Daily.objects.create(
                workspace_id=ws.pk, contact_id=cid, day=d, event=event, count=count
            )
        migrate(("tracking", "0013_daily_event_count_composite_key"))
        from siyu.tracking.models import DailyEventCount

        kept = DailyEventCount.objects.order_by("event").values_list(
            "contact_id", "day", "event", "count"
        )
        assert list(kept) == rows
        apps = migrate(AFTER)
        Daily = apps.get_model("tracking", "DailyEventCount")
        back = Daily.objects.order_by("event").values_list("contact_id", "day", "event", "count")
        assert list(back) == rows
    finally:
        migrate_to_latest()


@pytest.mark.django_db(transaction=True)
def test_events_queued_before_routing_get_it_from_their_events(cast):
    ws = cast.workspace
    context = {"traits": {}, "campaign": {"source": "douyin"}}
    try:
        apps = migrate(("tracking", "0013_daily_event_count_composite_key"))
        Event = apps.get_model("tracking", "Event")
        Queued = apps.get_model("tracking", "QueuedEvent")
        common = {"workspace_id": ws.pk, "timestamp": WHEN, "received_at": WHEN}
        page = Event.objects.create(
            message_id="p", type="page", event="首页", anonymous_id="a-1", context=context, **common
        )
        identify = Event.objects.create(message_id="i", type="identify", user_id="u-1", **common)
        for event in (page, identify):
            Queued.objects.create(workspace_id=ws.pk, event_id=event.pk, error="")
        migrate(("tracking", "0014_queue_routing"))
        from siyu.tracking.models import QueuedEvent

        routed = QueuedEvent.objects.order_by("event_id").values_list(
            "event_id",
            "user_id",
            "anonymous_id",
            "type",
            "event_name",
            "timestamp",
            "plain",
            "channel",
        )
        assert list(routed) == [
            (page.pk, "", "a-1", "page", "首页", WHEN, True, "douyin"),
            (identify.pk, "u-1", "", "identify", "", WHEN, False, ""),
        ]
    finally:
        migrate_to_latest()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL storage setting")
@pytest.mark.django_db(transaction=True)
def test_aggregate_tables_leave_room_for_updates_and_give_it_back():
    def options() -> dict:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)",
                [["tracking_contactstats", "tracking_dailyeventcount"]],
            )
            return dict(cursor.fetchall())

    try:
        assert options() == {
            "tracking_contactstats": ["fillfactor=70"],
            "tracking_dailyeventcount": ["fillfactor=80"],
        }
        migrate(("tracking", "0014_queue_routing"))
        assert options() == {"tracking_contactstats": None, "tracking_dailyeventcount": None}
    finally:
        migrate_to_latest()
