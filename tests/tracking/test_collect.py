"""The Segment-compatible collection API: every endpoint, both ways to send the write key,
gzip, limits, bad input, deduplication, clock correction and context."""

import datetime
import gzip
import json
import zlib

import pytest

from siyu.tracking.models import Event, QueuedEvent, ResolvedEvent
from siyu.tracking.pii import unseal
from siyu.tracking.schemas import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES
from tests.helpers import error_of
from tests.tracking.conftest import Collector, basic

UTC = datetime.UTC


def one() -> Event:
    return Event.objects.get()


def ts(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


# --- each endpoint ----------------------------------------------------------------------------


def test_identify(cast, collector):
    response = collector.post(
        "/v1/identify",
        {
            "userId": "u-42",
            "anonymousId": "anon-1",
            "traits": {"name": "王芳", "email": "wang@example.cn", "plan": "gold"},
            "messageId": "m-identify",
            "timestamp": "2026-03-01T10:00:00Z",
        },
    )
    assert response.status_code == 200
    assert response.json() == {"success": True}
    event = one()
    assert event.workspace == cast.workspace
    assert (event.type, event.user_id, event.anonymous_id) == ("identify", "u-42", "anon-1")
    assert {k: unseal(v) for k, v in event.traits.items()} == {
        "name": "王芳",
        "email": "wang@example.cn",
        "plan": "gold",
    }
    assert event.traits["email"] != "wang@example.cn"  # stored encrypted
    assert event.message_id == "m-identify"
    assert event.timestamp == ts("2026-03-01T10:00:00+00:00")
    assert (event.status, event.contact) == ("pending", None)
    assert QueuedEvent.objects.filter(workspace=event.workspace, event=event).exists()


def test_track(collector):
    body = {
        "anonymousId": "anon-1",
        "event": "Order Completed",
        "properties": {"order_id": "A1", "revenue": 99.5, "products": [{"sku": "X"}]},
    }
    assert collector.post("/v1/track", body).status_code == 200
    event = one()
    assert (event.type, event.event, event.user_id) == ("track", "Order Completed", "")
    assert event.properties == body["properties"]


def test_page_and_screen_keep_their_name(collector):
    collector.post(
        "/v1/page",
        {"userId": "u1", "name": "商品详情", "category": "shop", "properties": {"url": "/p/1"}},
    )
    collector.post("/v1/screen", {"userId": "u1", "name": "首页", "messageId": "s1"})
    page, screen = Event.objects.order_by("id")
    assert (page.type, page.event) == ("page", "商品详情")
    assert page.properties == {"url": "/p/1", "category": "shop"}
    assert (screen.type, screen.event, screen.properties) == ("screen", "首页", {})


def test_group(collector):
    body = {"userId": "u1", "groupId": "company-9", "traits": {"name": "某公司"}}
    assert collector.post("/v1/group", body).status_code == 200
    event = one()
    assert (event.type, event.group_id, event.traits) == ("group", "company-9", {"name": "某公司"})


def test_alias(collector):
    body = {"previousId": "anon-1", "userId": "u1"}
    assert collector.post("/v1/alias", body).status_code == 200
    event = one()
    assert (event.type, event.previous_id, event.user_id) == ("alias", "anon-1", "u1")


def test_the_url_decides_the_type_of_a_single_message(collector):
    collector.post("/v1/track", {"type": "identify", "userId": "u1", "event": "Clicked"})
    assert one().type == "track"


def test_batch_of_every_type(collector):
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"a": 1}},
        {"type": "track", "userId": "u1", "event": "E"},
        {"type": "page", "anonymousId": "a1", "name": "Home"},
        {"type": "screen", "anonymousId": "a1", "name": "Main"},
        {"type": "group", "userId": "u1", "groupId": "g1"},
        {"type": "alias", "previousId": "a1", "userId": "u1"},
    ]
    response = collector.post("/v1/batch", {"batch": batch})
    assert response.status_code == 200 and response.json() == {"success": True}
    types = list(Event.objects.order_by("id").values_list("type", flat=True))
    assert types == ["identify", "track", "page", "screen", "group", "alias"]


def test_analytics_js_short_paths_and_trailing_slash(collector):
    """analytics.js with apiHost "<host>/v1" posts to /v1/t, /v1/p, ... and batches to /v1/b,
    as text/plain with the write key in the body."""
    client = collector.client
    key = collector.key
    for path, body in [
        ("/v1/t", {"anonymousId": "a", "event": "E", "messageId": "1"}),
        ("/v1/p", {"anonymousId": "a", "name": "Home", "messageId": "2"}),
        ("/v1/i", {"userId": "u", "messageId": "3"}),
        ("/v1/b", {"batch": [{"type": "screen", "userId": "u", "messageId": "4"}]}),
        ("/v1/track/", {"anonymousId": "a", "event": "E", "messageId": "5"}),
    ]:
        data = json.dumps({**body, "writeKey": key})
        response = client.post(path, data, content_type="text/plain")
        assert response.status_code == 200, (path, response.content)
    rows = Event.objects.order_by("message_id").values_list("message_id", "type")
    assert list(rows) == [
        ("1", "track"),
        ("2", "page"),
        ("3", "identify"),
        ("4", "screen"),
        ("5", "track"),
    ]


def test_cors_preflight_and_headers(collector):
    response = collector.client.options("/v1/batch")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    ok = collector.post("/v1/track", {"userId": "u", "event": "E"})
    assert ok["Access-Control-Allow-Origin"] == "*"


def test_only_post(collector):
    response = collector.client.get("/v1/track")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


# --- authentication ---------------------------------------------------------------------------


def test_write_key_in_the_body(collector):
    response = collector.post("/v1/track", {"userId": "u", "event": "E"}, auth="body")
    assert response.status_code == 200
    stored = one()
    assert "writeKey" not in json.dumps([stored.properties, stored.context, stored.traits])


def test_write_key_in_a_batch_body(collector):
    response = collector.post(
        "/v1/batch", {"batch": [{"type": "identify", "userId": "u"}]}, auth="body"
    )
    assert response.status_code == 200
    assert one().type == "identify"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("wk_not-a-real-key"),
        basic(""),
        "Basic !!!not-base64",
        "Bearer whatever",
    ],
)
def test_wrong_or_missing_key_is_401_and_stores_nothing(db, cast, authorization):
    client = Collector(None)
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post("/v1/track", {"userId": "u", "event": "E"}, headers=headers)
    assert response.status_code == 401
    body = error_of(response)
    assert body["code"] == "unauthorized"
    assert "write key" in body["message"]
    assert not Event.objects.exists()


def test_a_wrong_body_key_is_401(cast, collector):
    response = Collector("wk_wrong").post("/v1/track", {"userId": "u", "event": "E"}, auth="body")
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_without_a_key_a_broken_body_is_still_just_401(db, cast):
    response = Collector(None).post("/v1/track", None, raw=b"{not json")
    assert response.status_code == 401


def test_the_header_key_wins_over_the_body_key(cast, collector, outsider_collector):
    body = {"userId": "u", "event": "E", "writeKey": outsider_collector.key}
    assert collector.post("/v1/track", body).status_code == 200
    assert one().workspace == cast.workspace


# --- gzip -------------------------------------------------------------------------------------


def test_gzip_body(collector):
    batch = [{"type": "track", "userId": "u", "event": f"E{i}"} for i in range(50)]
    response = collector.post("/v1/batch", {"batch": batch}, gzipped=True)
    assert response.status_code == 200
    assert Event.objects.count() == 50


def test_gzip_single_message_with_body_key(collector):
    response = collector.post("/v1/identify", {"userId": "u"}, gzipped=True, auth="body")
    assert response.status_code == 200


def test_broken_gzip_is_400(collector):
    raw = gzip.compress(b'{"userId": "u", "event": "E"}')
    for broken in (raw[:-12], b"\x1f\x8b not gzip at all", raw + b"garbage"):
        response = collector.post(
            "/v1/track", None, raw=broken, headers={"Content-Encoding": "gzip"}
        )
        assert response.status_code == 400, broken
        assert error_of(response)["code"] == "invalid_gzip"
    assert not Event.objects.exists()


def test_gzip_bomb_is_refused_without_inflating_it(collector):
    # 100 MB of spaces compresses to ~100 KB; it must be refused at 500 KB of output.
    inflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = inflater.compress(b" " * (100 * 1024 * 1024)) + inflater.flush()
    assert len(bomb) < MAX_BATCH_BYTES
    response = collector.post("/v1/batch", None, raw=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "request_too_large"


def test_other_encodings_are_415(collector):
    response = collector.post(
        "/v1/track", {"userId": "u", "event": "E"}, headers={"Content-Encoding": "br"}
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_encoding"


# --- limits -----------------------------------------------------------------------------------


def padded(size: int, **fields) -> dict:
    """A track message of exactly `size` bytes as compact JSON."""
    message = {"type": "track", "userId": "u", "event": "E", "properties": {"pad": ""}, **fields}
    base = len(json.dumps(message, separators=(",", ":")).encode())
    message["properties"]["pad"] = "x" * (size - base)
    return message


def test_a_message_of_exactly_32_kb_is_accepted(collector):
    response = collector.post("/v1/track", padded(MAX_MESSAGE_BYTES))
    assert response.status_code == 200


def test_a_message_over_32_kb_is_400_naming_the_index(collector):
    response = collector.post("/v1/track", padded(MAX_MESSAGE_BYTES + 1))
    assert response.status_code == 400
    body = error_of(response)
    assert body["code"] == "invalid_message"
    assert body["message"].startswith("message 0:") and "32 KB" in body["message"]
    assert body["details"]["index"] == 0
    assert not Event.objects.exists()


def test_an_oversize_message_in_a_batch_is_rejected_by_index(collector):
    batch = [padded(100, messageId="ok-0"), padded(40_000, messageId="big-1"), padded(100)]
    response = collector.post("/v1/batch", {"batch": batch})
    assert response.status_code == 200
    rejected = response.json()["rejected"]
    assert [(r["index"], r["messageId"]) for r in rejected] == [(1, "big-1")]
    assert "32 KB" in rejected[0]["reason"]
    assert Event.objects.count() == 2
    assert not Event.objects.filter(message_id="big-1").exists()


def test_a_batch_over_500_kb_is_400(collector):
    batch = [padded(20_000) for _ in range(26)]  # 26 x 20 KB = 520 KB
    response = collector.post("/v1/batch", {"batch": batch})
    assert response.status_code == 400
    body = error_of(response)
    assert body["code"] == "request_too_large" and "500 KB" in body["message"]
    assert not Event.objects.exists()


def test_the_500_kb_limit_applies_after_decompression(collector):
    batch = [padded(20_000) for _ in range(26)]
    response = collector.post("/v1/batch", {"batch": batch}, gzipped=True)
    assert response.status_code == 400
    assert error_of(response)["code"] == "request_too_large"


def test_a_batch_just_under_500_kb_is_accepted(collector):
    batch = [padded(20_000, messageId=f"m{i}") for i in range(24)]
    response = collector.post("/v1/batch", {"batch": batch}, gzipped=True)
    assert response.status_code == 200
    assert Event.objects.count() == 24


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message", "field", "needle"),
    [
        ("/v1/track", {"event": "E"}, "userId", "userId or anonymousId"),
        ("/v1/track", {"userId": "", "anonymousId": None, "event": "E"}, "userId", "anonymousId"),
        ("/v1/track", {"userId": "u"}, "event", "required"),
        ("/v1/track", {"userId": "u", "event": 5}, "event", "string"),
        ("/v1/identify", {"userId": {"id": 1}}, "userId", "string"),
        ("/v1/identify", {"userId": True}, "userId", "string"),
        ("/v1/identify", {"userId": "x" * 256}, "userId", "255"),
        ("/v1/alias", {"userId": "u"}, "previousId", "previousId"),
        ("/v1/alias", {"previousId": "a"}, "userId", "userId"),
        ("/v1/alias", {"anonymousId": "a", "previousId": "p"}, "userId", "userId"),
        ("/v1/group", {"userId": "u"}, "groupId", "groupId"),
        ("/v1/group", {"groupId": "g"}, "userId", "userId or anonymousId"),
        ("/v1/identify", {"userId": "u", "traits": ["a"]}, "traits", "object"),
        ("/v1/track", {"userId": "u", "event": "E", "properties": "x"}, "properties", "object"),
        ("/v1/page", {"userId": "u", "context": 3}, "context", "object"),
        ("/v1/page", {"userId": "u", "timestamp": "yesterday"}, "timestamp", "ISO-8601"),
        ("/v1/page", {"userId": "u", "timestamp": "2026-13-45T00:00:00Z"}, "timestamp", "ISO"),
        ("/v1/page", {"userId": "u", "timestamp": 1700000000}, "timestamp", "ISO-8601"),
        ("/v1/page", {"userId": "u", "sentAt": "soon"}, "sentAt", "ISO-8601"),
        ("/v1/page", {"userId": "u\u0000"}, "", "NUL"),
        ("/v1/page", {"userId": "u", "properties": {"bad": "\ud800"}}, "", "Unicode"),
    ],
)
def test_bad_messages_are_400_and_store_nothing(collector, path, message, field, needle):
    response = collector.post(path, message)
    assert response.status_code == 400, response.content
    body = error_of(response)
    assert body["code"] == "invalid_message"
    assert body["details"]["index"] == 0
    assert body["details"]["field"] == field
    assert needle in body["message"]
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'"track"', "JSON object"),
        (b'{"userId": "u", "event": "E", "properties": {"x": NaN}}', "not valid JSON"),
        (b'{"userId": "u", "event": "E", "properties": {"x": 1e999}}', "out of range"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400(collector, raw, needle):
    response = collector.post("/v1/track", None, raw=raw)
    assert response.status_code == 400
    body = error_of(response)
    assert body["code"] == "invalid_json"
    assert needle in body["message"]
    assert not Event.objects.exists()


def test_unknown_type_in_a_batch(collector):
    response = collector.post("/v1/batch", {"batch": [{"type": "purchase", "userId": "u"}]})
    assert response.status_code == 400
    body = error_of(response)
    assert body["code"] == "invalid_batch"
    assert body["details"]["rejected"][0]["field"] == "type"
    assert "unknown type 'purchase'" in body["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"batch": {"type": "track"}}, "batch"),
        ({"messages": []}, "batch"),
        ({"batch": []}, "batch"),
        ({"batch": [{"type": "track", "userId": "u", "event": "E"}], "context": []}, "context"),
        ({"batch": [{"type": "track", "userId": "u", "event": "E"}], "sentAt": "x"}, "sentAt"),
    ],
)
def test_bad_batch_envelopes_are_400(collector, body, field):
    response = collector.post("/v1/batch", body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_batch"
    assert error["details"]["field"] == field
    assert not Event.objects.exists()


# --- the partial-batch rule -------------------------------------------------------------------


def test_a_batch_with_some_bad_messages_stores_the_good_ones(collector):
    batch = [
        {"type": "track", "userId": "u", "event": "Good 0", "messageId": "g0"},
        {"type": "track", "event": "No id", "messageId": "b1"},
        "not an object",
        {"type": "track", "userId": "u", "event": "Good 3", "messageId": "g3"},
        {"type": "nope", "userId": "u", "messageId": "b4"},
        {"type": "page", "userId": "u", "timestamp": "never", "messageId": "b5"},
    ]
    response = collector.post("/v1/batch", {"batch": batch})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert [(r["index"], r["messageId"], r["field"]) for r in body["rejected"]] == [
        (1, "b1", "userId"),
        (2, None, ""),
        (4, "b4", "type"),
        (5, "b5", "timestamp"),
    ]
    assert all(r["reason"] for r in body["rejected"])
    assert sorted(Event.objects.values_list("message_id", flat=True)) == ["g0", "g3"]


def test_a_batch_with_only_bad_messages_is_400_listing_every_index(collector):
    batch = [{"type": "track", "event": "E"}, {"type": "track", "userId": "u"}]
    response = collector.post("/v1/batch", {"batch": batch})
    assert response.status_code == 400
    body = error_of(response)
    assert body["code"] == "invalid_batch"
    assert "no message was accepted" in body["message"] and "message 0" in body["message"]
    assert [r["index"] for r in body["details"]["rejected"]] == [0, 1]
    assert not Event.objects.exists()


# --- deduplication ----------------------------------------------------------------------------


def test_the_same_batch_posted_twice_is_stored_once(collector):
    batch = {
        "batch": [
            {"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}"} for i in range(5)
        ]
    }
    assert collector.post("/v1/batch", batch).status_code == 200
    first = list(Event.objects.order_by("id").values())
    assert collector.post("/v1/batch", batch, gzipped=True).status_code == 200
    assert list(Event.objects.order_by("id").values()) == first
    # queued or resolved once each, never twice
    assert QueuedEvent.objects.count() + ResolvedEvent.objects.count() == 5


def test_duplicates_inside_one_batch_are_stored_once_first_copy_wins(collector):
    batch = [
        {"type": "track", "userId": "u", "event": "First", "messageId": "dup"},
        {"type": "track", "userId": "u", "event": "Second", "messageId": "dup"},
        {"type": "track", "userId": "u", "event": "Other", "messageId": "other"},
    ]
    response = collector.post("/v1/batch", {"batch": batch})
    assert response.status_code == 200 and response.json() == {"success": True}
    assert Event.objects.count() == 2
    assert Event.objects.get(message_id="dup").event == "First"


def test_a_message_without_message_id_gets_a_uuid(collector):
    collector.post("/v1/track", {"userId": "u", "event": "E"})
    collector.post("/v1/track", {"userId": "u", "event": "E"})
    ids = list(Event.objects.values_list("message_id", flat=True))
    assert len(ids) == 2 and len(set(ids)) == 2 and all(len(i) == 36 for i in ids)


def test_numeric_ids_are_kept_as_text(collector):
    collector.post("/v1/identify", {"userId": 12345, "messageId": 7})
    event = one()
    assert (event.user_id, event.message_id) == ("12345", "7")


# --- timestamps -------------------------------------------------------------------------------


def test_timestamp_is_corrected_by_the_device_clock_error(collector):
    """A device whose clock is 1 hour fast: it says sentAt 11:00 when the server receives
    at 10:00, so an event it stamped 10:55 happened at 09:55."""
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    fast = now + datetime.timedelta(hours=1)
    body = {
        "userId": "u",
        "event": "E",
        "timestamp": (fast - datetime.timedelta(minutes=5)).isoformat(),
        "sentAt": fast.isoformat(),
    }
    collector.post("/v1/track", body)
    event = one()
    assert event.original_timestamp == fast - datetime.timedelta(minutes=5)
    assert event.sent_at == fast
    # timestamp = original + (receivedAt - sentAt)
    assert event.timestamp == event.original_timestamp + (event.received_at - event.sent_at)
    expected = now - datetime.timedelta(minutes=5)
    assert abs((event.timestamp - expected).total_seconds()) < 5
    assert abs((event.received_at - now).total_seconds()) < 5


def test_batch_level_sent_at_applies_to_its_messages(collector):
    now = datetime.datetime.now(UTC)
    slow = now - datetime.timedelta(days=1)
    body = {
        "sentAt": slow.isoformat(),
        "batch": [
            {"type": "track", "userId": "u", "event": "E", "timestamp": slow.isoformat()},
        ],
    }
    collector.post("/v1/batch", body)
    event = one()
    assert event.sent_at == slow
    assert abs((event.timestamp - event.received_at).total_seconds()) < 0.001


def test_without_sent_at_the_timestamp_is_kept(collector):
    collector.post("/v1/track", {"userId": "u", "event": "E", "timestamp": "2020-01-02T03:04:05"})
    event = one()
    assert event.timestamp == event.original_timestamp == ts("2020-01-02T03:04:05+00:00")
    assert event.sent_at is None


def test_without_timestamp_it_is_the_time_received(collector):
    collector.post("/v1/track", {"userId": "u", "event": "E"})
    event = one()
    assert event.timestamp == event.received_at
    assert event.original_timestamp is None


def test_timestamps_with_offsets_are_stored_in_utc(collector):
    collector.post(
        "/v1/track", {"userId": "u", "event": "E", "timestamp": "2026-01-01T08:00:00+08:00"}
    )
    assert one().timestamp == ts("2026-01-01T00:00:00+00:00")


# --- context ----------------------------------------------------------------------------------


def test_context_is_kept_and_ip_filled_from_the_request(collector):
    context = {
        "userAgent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0",
        "library": {"name": "analytics.js", "version": "next-1.70.0"},
        "campaign": {"source": "douyin", "medium": "video", "name": "618"},
        "page": {"path": "/p/1", "url": "https://shop.test/p/1", "referrer": ""},
        "locale": "zh-CN",
    }
    collector.post("/v1/page", {"anonymousId": "a", "name": "P", "context": context})
    stored = one().context
    assert stored == {**context, "ip": "127.0.0.1"}


def test_a_sent_ip_is_not_overwritten(collector):
    collector.post("/v1/track", {"userId": "u", "event": "E", "context": {"ip": "203.0.113.9"}})
    assert one().context["ip"] == "203.0.113.9"


def test_batch_context_is_merged_under_each_message(collector):
    body = {
        "context": {"library": {"name": "batch-lib", "version": "1"}, "app": {"name": "shop"}},
        "batch": [
            {"type": "track", "userId": "u", "event": "A", "messageId": "a"},
            {
                "type": "track",
                "userId": "u",
                "event": "B",
                "messageId": "b",
                "context": {"library": {"version": "2"}, "app": "mine"},
            },
        ],
    }
    collector.post("/v1/batch", body)
    a = Event.objects.get(message_id="a").context
    b = Event.objects.get(message_id="b").context
    assert a["library"] == {"name": "batch-lib", "version": "1"} and a["app"] == {"name": "shop"}
    assert b["library"] == {"name": "batch-lib", "version": "2"} and b["app"] == "mine"
    assert a["ip"] == b["ip"] == "127.0.0.1"


def test_phones_and_emails_in_events_are_stored_encrypted(db):
    """Traits, properties and context.traits carry PII like contacts do: never in clear."""
    from django.db import connection
    from django.utils import timezone

    from siyu.accounts.actions import workspace_create
    from siyu.core.audit import Actor
    from siyu.tracking.actions import events_ingest
    from siyu.tracking.models import Event

    ws = workspace_create(name="品牌", slug="pii", actor=Actor.system("test"))
    events_ingest(
        workspace=ws,
        events=[
            {
                "message_id": "m-pii-1",
                "type": "identify",
                "user_id": "u1",
                "anonymous_id": "",
                "traits": {"phone": "13811112222", "Email": "Li@Example.cn", "name": "李"},
                "properties": {"email": "order@example.cn"},
                "context": {"traits": {"mobile": "13933334444"}, "ip": "1.2.3.4"},
                "timestamp": timezone.now(),
                "received_at": timezone.now(),
            }
        ],
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT traits, properties, context FROM tracking_event")
        raw = str(cursor.fetchall())
    for clear in ("13811112222", "Li@Example.cn", "order@example.cn", "13933334444"):
        assert clear not in raw
    event = Event.objects.get(message_id="m-pii-1")
    assert unseal(event.traits["phone"]) == "13811112222"
    assert unseal(event.traits["Email"]) == "Li@Example.cn"
    assert event.traits["name"] == "李"
    assert unseal(event.context["traits"]["mobile"]) == "13933334444"
