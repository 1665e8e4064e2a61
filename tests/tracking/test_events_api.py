"""GET /api/v1/contacts/{id}/events: a contact's events, newest first, cursor-paged, scoped
and masked."""

import datetime

from django.utils import timezone

from siyu.tracking.actions import events_ingest
from siyu.tracking.models import ResolvedEvent
from tests.helpers import pending_event, processed_event


def _events(cast, n, user_id="u-1", phone=None, django_capture=None):
    base = timezone.now() - datetime.timedelta(days=1)
    rows = [
        {
            "message_id": f"{user_id}-m{i}",
            "type": "track" if i else "identify",
            "user_id": user_id,
            "anonymous_id": "",
            "event": "Product Viewed" if i else "",
            "properties": {"sku": f"sku-{i}"} if i else {},
            "traits": {"phone": phone} if (phone and not i) else {},
            "context": {},
            "timestamp": base + datetime.timedelta(minutes=i),
            "received_at": timezone.now(),
        }
        for i in range(n)
    ]
    with django_capture(execute=True):
        events_ingest(workspace=cast.workspace, events=rows)


def test_a_contacts_events_newest_first_in_pages(cast, api, django_capture_on_commit_callbacks):
    _events(cast, 7, phone="13755556666", django_capture=django_capture_on_commit_callbacks)
    contact_id = ResolvedEvent.objects.get(event__message_id="u-1-m0").contact_id
    assert contact_id is not None
    client = api("analyst")
    seen, cursor = [], ""
    while True:
        page = client.get(f"/api/v1/contacts/{contact_id}/events", limit=3, cursor=cursor).json()
        seen += page["items"]
        if not page["next"]:
            break
        cursor = page["next"]
    assert [e["message_id"] for e in seen] == [f"u-1-m{i}" for i in range(6, -1, -1)]
    track = seen[0]
    assert (track["event"], track["properties"]) == ("Product Viewed", {"sku": "sku-6"})
    identify = seen[-1]
    assert identify["traits"] == {"phone": "137****6666"}  # masked, never the clear phone


def test_events_are_scoped_to_what_the_key_may_see(cast, api, django_capture_on_commit_callbacks):
    _events(cast, 2, django_capture=django_capture_on_commit_callbacks)
    contact_id = ResolvedEvent.objects.get(event__message_id="u-1-m0").contact_id
    assert api("outsider").get(f"/api/v1/contacts/{contact_id}/events").status_code == 404
    assert api("agent").get(f"/api/v1/contacts/{contact_id}/events").status_code == 404
    bad = api("admin").get(f"/api/v1/contacts/{contact_id}/events", cursor="nope")
    assert bad.status_code == 422
    assert bad.json()["details"]["field"] == "cursor"


def test_pages_follow_the_event_time_and_skip_other_and_pending_events(cast, api, make_contact):
    contact = make_contact("王小明")
    other = make_contact("李雷")
    base = timezone.now() - datetime.timedelta(days=2)

    def fields(name: str, minutes: int) -> dict:
        at = base + datetime.timedelta(minutes=minutes)
        return {
            "message_id": name,
            "type": "track",
            "event": "E",
            "timestamp": at,
            "received_at": at,
        }

    # ids out of time order, and two events at the same moment (the id breaks the tie)
    for name, minutes in [("b", 10), ("a", 0), ("d", 30), ("c1", 20), ("c2", 20), ("e", 40)]:
        processed_event(cast.workspace, contact, **fields(name, minutes))
    processed_event(cast.workspace, other, **fields("other", 15))
    processed_event(cast.workspace, None, **fields("nobody", 16))
    pending_event(cast.workspace, **fields("pending", 17))
    client = api("analyst")
    seen, cursor = [], ""
    while True:
        page = client.get(f"/api/v1/contacts/{contact.pk}/events", limit=2, cursor=cursor).json()
        seen += [e["message_id"] for e in page["items"]]
        if not page["next"]:
            break
        cursor = page["next"]
    assert seen == ["e", "d", "c2", "c1", "b", "a"]
