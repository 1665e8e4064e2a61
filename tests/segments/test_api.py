"""The segments API: CRUD, preview, members, history, a contact's segments; bad rules are
422s naming their path; roles are enforced and a denied request changes nothing."""

import pytest

from siyu.core.models import AuditLog
from siyu.segments.models import ContactScore, Segment, SegmentMember

SHANGHAI = {"type": "field", "field": "city", "op": "eq", "value": "上海"}


def test_create_list_get_edit_archive(pool, api):
    client = api("operator")
    created = client.post("/api/v1/segments", {"name": "上海客户", "rule": SHANGHAI})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["size"] == 2 and body["kind"] == "dynamic"
    sid = body["id"]
    assert [s["id"] for s in client.get("/api/v1/segments").json()["items"]] == [sid]
    assert client.get(f"/api/v1/segments/{sid}").json()["name"] == "上海客户"

    beijing = {"type": "field", "field": "city", "op": "eq", "value": "北京"}
    edited = client.patch(f"/api/v1/segments/{sid}", {"rule": beijing, "name": "北京客户"})
    assert edited.status_code == 200 and edited.json()["size"] == 1
    assert AuditLog.objects.filter(action="segment.update", object_id=str(sid)).count() == 1

    assert client.delete(f"/api/v1/segments/{sid}").status_code == 204
    assert client.get(f"/api/v1/segments/{sid}").status_code == 404
    assert not SegmentMember.objects.filter(segment_id=sid).exists()


def test_preview_counts_without_saving(pool, api):
    response = api("analyst").post("/api/v1/segments/preview", {"rule": SHANGHAI})
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert {c["name"] for c in response.json()["sample"]} == {"王芳", "张伟"}
    assert not Segment.objects.exists()


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"type": "field", "field": "shoe_size", "op": "eq", "value": 1}, "rule.field"),
        (
            {"type": "and", "rules": [{"type": "field", "field": "city", "op": "gte", "value": 1}]},
            "rule.rules[0].op",
        ),
        ({"type": "or", "rules": [SHANGHAI, {"type": "wat"}]}, "rule.rules[1].type"),
        (
            {"type": "not", "rule": {"type": "attribute", "key": "nope", "op": "is_set"}},
            "rule.rule.key",
        ),
        (
            {
                "type": "event",
                "event": "X",
                "op": "gte",
                "value": 1,
                "where": [{"property": "price", "kind": "money", "op": "gt", "value": 1}],
            },
            "rule.where[0].kind",
        ),
        ({"type": "orders", "metric": "spend", "op": "gte", "value": "很多"}, "rule.value"),
        (
            {"type": "field", "field": "birthday", "op": "before", "value": "2026-13-01"},
            "rule.value",
        ),
        (
            {"type": "event", "event": "X", "op": "gte", "value": 1, "window": {"last_days": 0}},
            "rule.window.last_days",
        ),
        ({"type": "segment", "op": "in", "value": 99999}, "rule.value"),
        ({"type": "sample", "value": 0}, "rule.value"),
        ({"type": "tags", "op": "any", "value": [424242]}, "rule.value[0]"),
        ({"type": "field", "field": "created_at", "op": "on", "value": "9999-12-31"}, "rule.value"),
        (
            {
                "type": "orders",
                "metric": "count",
                "op": "gte",
                "value": 1,
                "window": {"from": "0001-01-01"},
            },
            "rule.window.from",
        ),
        ({"type": "attribute", "key": "vip_level", "op": "gte", "value": 10**30}, "rule.value"),
        ({"type": "sample", "value": 0.004}, "rule.value"),
        (
            {
                "type": "event",
                "event": "X",
                "op": "gte",
                "value": 1,
                "where": [{"property": "0", "kind": "string", "op": "eq", "value": "a"}],
            },
            "rule.where[0].property",
        ),
    ],
)
def test_bad_rules_are_422_naming_their_path(pool, api, rule, path):
    client = api("operator")
    for response in (
        client.post("/api/v1/segments/preview", {"rule": rule}),
        client.post("/api/v1/segments", {"name": "坏规则", "rule": rule}),
    ):
        assert response.status_code == 422, response.content
        assert response.json()["details"]["field"] == path
    assert not Segment.objects.exists()


def test_a_segment_cannot_use_itself(pool, api):
    client = api("operator")
    a = client.post("/api/v1/segments", {"name": "A", "rule": SHANGHAI}).json()["id"]
    b = client.post(
        "/api/v1/segments", {"name": "B", "rule": {"type": "segment", "op": "in", "value": a}}
    ).json()["id"]
    cycle = {"type": "segment", "op": "not_in", "value": b}
    response = client.patch(f"/api/v1/segments/{a}", {"rule": cycle})
    assert response.status_code == 422
    assert "its own segment" in response.json()["message"]
    assert Segment.objects.get(pk=a).rule == SHANGHAI
    # and a used segment cannot be archived
    assert client.delete(f"/api/v1/segments/{a}").status_code == 409


def test_members_changes_and_sizes(pool, api):
    client = api("operator")
    sid = client.post("/api/v1/segments", {"name": "上海客户", "rule": SHANGHAI}).json()["id"]
    page = client.get(f"/api/v1/segments/{sid}/members", limit=1).json()
    assert len(page["items"]) == 1 and page["next"]
    rest = client.get(f"/api/v1/segments/{sid}/members", cursor=page["next"]).json()
    names = {m["name"] for m in page["items"] + rest["items"]}
    assert names == {"王芳", "张伟"} and rest["next"] is None
    history = client.get(f"/api/v1/segments/{sid}/changes").json()["items"]
    assert {h["kind"] for h in history} == {"entered"}
    sizes = client.get(f"/api/v1/segments/{sid}/sizes").json()
    assert [s["size"] for s in sizes] == [2]


def test_static_segment_by_api(pool, api, cast):
    client = api("operator")
    ids = sorted(pool.ids("王芳", "李娜"))
    outsider = pool.c["王芳"].__class__.objects.filter(workspace=cast.outsider_workspace).get()
    created = client.post(
        "/api/v1/segments",
        {"name": "门店名单", "kind": "static", "contact_ids": [*ids, outsider.pk]},
    )
    assert created.status_code == 201 and created.json()["size"] == 2  # outsider ignored
    sid = created.json()["id"]
    changed = client.post(f"/api/v1/segments/{sid}/members", {"remove": [ids[0]]})
    assert changed.json() == {"entered": 0, "exited": 1, "size": 1}


def test_contact_segments_and_score(pool, api):
    client = api("operator")
    client.post("/api/v1/segments", {"name": "上海客户", "rule": SHANGHAI})
    wang = pool.c["王芳"].pk
    segments = client.get(f"/api/v1/contacts/{wang}/segments").json()
    assert [s["name"] for s in segments] == ["上海客户"]
    score = client.get(f"/api/v1/contacts/{wang}/score").json()
    assert (score["stage"], score["tier"], score["rfm_segment"]) == ("active", "high", "champions")
    assert score["expected_value_12m"] == "2500.00"
    ContactScore.objects.filter(contact_id=wang).delete()
    assert client.get(f"/api/v1/contacts/{wang}/score").status_code == 404


def test_roles_are_enforced(pool, api, cast):
    before = Segment.objects.count()
    for role in ("analyst", "agent"):
        response = api(role).post("/api/v1/segments", {"name": "X", "rule": SHANGHAI})
        assert response.status_code == 403
    assert Segment.objects.count() == before
    sid = api("operator").post("/api/v1/segments", {"name": "上海", "rule": SHANGHAI}).json()["id"]
    assert api("analyst").delete(f"/api/v1/segments/{sid}").status_code == 403
    assert api("analyst").patch(f"/api/v1/segments/{sid}", {"name": "改"}).status_code == 403
    assert Segment.objects.get(pk=sid).name == "上海"
    # an agent sees the segment but only the members it owns (none here)
    assert api("agent").get(f"/api/v1/segments/{sid}/members").json()["items"] == []
    # another workspace's key never sees it
    outsider = api(None)  # no key
    assert outsider.get(f"/api/v1/segments/{sid}").status_code == 401


def test_schema_lists_fields_and_operators(pool, api):
    schema = api("analyst").get("/api/v1/segments/schema").json()
    fields = {f["key"]: f for f in schema["contact_fields"]}
    assert "anniversary_within_next_days" in fields["birthday"]["operators"]
    assert {
        c["value"]
        for c in next(f for f in schema["score_fields"] if f["key"] == "stage")["choices"]
    } == {"new", "active", "dormant", "churned"}


def test_an_agent_previews_only_its_own_contacts(pool, api, cast):
    from siyu.contacts.models import Contact

    Contact.objects.filter(pk=pool.c["张伟"].pk).update(owner=cast.agent.staff)
    body = api("agent").post("/api/v1/segments/preview", {"rule": SHANGHAI}).json()
    assert body["count"] == 1 and [c["name"] for c in body["sample"]] == ["张伟"]


def test_clv_fit_on_demand_and_latest(pool, api, django_capture_on_commit_callbacks):
    from siyu.core.models import AuditLog
    from siyu.segments.models import ClvFit

    assert api("analyst").get("/api/v1/clv").status_code == 404
    assert api("operator").post("/api/v1/clv/fit").status_code == 403
    assert not ClvFit.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert api("admin").post("/api/v1/clv/fit").status_code == 202
    latest = api("analyst").get("/api/v1/clv").json()
    # the test pool has three buyers, one of them repeat: a fit is stored either way
    assert latest["customers"] == ClvFit.objects.get().customers
    assert latest["error"] or latest["bgnbd"]["r"] > 0
    assert AuditLog.objects.filter(action="clv.fit", actor_label__startswith="api:").exists()


def test_tiers_page_shows_the_clv_card(pool, console):
    from siyu.segments.refresh import refresh_workspace

    refresh_workspace(pool.ws)
    page = console("analyst").get("/w/brand/tiers/").content.decode()
    assert "预测生命周期价值" in page and "立即重新拟合" not in page
    assert console("operator").post("/w/brand/tiers/clv/").status_code == 403


def test_an_agent_sees_sizes_over_its_own_contacts(pool, api, console, cast):
    from siyu.contacts.models import Contact

    Contact.objects.filter(pk=pool.c["张伟"].pk).update(owner=cast.agent.staff)
    sid = api("operator").post("/api/v1/segments", {"name": "上海", "rule": SHANGHAI}).json()["id"]
    assert api("operator").get(f"/api/v1/segments/{sid}").json()["size"] == 2
    agent = api("agent")
    assert agent.get(f"/api/v1/segments/{sid}").json()["size"] == 1
    assert [s["size"] for s in agent.get("/api/v1/segments").json()["items"]] == [1]
    assert agent.get(f"/api/v1/segments/{sid}/sizes").json() == []
    page = console("agent").get(f"/w/brand/segments/{sid}/").content.decode()
    assert 'data-kpi="size">1<' in page
