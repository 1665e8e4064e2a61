"""The broadcasts API: draft, preview, send, a double send, schedule, report, cancel; roles
and workspaces."""

import datetime

import pytest
from django.utils import timezone

from siyu.campaigns.models import Broadcast, BroadcastStatus
from siyu.contacts.actions.consent import consent_set
from siyu.messaging import actions as messaging
from siyu.messaging import channels
from siyu.messaging.models import OutboxMessage
from siyu.segments import actions as segments
from tests.helpers import error_of
from tests.messaging.recording import RecordingTransport

pytestmark = pytest.mark.django_db


@pytest.fixture
def ids(cast, system_actor, make_contact, monkeypatch):
    RecordingTransport.reset()
    monkeypatch.setitem(
        channels.TRANSPORTS, "sms_aliyun", "tests.messaging.recording.RecordingTransport"
    )
    ws = cast.workspace
    people = [make_contact(name=f"客户{i}", phone=f"1380013{i:04d}") for i in range(12)]
    for person in people:
        consent_set(
            workspace=ws, actor=system_actor, contact=person, channel="sms", status="granted"
        )
    segment = segments.segment_create(
        workspace=ws,
        actor=system_actor,
        name="会员",
        kind="static",
        contact_ids=[p.pk for p in people],
    )
    channel = messaging.channel_create(
        workspace=ws, actor=system_actor, kind="sms_aliyun", name="短信"
    )
    template = messaging.template_create(
        workspace=ws,
        actor=system_actor,
        kind="sms_aliyun",
        name="t",
        content={"text": "{{ contact.name }}"},
    )
    return {"segment": segment.pk, "channel": channel.pk, "template": template.pk}


def _draft(client, ids, **extra):
    body = {
        "name": "会员日",
        "channel_id": ids["channel"],
        "template_id": ids["template"],
        "include_segments": [ids["segment"]],
        "holdout_percent": 25,
        **extra,
    }
    return client.post("/api/v1/broadcasts", body)


def test_draft_preview_send_report(api, ids):
    operator = api("operator")
    created = _draft(operator, ids)
    assert created.status_code == 201, created.content
    broadcast_id = created.json()["id"]
    preview = operator.get(f"/api/v1/broadcasts/{broadcast_id}/preview").json()
    assert preview["audience"] == preview["included"] == 12
    assert preview["holdout"] + preview["to_send"] == 12
    sent = operator.post(f"/api/v1/broadcasts/{broadcast_id}/send", {})
    assert sent.status_code == 200 and sent.json()["status"] == "sending"
    assert sent.json()["runs"][0]["counts"]["to_send"] == preview["to_send"]
    again = operator.post(f"/api/v1/broadcasts/{broadcast_id}/send", {})
    assert again.status_code == 409
    assert OutboxMessage.objects.count() == preview["to_send"]
    report = api("analyst").get(f"/api/v1/broadcasts/{broadcast_id}/runs/1/report")
    assert report.status_code == 200
    body = report.json()
    assert body["conversion"]["holdout"]["n"] == preview["holdout"]
    assert body["messages"]["by_status"] == {"queued": preview["to_send"]}
    assert api("analyst").get(f"/api/v1/broadcasts/{broadcast_id}/runs/2/report").status_code == 404


def test_schedule_and_cancel(api, ids):
    operator = api("operator")
    broadcast_id = _draft(operator, ids).json()["id"]
    when = (timezone.now() + datetime.timedelta(days=1)).isoformat()
    scheduled = operator.post(
        f"/api/v1/broadcasts/{broadcast_id}/send",
        {"send_at": when, "recurrence": "weekly", "weekdays": [1, 3]},
    )
    assert scheduled.status_code == 200, scheduled.content
    assert scheduled.json()["status"] == "scheduled" and scheduled.json()["next_run_at"]
    cancelled = operator.post(f"/api/v1/broadcasts/{broadcast_id}/cancel")
    assert cancelled.json() == {"stopped": 0}
    assert Broadcast.objects.get().status == BroadcastStatus.CANCELLED
    assert operator.post(f"/api/v1/broadcasts/{broadcast_id}/cancel").status_code == 409


def test_errors_roles_and_workspaces(api, ids):
    bad = _draft(api("operator"), ids, holdout_percent=80)
    assert bad.status_code == 422 and error_of(bad)["details"]["field"] == "holdout_percent"
    assert _draft(api("analyst"), ids).status_code == 403
    assert not Broadcast.objects.exists()
    broadcast_id = _draft(api("operator"), ids).json()["id"]
    assert api("outsider").get(f"/api/v1/broadcasts/{broadcast_id}").status_code == 404
    assert api("outsider").post(f"/api/v1/broadcasts/{broadcast_id}/send", {}).status_code == 404
    assert api("agent").get("/api/v1/broadcasts").status_code == 403
    edited = api("operator").patch(f"/api/v1/broadcasts/{broadcast_id}", {"name": "改名"})
    assert edited.json()["name"] == "改名"
    assert Broadcast.objects.get().status == BroadcastStatus.DRAFT
    assert not OutboxMessage.objects.exists()
