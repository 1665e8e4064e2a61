"""The real Segment Python client (segment-analytics-python), unmodified, pointed at siyu:
everything it sends lands in /v1/batch and is stored with the right fields."""

import datetime
import gc

import pytest

from siyu.tracking import actions
from siyu.tracking.models import Event
from siyu.tracking.pii import unseal

segment = pytest.importorskip("segment.analytics", reason="pip install segment-analytics-python")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_http_session(monkeypatch):
    """The client keeps one HTTP keep-alive session for the process; the live server's thread
    holds its database connection until that socket closes, and PostgreSQL cannot drop the
    test database while it does. Give each test its own session and close it."""
    import requests
    from segment.analytics import request as segment_request

    session = requests.Session()
    monkeypatch.setattr(segment_request, "_session", session)
    yield
    session.close()
    gc.collect()  # a response kept by an APIError holds its socket until collected


@pytest.fixture
def segment_client(live_server, cast, system_actor):
    _, raw = actions.writekey_create(workspace=cast.workspace, actor=system_actor, name="server")
    errors: list = []
    client = segment.Client(
        write_key=raw,
        host=live_server.url,
        sync_mode=True,
        max_retries=0,
        on_error=lambda error, messages: errors.append(error),
    )
    client.errors = errors
    return client  # sync mode has no consumer thread (its shutdown() would fail)


def test_every_call_of_the_python_client_is_stored(cast, segment_client):
    at = datetime.datetime(2026, 5, 20, 12, 0, tzinfo=datetime.UTC)
    c = segment_client
    c.identify("u-1", {"name": "李雷", "phone": "13800138000"}, message_id="m-identify")
    c.track("u-1", "Order Completed", {"order_id": "A-1", "revenue": 199}, message_id="m-track")
    c.page("u-1", "shop", "Product", {"path": "/p/9"}, message_id="m-page", timestamp=at)
    c.screen("u-1", "app", "Home", {"tab": 1}, message_id="m-screen")
    c.group("u-1", "g-7", {"name": "门店 7"}, message_id="m-group")
    c.alias("anon-1", "u-1", message_id="m-alias")
    c.track(anonymous_id="anon-2", event="Viewed", context={"ip": "198.51.100.7"})
    c.flush()
    assert c.errors == []

    events = {e.message_id: e for e in Event.objects.filter(workspace=cast.workspace)}
    assert len(events) == 7
    identify = events["m-identify"]
    assert (identify.type, identify.user_id) == ("identify", "u-1")
    assert {k: unseal(v) for k, v in identify.traits.items()} == {
        "name": "李雷",
        "phone": "13800138000",
    }
    track = events["m-track"]
    assert (track.type, track.event, track.properties) == (
        "track",
        "Order Completed",
        {"order_id": "A-1", "revenue": 199},
    )
    page = events["m-page"]
    assert (page.type, page.event, page.properties) == (
        "page",
        "Product",
        {"path": "/p/9", "category": "shop"},
    )
    assert page.original_timestamp == at
    assert page.sent_at is not None
    # the client's clock is the server's here: the correction is at most the request time
    assert abs((page.timestamp - at).total_seconds()) < 5
    screen = events["m-screen"]
    assert (screen.type, screen.event, screen.properties) == (
        "screen",
        "Home",
        {"tab": 1, "category": "app"},
    )
    group = events["m-group"]
    assert (group.type, group.group_id, group.traits) == ("group", "g-7", {"name": "门店 7"})
    alias = events["m-alias"]
    assert (alias.type, alias.previous_id, alias.user_id) == ("alias", "anon-1", "u-1")
    anonymous = next(e for e in events.values() if e.anonymous_id == "anon-2")
    assert anonymous.user_id == "" and anonymous.context["ip"] == "198.51.100.7"

    for event in events.values():
        assert event.context["library"]["name"] == "analytics-python"
        assert event.status == "processed"  # resolved on commit (immediate task backend)
    assert identify.context["ip"] == "127.0.0.1"
    # u-1's calls resolve to one contact, which also got the aliased anonymous id
    person = identify.contact
    assert person is not None
    assert {events[m].contact_id for m in ("m-identify", "m-track", "m-alias")} == {person.pk}
    assert set(person.identities.values_list("kind", "value")) >= {
        ("user_id", "u-1"),
        ("anonymous_id", "anon-1"),
    }
    assert person.identities.filter(kind="phone").exists()
    assert anonymous.contact_id not in (None, person.pk)


def test_the_client_retrying_a_batch_does_not_double_it(cast, segment_client):
    for _ in range(3):
        segment_client.track("u-1", "Clicked", message_id="same")
    segment_client.flush()
    assert segment_client.errors == []
    assert Event.objects.filter(workspace=cast.workspace).count() == 1


def test_gzip_from_the_client(live_server, cast, system_actor):
    _, raw = actions.writekey_create(workspace=cast.workspace, actor=system_actor, name="gz")
    client = segment.Client(write_key=raw, host=live_server.url, gzip=True, max_retries=0)
    for i in range(20):
        client.track("u-1", "Scrolled", {"i": i})
    client.flush()
    client.shutdown()
    assert Event.objects.filter(workspace=cast.workspace, event="Scrolled").count() == 20


def test_a_revoked_key_is_reported_to_the_client(live_server, cast, system_actor):
    key, raw = actions.writekey_create(workspace=cast.workspace, actor=system_actor, name="old")
    actions.writekey_revoke(workspace=cast.workspace, actor=system_actor, key=key)
    errors: list = []
    client = segment.Client(
        write_key=raw,
        host=live_server.url,
        sync_mode=True,
        max_retries=0,
        on_error=lambda error, messages: errors.append(error),
    )
    with pytest.raises(Exception) as raised:  # noqa: B017 - sync mode raises the APIError
        client.track("u-1", "Clicked")
    assert getattr(raised.value, "status", None) == 401
    assert getattr(raised.value, "code", None) == "unauthorized"
    assert not Event.objects.exists()
