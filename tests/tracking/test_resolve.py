"""Identity resolution: pending events become contacts, identities join, contacts merge,
traits update the profile, and the conflict rule keeps two user ids apart."""

import datetime
import itertools

import pytest

from siyu.contacts import actions as contact_actions
from siyu.contacts.actions.identity import find_identity
from siyu.contacts.models import Contact, ContactTag, Identity, TimelineEntry
from siyu.core.audit import Actor
from siyu.core.models import AuditLog
from siyu.tracking.models import Event, IngestState, QueuedEvent, ResolvedEvent
from siyu.tracking.resolve import process_pending_events
from siyu.tracking.tasks import process_pending

UTC = datetime.UTC
_ids = itertools.count()


def msg(type_="identify", **fields):
    return {"type": type_, "messageId": f"m-{next(_ids)}", **fields}


@pytest.fixture
def send(collector, django_capture_on_commit_callbacks):
    """send(msg, ...) posts a batch and runs what is enqueued on commit (processing)."""

    def post(*messages, client=None):
        with django_capture_on_commit_callbacks(execute=True):
            response = (client or collector).post("/v1/batch", {"batch": list(messages)})
        assert response.status_code == 200, response.content
        return response

    return post


def contact_of(ws, kind, value, app_id=""):
    identity = find_identity(ws, kind, value, app_id)
    return identity.contact if identity else None


def kinds(contact):
    return sorted(contact.identities.values_list("kind", flat=True))


def test_a_new_user_becomes_a_contact_with_its_identities(cast, send):
    send(
        msg(
            userId="u-1",
            anonymousId="a-1",
            traits={"phone": "138 0013 8000", "email": "Li@Example.cn", "unionid": "un-1"},
            context={"campaign": {"source": "douyin"}},
            timestamp="2026-03-01T10:00:00Z",
        )
    )
    ws = cast.workspace
    contact = Contact.objects.get(workspace=ws)
    assert kinds(contact) == ["anonymous_id", "email", "phone", "user_id", "wechat_unionid"]
    assert contact_of(ws, "phone", "13800138000") == contact
    assert contact_of(ws, "email", "li@example.cn") == contact
    assert contact.source == "douyin"
    at = datetime.datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert (contact.first_seen_at, contact.last_seen_at) == (at, at)
    event = Event.objects.get()
    assert (event.status, event.contact, event.note) == ("processed", contact, "")
    assert event.resolution.processed_at is not None
    assert not QueuedEvent.objects.exists()
    assert TimelineEntry.objects.filter(contact=contact, kind="created").count() == 1
    assert IngestState.objects.get(workspace=ws).running_until is None  # lease released


def test_an_unknown_campaign_source_is_api(cast, send):
    send(msg("track", anonymousId="a-1", event="X", context={"campaign": {"source": "baidu"}}))
    assert Contact.objects.get(workspace=cast.workspace).source == "api"


def test_anonymous_then_identified_is_one_contact(cast, send):
    send(msg("page", anonymousId="a-1", name="Home", timestamp="2026-03-01T09:00:00Z"))
    anonymous = Contact.objects.get(workspace=cast.workspace)
    send(
        msg(
            userId="u-1",
            anonymousId="a-1",
            traits={"phone": "13800138000"},
            timestamp="2026-03-02T09:00:00Z",
        ),
        msg("track", userId="u-1", event="Bought", timestamp="2026-03-03T09:00:00Z"),
    )
    contact = Contact.objects.get(workspace=cast.workspace)
    assert contact.pk == anonymous.pk
    assert kinds(contact) == ["anonymous_id", "phone", "user_id"]
    assert set(ResolvedEvent.objects.values_list("contact_id", flat=True)) == {contact.pk}
    assert not QueuedEvent.objects.exists()
    assert contact.first_seen_at == datetime.datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert contact.last_seen_at == datetime.datetime(2026, 3, 3, 9, tzinfo=UTC)


def test_a_phone_joining_two_contacts_merges_them(cast, send, make_contact):
    ws = cast.workspace
    tag = contact_actions.tag_create(
        workspace=ws,
        actor=Actor.system("test"),
        group=contact_actions.tag_group_create(
            workspace=ws, actor=Actor.system("test"), name="兴趣"
        ),
        name="咖啡",
    )
    send(msg("track", anonymousId="a-1", event="Viewed"))  # contact 1: the device
    device = Contact.objects.get(workspace=ws)
    shop = make_contact(name="王芳", phone="13900139000")  # contact 2: from the store
    contact_actions.contacts_tag(
        workspace=ws, actor=Actor.system("test"), contact_ids=[shop.pk], add=[tag.pk]
    )
    send(msg(anonymousId="a-1", traits={"mobile": "139 0013 9000"}))

    survivor = Contact.objects.get(workspace=ws)  # one left
    assert survivor.pk == min(device.pk, shop.pk) == device.pk
    assert survivor.name == "王芳"  # the blank is filled from the other
    assert kinds(survivor) == ["anonymous_id", "phone"]
    assert set(ResolvedEvent.objects.values_list("contact_id", flat=True)) == {survivor.pk}
    assert list(ContactTag.objects.filter(contact=survivor).values_list("tag", flat=True)) == [
        tag.pk
    ]
    assert TimelineEntry.objects.filter(contact=survivor, kind="merged").count() == 1
    audit = AuditLog.objects.get(workspace=ws, action="contact.merge")
    assert audit.object_id == str(survivor.pk) and audit.actor_label == "tracking"


def test_two_user_ids_sharing_a_phone_are_not_merged(cast, send):
    ws = cast.workspace
    send(msg(userId="dad", traits={"phone": "13800138000"}))
    send(msg(userId="mum", traits={"phone": "13800138000"}))
    dad = contact_of(ws, "user_id", "dad")
    mum = contact_of(ws, "user_id", "mum")
    assert dad.pk != mum.pk and Contact.objects.filter(workspace=ws).count() == 2
    assert contact_of(ws, "phone", "13800138000") == dad  # the phone stays where it was
    second = Event.objects.order_by("id").last()
    assert second.contact == mum and second.status == "processed"
    assert "identity_conflict" in second.note and "13800138000" not in second.note
    for mine, theirs in ((dad, mum), (mum, dad)):
        row = TimelineEntry.objects.get(contact=mine, kind="identity_conflict")
        assert row.data["other_id"] == theirs.pk
        assert row.data["identities"] == [{"kind": "phone", "value": "138****8000"}]


def test_an_anonymous_device_used_by_two_users_stays_with_the_first(cast, send):
    ws = cast.workspace
    send(msg(userId="dad", anonymousId="tablet"))
    send(msg("track", userId="mum", anonymousId="tablet", event="Viewed"))
    dad, mum = contact_of(ws, "user_id", "dad"), contact_of(ws, "user_id", "mum")
    assert dad.pk != mum.pk
    assert contact_of(ws, "anonymous_id", "tablet") == dad
    assert Event.objects.order_by("id").last().contact == mum


def test_alias_merges_the_anonymous_contact_into_the_user(cast, send):
    ws = cast.workspace
    send(msg("track", anonymousId="a-9", event="Viewed"))
    send(msg(userId="u-9", traits={"email": "u9@example.cn"}))
    assert Contact.objects.filter(workspace=ws).count() == 2
    send(msg("alias", previousId="a-9", userId="u-9"))
    contact = Contact.objects.get(workspace=ws)
    assert kinds(contact) == ["anonymous_id", "email", "user_id"]
    assert Event.objects.of_contact(contact.pk).count() == 3


def test_alias_of_an_unknown_previous_id_attaches_it(cast, send):
    send(msg(userId="u-9"))
    send(msg("alias", previousId="a-new", userId="u-9"))
    contact = Contact.objects.get(workspace=cast.workspace)
    assert kinds(contact) == ["anonymous_id", "user_id"]


def test_traits_update_the_profile_and_valid_attributes(cast, send):
    ws = cast.workspace
    owner = Actor.system("test")
    contact_actions.attribute_define(
        workspace=ws, actor=owner, key="level", label="等级", type="choice", choices=["金", "银"]
    )
    contact_actions.attribute_define(
        workspace=ws, actor=owner, key="points", label="积分", type="number"
    )
    send(msg(userId="u-1", traits={"name": "李雷"}))
    send(
        msg(
            userId="u-1",
            traits={
                "name": "李雷雷",
                "gender": "male",
                "birthday": "1990-05-01T00:00:00Z",
                "address": {"state": "浙江", "city": "杭州"},
                "level": "铜",  # not a choice: skipped and recorded
                "points": "120",
                "plan": "gold",  # not in the schema: ignored, kept on the event
            },
        )
    )
    contact = Contact.objects.get(workspace=ws)
    assert (contact.name, contact.gender, str(contact.birthday)) == ("李雷雷", "male", "1990-05-01")
    assert (contact.province, contact.city) == ("浙江", "杭州")
    assert contact.attributes == {"points": 120}
    event = Event.objects.order_by("id").last()
    assert event.status == "processed" and "traits.level" in event.note
    assert event.traits["plan"] == "gold"
    updated = TimelineEntry.objects.filter(contact=contact, kind="updated")
    assert updated.count() == 1
    # the same traits again change nothing (only changed values are written)
    send(msg(userId="u-1", traits={"name": "李雷雷", "points": 120}))
    assert TimelineEntry.objects.filter(contact=contact, kind="updated").count() == 1


def test_context_traits_of_a_track_identify_too(cast, send):
    send(msg("track", anonymousId="a-1", event="X", context={"traits": {"email": "a@b.cn"}}))
    contact = Contact.objects.get(workspace=cast.workspace)
    assert kinds(contact) == ["anonymous_id", "email"]


def test_an_invalid_phone_is_recorded_not_fatal(cast, send):
    send(msg(userId="u-1", traits={"phone": "12345", "email": "not-an-email"}))
    contact = Contact.objects.get(workspace=cast.workspace)
    assert kinds(contact) == ["user_id"]
    event = Event.objects.get()
    assert event.status == "processed" and event.contact == contact
    assert "invalid phone" in event.note and "invalid email" in event.note
    assert "12345" not in event.note


def test_an_openid_needs_an_app_id(cast, send):
    ws = cast.workspace
    send(msg(userId="u-1", traits={"openid": "o-1"}))
    assert "app id" in Event.objects.get().note
    send(msg(userId="u-1", traits={"openid": "o-1"}, context={"app": {"id": "wx123"}}))
    assert contact_of(ws, "wechat_openid", "o-1", "wx123") == contact_of(ws, "user_id", "u-1")


def test_processing_twice_changes_nothing(cast, send):
    send(
        msg(userId="u-1", traits={"phone": "13800138000", "name": "韩梅梅"}),
        msg("track", anonymousId="a-2", event="X"),
    )
    snapshot = lambda: (  # noqa: E731
        list(Contact.objects.values_list("pk", "name", "first_seen_at", "last_seen_at")),
        list(Identity.objects.values_list("pk", "contact_id")),
        list(ResolvedEvent.objects.values_list("pk", "contact_id", "processed_at")),
        list(QueuedEvent.objects.values_list("event_id", "error")),
        TimelineEntry.objects.count(),
        AuditLog.objects.count(),
    )
    before = snapshot()
    assert process_pending.call(cast.workspace.pk) == 0
    assert process_pending_events(cast.workspace.pk) == 0
    assert snapshot() == before


def test_a_held_lease_makes_a_second_drainer_exit(cast, collector, write_key):
    collector.post("/v1/track", {"anonymousId": "a-1", "event": "X"})  # on_commit not run
    IngestState.objects.create(
        workspace=cast.workspace,
        running_until=datetime.datetime.now(UTC) + datetime.timedelta(minutes=1),
    )
    assert process_pending_events(cast.workspace.pk) == 0
    assert Event.objects.get().status == "pending"
    IngestState.objects.update(running_until=datetime.datetime.now(UTC) - datetime.timedelta(1))
    assert process_pending_events(cast.workspace.pk) == 1  # an expired lease is taken over
    assert Event.objects.get().status == "processed"


def test_batches_are_drained_in_id_order(cast, collector, write_key):
    collector.post(
        "/v1/batch",
        {
            "batch": [msg("track", anonymousId="a-1", event="X")]
            + [msg(userId="u-1", anonymousId="a-1")]
            + [msg("track", userId="u-1", event=f"e{n}") for n in range(5)]
        },
    )
    assert process_pending_events(cast.workspace.pk, batch_size=2) == 7
    contact = Contact.objects.get(workspace=cast.workspace)
    assert set(ResolvedEvent.objects.values_list("contact_id", flat=True)) == {contact.pk}
    assert not QueuedEvent.objects.exists()


def test_a_manual_merge_moves_events_via_the_hook(cast, send):
    ws = cast.workspace
    send(msg(userId="u-1"), msg("track", userId="u-2", event="X"))
    first, second = contact_of(ws, "user_id", "u-1"), contact_of(ws, "user_id", "u-2")
    contact_actions.contacts_merge(
        workspace=ws, actor=cast.owner.actor, survivor=first, other=second
    )
    assert set(ResolvedEvent.objects.values_list("contact_id", flat=True)) == {first.pk}


def test_workspaces_are_isolated(cast, send, outsider_collector):
    send(msg(userId="u-1", traits={"phone": "13800138000"}))
    send(msg(userId="u-1", traits={"phone": "13800138000"}), client=outsider_collector)
    ours = contact_of(cast.workspace, "phone", "13800138000")
    theirs = contact_of(cast.outsider_workspace, "phone", "13800138000")
    assert ours.pk != theirs.pk
    assert ours.workspace == cast.workspace and theirs.workspace == cast.outsider_workspace
    assert Event.objects.get(workspace=cast.outsider_workspace).contact == theirs


@pytest.fixture
def boom_fails(monkeypatch):
    """Writing a contact's name "boom" fails (as the database would); returns the undo."""
    from siyu.tracking import bulk

    real = bulk._Replay._update

    def broken(self, ref, profile, attrs):
        if profile.get("name") == "boom":
            raise RuntimeError("database hiccup")
        return real(self, ref, profile, attrs)

    monkeypatch.setattr(bulk._Replay, "_update", broken)
    return lambda: monkeypatch.setattr(bulk._Replay, "_update", real)


def test_an_event_that_fails_stays_pending_and_the_others_go_on(cast, send, boom_fails):
    # the batch fails as a whole, then goes event by event: only the bad one stays behind
    send(msg(userId="u-1"), msg(userId="u-1", traits={"name": "boom"}), msg(userId="u-2"))
    bad = Event.objects.get(traits__name="boom")
    assert bad.status == "pending" and "database hiccup" in bad.note
    assert Event.objects.processed().count() == 2
    boom_fails()  # undone
    assert process_pending_events(cast.workspace.pk) == 1  # retried by the next run
    bad.refresh_from_db()
    assert bad.status == "processed" and bad.contact.name == "boom"


def test_a_failed_batch_writes_its_repeating_events_one_by_one_too(cast, send, boom_fails):
    """The plain events that repeat an earlier event's ids are never read by the batch
    (PostgreSQL: known.py); when the batch fails they are read and written one by one with
    the others."""
    tracks = [msg("track", userId="u-1", anonymousId="a-1", event="E") for _ in range(3)]
    send(
        msg(userId="u-1", anonymousId="a-1"),
        msg(userId="u-1", anonymousId="a-1", traits={"name": "boom"}),
        *tracks,
    )
    bad = Event.objects.get(traits__name="boom")
    assert bad.status == "pending" and "database hiccup" in bad.note
    contact = contact_of(cast.workspace, "user_id", "u-1")
    written = Event.objects.filter(message_id__in=[t["messageId"] for t in tracks])
    assert [(e.status, e.contact) for e in written] == [("processed", contact)] * 3


def test_a_database_error_inside_the_batch_write_falls_back_event_by_event(cast):
    """The batch's writes are sent without waiting (pipeline mode on PostgreSQL): an error
    the database reports late still fails the batch as a whole, and the events are then
    written one by one, the bad one staying queued with the reason."""
    from django.utils import timezone

    from tests.helpers import pending_event

    ws = cast.workspace
    now = timezone.now()
    common = {"type": "track", "event": "E", "timestamp": now, "received_at": now}
    events = [pending_event(ws, message_id=f"m{i}", user_id=f"u-{i}", **common) for i in range(3)]
    # as if another drainer had recorded the second one already: its resolution is a duplicate
    ResolvedEvent.objects.create(event=events[1], workspace=ws, timestamp=now, processed_at=now)
    assert process_pending_events(ws.pk) == 3  # looked at
    resolved = ResolvedEvent.objects.exclude(event=events[1])
    assert sorted(resolved.values_list("event_id", flat=True)) == [events[0].pk, events[2].pk]
    assert all(r.contact_id for r in resolved)
    queued = QueuedEvent.objects.get()
    assert queued.event_id == events[1].pk and "not processed" in queued.error
