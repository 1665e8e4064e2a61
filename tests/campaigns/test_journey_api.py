"""The journeys API: create (errors with paths), activate, enter, report; roles, workspaces."""

import pytest
from django.utils import timezone

from siyu.campaigns.journey_engine import advance
from siyu.campaigns.journey_models import Journey
from siyu.messaging import actions as messaging
from siyu.messaging import channels
from tests.helpers import error_of
from tests.messaging.recording import RecordingTransport

pytestmark = pytest.mark.django_db


@pytest.fixture
def graph(cast, system_actor, monkeypatch):
    RecordingTransport.reset()
    monkeypatch.setitem(
        channels.TRANSPORTS, "sms_aliyun", "tests.messaging.recording.RecordingTransport"
    )
    channel = messaging.channel_create(
        workspace=cast.workspace, actor=system_actor, kind="sms_aliyun", name="短信"
    )
    template = messaging.template_create(
        workspace=cast.workspace,
        actor=system_actor,
        kind="sms_aliyun",
        name="t",
        content={"text": "hi"},
    )
    return {
        "trigger": {"type": "api"},
        "start": "hi",
        "steps": {"hi": {"type": "send", "channel_id": channel.pk, "template_id": template.pk}},
    }


def test_create_activate_enter_report(api, graph, make_contact):
    operator = api("operator")
    created = operator.post(
        "/api/v1/journeys", {"name": "欢迎", "graph": graph, "goal_event": "Order Completed"}
    )
    assert created.status_code == 201, created.content
    journey_id = created.json()["id"]
    assert created.json()["status"] == "draft" and created.json()["live_version"] is None
    person = make_contact(name="甲", phone="13800138001")
    not_live = operator.post(f"/api/v1/journeys/{journey_id}/enter", {"contact_ids": [person.pk]})
    assert not_live.status_code == 409
    live = operator.post(f"/api/v1/journeys/{journey_id}/status", {"status": "active"})
    assert live.json()["status"] == "active" and live.json()["live_version"] == 1
    entered = operator.post(f"/api/v1/journeys/{journey_id}/enter", {"contact_ids": [person.pk]})
    assert entered.json() == {"entered": 1}
    advance(timezone.now())
    report = api("analyst").get(f"/api/v1/journeys/{journey_id}/report").json()
    assert report["walks"] == {"completed": 1}
    assert report["steps"] == {"1": {"hi": 1}}
    assert report["messages"]["hi"]["by_status"] == {"queued": 1}
    assert report["conversion"]["targeted"] == {
        "n": 1,
        "converted": 0,
        "rate": 0.0,
        "revenue_fen": 0,
        "revenue_per_member_fen": 0,
    }
    unknown = operator.post(f"/api/v1/journeys/{journey_id}/enter", {"contact_ids": [999999]})
    assert error_of(unknown)["details"]["field"] == "contact_ids[0]"


def test_errors_roles_and_workspaces(api, graph):
    graph["steps"]["hi"]["next"] = "missing"
    bad = api("operator").post("/api/v1/journeys", {"name": "x", "graph": graph})
    assert bad.status_code == 422
    assert error_of(bad)["details"]["field"] == "graph.steps.hi.next"
    del graph["steps"]["hi"]["next"]
    assert api("analyst").post("/api/v1/journeys", {"name": "x", "graph": graph}).status_code == 403
    assert not Journey.objects.exists()
    journey_id = (
        api("operator").post("/api/v1/journeys", {"name": "x", "graph": graph}).json()["id"]
    )
    assert api("outsider").get(f"/api/v1/journeys/{journey_id}").status_code == 404
    assert (
        api("outsider")
        .post(f"/api/v1/journeys/{journey_id}/status", {"status": "active"})
        .status_code
        == 404
    )
    assert Journey.objects.get().status == "draft"


def test_bad_values_answer_422_naming_the_field(api, graph):
    operator = api("operator")
    for bad in ({"start": ["hi"]}, {"start": 5}):
        answer = operator.post("/api/v1/journeys", {"name": "x", "graph": {**graph, **bad}})
        assert answer.status_code == 422 and error_of(answer)["details"]["field"] == "graph.start"
    graph["steps"]["hi"]["next"] = {"a": 1}
    answer = operator.post("/api/v1/journeys", {"name": "x", "graph": graph})
    assert error_of(answer)["details"]["field"] == "graph.steps.hi.next"
    del graph["steps"]["hi"]["next"]
    nan = operator.post("/api/v1/journeys", {"name": "x", "graph": graph, "holdout_percent": "NaN"})
    assert nan.status_code == 422
    journey_id = operator.post("/api/v1/journeys", {"name": "x", "graph": graph}).json()["id"]
    operator.post(f"/api/v1/journeys/{journey_id}/status", {"status": "active"})
    huge = operator.post(f"/api/v1/journeys/{journey_id}/enter", {"contact_ids": [10**20]})
    assert huge.status_code == 422
    assert error_of(huge)["details"]["field"] == "contact_ids[0]"
    assert api("analyst").get("/api/v1/outbox", contact_id=10**20).json()["items"] == []
    assert not Journey.objects.filter(name="x", status="draft").exclude(pk=journey_id).exists()
