"""The REST API under /api/v1: lists with keyset paging, every route, the error format, and
workspace isolation (another workspace's ids are 404, exactly like missing ones)."""

import base64
import datetime
import json

import pytest
from django.utils import timezone

from siyu.accounts import actions as account_actions
from siyu.contacts import actions
from siyu.contacts.models import (
    AttributeDefinition,
    Contact,
    ContactTag,
    Identity,
    Tag,
    TagGroup,
    TimelineEntry,
)
from siyu.contacts.queries import SORTS
from siyu.core.models import AuditLog
from tests.conftest import ApiClient
from tests.helpers import db_snapshot, error_of, snapshot_diff

NAMES = ["王芳", "李雷", "alice", "Bob", "张三", "王芳", "zoe", "Ärger", "陈", ""]
SOURCES = ["store_qr", "douyin", "xiaohongshu"]


@pytest.fixture
def pool(cast):
    """120 contacts with repeated names and tied last_seen_at values (a factory: the paging
    under test does not care how they were written)."""
    base = timezone.now() - datetime.timedelta(days=10)
    rows = [
        Contact(
            workspace=cast.workspace,
            name=NAMES[i % len(NAMES)],
            source=SOURCES[i % len(SOURCES)],
            owner=cast.agent.staff if i % 4 == 0 else None,
            last_seen_at=base + datetime.timedelta(minutes=i % 7),
        )
        for i in range(120)
    ]
    Contact.objects.bulk_create(rows)
    return list(Contact.objects.filter(workspace=cast.workspace).order_by("pk"))


def walk(client, limit=50, **params):
    ids, pages, cursor = [], 0, ""
    while True:
        body = client.get("/api/v1/contacts", limit=limit, cursor=cursor, **params).json()
        assert set(body) == {"items", "next"}
        ids += [c["id"] for c in body["items"]]
        pages += 1
        cursor = body["next"]
        if not cursor:
            return ids, pages
        assert pages < 50, "paging does not end"


@pytest.mark.parametrize("sort", list(SORTS))
def test_paging_walks_every_contact_once_in_order(sort, pool, api, cast):
    client = api("analyst")
    ids, pages = walk(client, sort=sort)
    assert pages == 3
    assert len(ids) == 120 == len(set(ids))
    expected = list(
        Contact.objects.filter(workspace=cast.workspace)
        .order_by(*SORTS[sort])
        .values_list("pk", flat=True)
    )
    assert ids == expected
    if sort == "-created":
        assert ids == sorted((c.pk for c in pool), reverse=True)
    if sort == "-last_seen":
        seen = {c.pk: c.last_seen_at for c in pool}
        assert ids == sorted(seen, key=lambda pk: (seen[pk], pk), reverse=True)


def test_paging_with_a_filter_and_a_small_page(pool, api):
    ids, pages = walk(api("admin"), limit=7, sort="name", source="douyin")
    assert len(ids) == 40 == len(set(ids))
    assert pages == 6
    assert {c.pk for c in pool if c.source == "douyin"} == set(ids)


def test_limit_is_clamped(pool, api):
    client = api("admin")
    assert len(client.get("/api/v1/contacts", limit=500).json()["items"]) == 120
    body = client.get("/api/v1/contacts", limit=0).json()
    assert len(body["items"]) == 1 and body["next"]
    assert len(client.get("/api/v1/contacts").json()["items"]) == 50


def _cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor, sort",
    [
        ("!!!not-base64!!!", "-created"),
        ("bm90IGpzb24", "-created"),  # "not json"
        (_cursor({"id": 3}), "-created"),
        (_cursor(["x"]), "-created"),
        (_cursor([True]), "created"),
        (_cursor([1, 2]), "-created"),
        (_cursor(["王芳", "x"]), "name"),
        (_cursor([5, 6]), "name"),
        (_cursor(["yesterday", 3]), "-last_seen"),
        (_cursor([None, 3]), "-last_seen"),
    ],
)
def test_bad_cursor_is_422_naming_cursor(cursor, sort, pool, api):
    r = api("admin").get("/api/v1/contacts", cursor=cursor, sort=sort)
    assert r.status_code == 422, r.content
    body = error_of(r)
    assert body["code"] == "invalid"
    assert body["details"]["field"] == "cursor"


def test_a_cursor_of_one_sort_is_refused_by_another(pool, api):
    client = api("admin")
    cursor = client.get("/api/v1/contacts", sort="-last_seen", limit=5).json()["next"]
    r = client.get("/api/v1/contacts", sort="created", cursor=cursor)
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "cursor"


def test_bad_sort_and_bad_params_are_422(api):
    client = api("admin")
    r = client.get("/api/v1/contacts", sort="random")
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "sort"
    r = client.get("/api/v1/contacts", limit="ten")
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "limit"
    r = client.get("/api/v1/contacts", tag_id="x")
    assert error_of(r)["details"]["field"] == "tag_id"


def test_filters_by_tag_source_and_owner(cast, api, make_contact, system_actor):
    ws = cast.workspace
    group = actions.tag_group_create(workspace=ws, actor=system_actor, name="g")
    vip = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="VIP")
    a = make_contact(name="甲", source="douyin", owner=cast.agent)
    b = make_contact(name="乙", source="douyin")
    c = make_contact(name="丙", source="store_qr", owner=cast.operator)
    actions.contacts_tag(workspace=ws, actor=system_actor, contact_ids=[a.pk, c.pk], add=[vip.pk])
    client = api("admin")

    def ids(**params):
        return sorted(x["id"] for x in client.get("/api/v1/contacts", **params).json()["items"])

    assert ids(tag_id=vip.pk) == sorted([a.pk, c.pk])
    assert ids(source="douyin") == sorted([a.pk, b.pk])
    assert ids(owner_id=cast.agent.staff.pk) == [a.pk]
    assert ids(owner_id=0) == [b.pk]
    assert ids(tag_id=vip.pk, source="douyin") == [a.pk]
    assert ids(q="乙") == [b.pk]
    assert ids(q="nobody") == []


def test_list_item_shape(api, make_contact):
    contact = make_contact(name="王芳", phone="13812345678", user_id="u1")
    item = api("analyst").get("/api/v1/contacts").json()["items"][0]
    assert item["id"] == contact.pk
    assert item["name"] == "王芳"
    assert item["source"] == "store_qr"
    assert [(i["kind"], i["value"]) for i in item["identities"]] == [
        ("phone", "138****5678"),
        ("user_id", "u1"),
    ]
    assert item["tags"] == [] and item["consent"] == {} and item["attributes"] == {}


# --- one contact --------------------------------------------------------------------------


@pytest.fixture
def bday_attr(cast, system_actor):
    actions.attribute_define(
        workspace=cast.workspace,
        actor=system_actor,
        key="tier",
        label="等级",
        type="choice",
        choices=["金", "银"],
    )


def test_create_get_patch_delete(api, cast, bday_attr):
    client = api("admin")
    r = client.post(
        "/api/v1/contacts",
        {
            "name": "赵六",
            "gender": "female",
            "birthday": "1995-06-01",
            "province": "浙江",
            "city": "杭州",
            "source": "mini_program",
            "attributes": {"tier": "金"},
            "owner_id": cast.agent.staff.pk,
        },
    )
    assert r.status_code == 201, r.content
    cid = r.json()["id"]
    got = client.get(f"/api/v1/contacts/{cid}").json()
    assert got == r.json()
    assert (got["gender"], got["birthday"], got["city"]) == ("female", "1995-06-01", "杭州")
    assert got["attributes"] == {"tier": "金"}
    assert got["owner_id"] == cast.agent.staff.pk

    r = client.patch(f"/api/v1/contacts/{cid}", {"city": "宁波", "attributes": {"tier": "银"}})
    assert r.status_code == 200
    assert (r.json()["city"], r.json()["province"], r.json()["attributes"]) == (
        "宁波",
        "浙江",
        {"tier": "银"},
    )
    r = client.patch(f"/api/v1/contacts/{cid}", {"birthday": None, "owner_id": None})
    assert r.status_code == 200
    assert r.json()["birthday"] is None and r.json()["owner_id"] is None
    contact = Contact.objects.get(pk=cid)
    assert contact.birthday is None and contact.owner_id is None
    assert contact.name == "赵六"  # untouched fields stay

    r = client.delete(f"/api/v1/contacts/{cid}")
    assert r.status_code == 204
    assert not Contact.objects.filter(pk=cid).exists()
    assert client.get(f"/api/v1/contacts/{cid}").status_code == 404


def test_patch_errors_name_the_field_and_change_nothing(api, make_contact, bday_attr):
    contact = make_contact()
    client = api("admin")
    before = db_snapshot()
    cases = [
        ({"attributes": {"x": 1}}, "attributes.x"),
        ({"attributes": {"tier": "铜"}}, "attributes.tier"),
        ({"birthday": "2020-02-30"}, "birthday"),
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"gender": "robot"}, "gender"),
        ({"name": "长" * 121}, "name"),
        ({"owner_id": "abc"}, "owner_id"),
        ({"city": "上海", "attributes": {"x": 1}}, "attributes.x"),
    ]
    for body, field in cases:
        r = client.patch(f"/api/v1/contacts/{contact.pk}", body)
        assert r.status_code == 422, (body, r.content)
        err = error_of(r)
        assert err["code"] == "invalid"
        assert err["details"]["field"] == field, body
        assert field in err["message"]
    assert snapshot_diff(before, db_snapshot()) == []


def test_create_errors_name_the_field_and_create_nothing(api, cast):
    client = api("admin")
    before = db_snapshot()
    cases = [
        ({"identities": [{"kind": "phone"}]}, "identities.0.value"),
        ({"tag_ids": [424242]}, "tag_ids"),
        ({"attributes": {"nope": 1}}, "attributes.nope"),
        ({"owner_id": cast.outsider.staff.pk}, "owner_id"),
        ({"birthday": "soon"}, "birthday"),
    ]
    for body, field in cases:
        r = client.post("/api/v1/contacts", body)
        assert r.status_code == 422, (body, r.content)
        assert error_of(r)["details"]["field"] == field
    r = client.client.post("/api/v1/contacts", "{not json", content_type="application/json")
    assert r.status_code in (400, 422)
    assert set(r.json()) == {"code", "message", "details"}
    assert snapshot_diff(before, db_snapshot()) == []


def test_identities_endpoints(api, make_contact):
    contact = make_contact(phone="13812345678")
    other = make_contact(name="别人", user_id="theirs")
    client = api("operator")
    r = client.post(
        f"/api/v1/contacts/{contact.pk}/identities", {"kind": "email", "value": "X@Y.com"}
    )
    assert r.status_code == 201
    assert r.json() == {
        "id": r.json()["id"],
        "kind": "email",
        "app_id": "",
        "value": "x***@y.com",
        "masked": True,
    }
    listed = client.get(f"/api/v1/contacts/{contact.pk}/identities").json()
    assert [i["kind"] for i in listed] == ["phone", "email"]
    assert (
        client.delete(f"/api/v1/contacts/{contact.pk}/identities/{r.json()['id']}").status_code
        == 204
    )
    assert [i["kind"] for i in client.get(f"/api/v1/contacts/{contact.pk}/identities").json()] == [
        "phone"
    ]
    # another contact's identity through this contact's url, or an unknown id: 404
    theirs = other.identities.get()
    before = db_snapshot()
    for ident in (theirs.pk, 999999):
        r = client.delete(f"/api/v1/contacts/{contact.pk}/identities/{ident}")
        assert r.status_code == 404
        assert error_of(r)["code"] == "not_found"
    assert snapshot_diff(before, db_snapshot()) == []


def test_contact_tags_endpoint(api, cast, make_contact, system_actor):
    group = actions.tag_group_create(workspace=cast.workspace, actor=system_actor, name="兴趣")
    coffee = actions.tag_create(
        workspace=cast.workspace, actor=system_actor, group=group, name="咖啡"
    )
    contact = make_contact()
    client = api("operator")
    r = client.post(f"/api/v1/contacts/{contact.pk}/tags", {"add": [coffee.pk]})
    assert r.json() == {"added": 1, "removed": 0}
    assert client.post(f"/api/v1/contacts/{contact.pk}/tags", {"add": [coffee.pk]}).json() == {
        "added": 0,
        "removed": 0,
    }
    tags = client.get(f"/api/v1/contacts/{contact.pk}").json()["tags"]
    assert tags == [{"id": coffee.pk, "name": "咖啡", "group_id": group.pk}]
    r = client.post(f"/api/v1/contacts/{contact.pk}/tags", {"remove": [coffee.pk]})
    assert r.json() == {"added": 0, "removed": 1}
    r = client.post(f"/api/v1/contacts/{contact.pk}/tags", {"add": [777777]})
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "add"


def test_consent_endpoint(api, make_contact):
    contact = make_contact()
    client = api("operator")
    r = client.put(
        f"/api/v1/contacts/{contact.pk}/consent",
        {"channel": "wecom", "status": "granted", "source": "企微好友"},
    )
    assert r.status_code == 200
    assert r.json()["consent"]["wecom"]["status"] == "granted"
    assert r.json()["consent"]["wecom"]["source"] == "企微好友"
    r = client.put(
        f"/api/v1/contacts/{contact.pk}/consent", {"channel": "fax", "status": "granted"}
    )
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "channel"


def test_bulk_tag_affects_only_visible_contacts(cast, api, make_contact, system_actor):
    group = actions.tag_group_create(workspace=cast.workspace, actor=system_actor, name="g")
    tag = actions.tag_create(workspace=cast.workspace, actor=system_actor, group=group, name="t")
    a, b = make_contact(name="甲"), make_contact(name="乙")
    foreign = make_contact(name="外", workspace=cast.outsider_workspace)
    client = api("operator")
    r = client.post(
        "/api/v1/contacts/bulk-tag",
        {"contact_ids": [a.pk, b.pk, foreign.pk, 999999], "add": [tag.pk]},
    )
    assert r.status_code == 200
    assert r.json() == {"added": 2, "removed": 0}
    assert set(ContactTag.objects.values_list("contact_id", flat=True)) == {a.pk, b.pk}
    assert not TimelineEntry.objects.filter(contact=foreign, kind="tag_added").exists()
    r = client.post("/api/v1/contacts/bulk-tag", {"contact_ids": [a.pk], "remove": [tag.pk]})
    assert r.json() == {"added": 0, "removed": 1}
    r = client.post("/api/v1/contacts/bulk-tag", {"add": [tag.pk]})
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "contact_ids"


def test_merge_endpoint(api, make_contact):
    a = make_contact(name="王芳", phone="13812345678")
    b = make_contact(name="", email="fang@example.com")
    client = api("operator")
    r = client.post(f"/api/v1/contacts/{a.pk}/merge", {"other_id": b.pk})
    assert r.status_code == 200
    assert sorted(i["kind"] for i in r.json()["identities"]) == ["email", "phone"]
    assert not Contact.objects.filter(pk=b.pk).exists()
    r = client.post(f"/api/v1/contacts/{a.pk}/merge", {"other_id": a.pk})
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "other_id"
    r = client.post(f"/api/v1/contacts/{a.pk}/merge", {"other_id": b.pk})
    assert r.status_code == 404


def test_timeline_endpoint_newest_first(api, make_contact):
    contact = make_contact()
    client = api("operator")
    client.patch(f"/api/v1/contacts/{contact.pk}", {"city": "北京"})
    client.put(f"/api/v1/contacts/{contact.pk}/consent", {"channel": "sms", "status": "granted"})
    items = client.get(f"/api/v1/contacts/{contact.pk}/timeline").json()["items"]
    assert [i["kind"] for i in items] == ["consent", "updated", "created"]
    assert items[1]["data"] == {"fields": ["city"]}
    assert items[0]["actor"].startswith("api-key:sk_")
    assert items[2]["actor"] == "test"


# --- tags, tag groups, attributes ----------------------------------------------------------------


def test_tag_group_and_tag_endpoints(api):
    client = api("operator")
    r = client.post("/api/v1/tags/groups", {"name": "生命周期", "color": "green"})
    assert r.status_code == 201
    group = r.json()
    assert (group["name"], group["color"], group["tags"]) == ("生命周期", "green", [])
    dup = client.post("/api/v1/tags/groups", {"name": "生命周期"})
    assert dup.status_code == 409
    assert error_of(dup)["details"] == {"field": "name"}
    r = client.post("/api/v1/tags", {"name": "新客", "group_id": group["id"]})
    assert r.status_code == 201
    tag = r.json()
    assert tag == {"id": tag["id"], "name": "新客", "group_id": group["id"]}
    assert client.post("/api/v1/tags", {"name": "新客", "group_id": group["id"]}).status_code == 409
    r = client.post("/api/v1/tags", {"name": "x", "group_id": 999999})
    assert r.status_code == 404
    r = client.post("/api/v1/tags", {"name": " ", "group_id": group["id"]})
    assert r.status_code == 422 and error_of(r)["details"]["field"] == "name"
    r = client.post("/api/v1/tags", {"group_id": group["id"]})
    assert r.status_code == 422 and error_of(r)["details"]["field"] == "name"

    groups = client.get("/api/v1/tags/groups").json()
    assert groups == [
        {
            "id": group["id"],
            "name": "生命周期",
            "color": "green",
            "tags": [{"id": tag["id"], "name": "新客", "group_id": group["id"]}],
        }
    ]
    assert client.get("/api/v1/tags").json() == [tag]
    r = client.patch(f"/api/v1/tags/{tag['id']}", {"name": "新朋友"})
    assert r.json()["name"] == "新朋友"
    r = client.patch(f"/api/v1/tags/groups/{group['id']}", {"name": "阶段"})
    assert r.json()["name"] == "阶段"
    assert client.delete(f"/api/v1/tags/{tag['id']}").status_code == 204
    assert client.get("/api/v1/tags").json() == []
    assert client.delete(f"/api/v1/tags/groups/{group['id']}").status_code == 204
    assert client.get("/api/v1/tags/groups").json() == []
    assert client.delete(f"/api/v1/tags/{tag['id']}").status_code == 404
    assert client.delete(f"/api/v1/tags/groups/{group['id']}").status_code == 404


def test_attribute_endpoints(api):
    client = api("admin")
    r = client.post(
        "/api/v1/attributes",
        {"key": "size", "label": "尺码", "type": "choice", "choices": ["S", "M"]},
    )
    assert r.status_code == 201
    assert r.json() == {"key": "size", "label": "尺码", "type": "choice", "choices": ["S", "M"]}
    assert client.post("/api/v1/attributes", {"key": "size", "type": "text"}).status_code == 409
    r = client.post("/api/v1/attributes", {"key": "x", "type": "json"})
    assert r.status_code == 422 and error_of(r)["details"]["field"] == "type"
    r = client.post("/api/v1/attributes", {"key": "Bad Key", "type": "text"})
    assert r.status_code == 422 and error_of(r)["details"]["field"] == "key"
    r = client.post("/api/v1/attributes", {"key": "c", "type": "choice"})
    assert r.status_code == 422 and error_of(r)["details"]["field"] == "choices"
    assert [a["key"] for a in client.get("/api/v1/attributes").json()] == ["size"]
    assert client.delete("/api/v1/attributes/size").status_code == 204
    assert client.delete("/api/v1/attributes/size").status_code == 404
    assert client.get("/api/v1/attributes").json() == []


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer sk_wrong"},
        {"HTTP_AUTHORIZATION": "Bearer "},
        {"HTTP_AUTHORIZATION": "Token sk_wrong"},
        {"HTTP_AUTHORIZATION": "sk_wrong"},
    ],
)
def test_no_valid_key_is_401_with_the_error_body(headers, cast, make_contact):
    from django.test import Client

    contact = make_contact()
    client = Client(**headers)
    before = db_snapshot()
    for method, path in [
        ("get", "/api/v1/contacts"),
        ("get", f"/api/v1/contacts/{contact.pk}"),
        ("post", "/api/v1/contacts"),
        ("delete", f"/api/v1/contacts/{contact.pk}"),
        ("get", "/api/v1/tags"),
        ("post", "/api/v1/attributes"),
    ]:
        r = getattr(client, method)(path, content_type="application/json")
        assert r.status_code == 401, (method, path)
        body = error_of(r)
        assert body["code"] == "unauthorized"
        assert body["details"] == {}
    assert snapshot_diff(before, db_snapshot()) == []


def test_revoked_key_is_401(cast, system_actor):
    key, raw = account_actions.apikey_create(
        workspace=cast.workspace, actor=system_actor, name="k", role="admin"
    )
    client = ApiClient(raw)
    assert client.get("/api/v1/contacts").status_code == 200
    account_actions.apikey_revoke(workspace=cast.workspace, actor=system_actor, key=key)
    r = client.get("/api/v1/contacts")
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthorized"


# --- another workspace's ids ---------------------------------------------------------------


def test_other_workspace_ids_are_404_on_every_route(cast, api, make_contact, system_actor):
    ows = cast.outsider_workspace
    theirs = make_contact(name="外人", phone="13812345678", workspace=ows)
    their_ident = theirs.identities.get()
    their_group = actions.tag_group_create(workspace=ows, actor=system_actor, name="g")
    their_tag = actions.tag_create(workspace=ows, actor=system_actor, group=their_group, name="t")
    actions.attribute_define(
        workspace=ows, actor=system_actor, key="secret", label="s", type="text"
    )
    mine = make_contact(name="自己人")
    client = api("admin")
    cid = theirs.pk
    routes = [
        ("get", f"/api/v1/contacts/{cid}", None),
        ("get", f"/api/v1/contacts/{cid}?reveal=true", None),
        ("patch", f"/api/v1/contacts/{cid}", {"name": "x"}),
        ("delete", f"/api/v1/contacts/{cid}", None),
        ("get", f"/api/v1/contacts/{cid}/identities", None),
        ("post", f"/api/v1/contacts/{cid}/identities", {"kind": "user_id", "value": "v"}),
        ("delete", f"/api/v1/contacts/{cid}/identities/{their_ident.pk}", None),
        ("post", f"/api/v1/contacts/{cid}/tags", {"add": []}),
        ("put", f"/api/v1/contacts/{cid}/consent", {"channel": "sms", "status": "granted"}),
        ("post", f"/api/v1/contacts/{cid}/merge", {"other_id": mine.pk}),
        ("post", f"/api/v1/contacts/{mine.pk}/merge", {"other_id": cid}),
        ("get", f"/api/v1/contacts/{cid}/timeline", None),
        ("patch", f"/api/v1/tags/groups/{their_group.pk}", {"name": "x"}),
        ("delete", f"/api/v1/tags/groups/{their_group.pk}", None),
        ("post", "/api/v1/tags", {"name": "x", "group_id": their_group.pk}),
        ("patch", f"/api/v1/tags/{their_tag.pk}", {"name": "x"}),
        ("delete", f"/api/v1/tags/{their_tag.pk}", None),
        ("delete", "/api/v1/attributes/secret", None),
    ]
    before = db_snapshot()
    missing_body = client.get("/api/v1/contacts/987654").json()
    for method, path, body in routes:
        if method in ("get", "delete"):
            r = getattr(client.client, method)(path)
        else:
            r = getattr(client, method)(path, body)
        assert r.status_code == 404, (method, path, r.content)
        assert error_of(r)["code"] == "not_found"
        if "/contacts/" in path:
            assert r.json() == missing_body  # indistinguishable from a missing contact
    assert snapshot_diff(before, db_snapshot()) == []
    # nor do lists and searches show them
    assert [c["id"] for c in client.get("/api/v1/contacts").json()["items"]] == [mine.pk]
    assert client.get("/api/v1/contacts", q="13812345678").json()["items"] == []
    assert client.get("/api/v1/tags").json() == []
    assert client.get("/api/v1/tags/groups").json() == []
    assert client.get("/api/v1/attributes").json() == []
    assert not AuditLog.objects.filter(workspace=cast.workspace, action="pii.reveal").exists()
    assert Tag.objects.filter(pk=their_tag.pk).exists()
    assert TagGroup.objects.filter(pk=their_group.pk).exists()
    assert AttributeDefinition.objects.filter(workspace=ows).count() == 1
    assert Identity.objects.filter(pk=their_ident.pk).exists()


def test_non_numeric_ids_are_422_naming_the_parameter(api):
    r = api("admin").get("/api/v1/contacts/abc")
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "contact_id"


# --- docs ----------------------------------------------------------------------------------


def test_openapi_schema_and_docs_are_served(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["info"]["title"] == "siyu API"
    paths = schema["paths"]
    for path in (
        "/api/v1/contacts",
        "/api/v1/contacts/{contact_id}",
        "/api/v1/contacts/{contact_id}/identities",
        "/api/v1/contacts/{contact_id}/merge",
        "/api/v1/contacts/bulk-tag",
        "/api/v1/tags/groups",
        "/api/v1/attributes",
    ):
        assert path in paths, path
    assert "bearer" in json.dumps(schema["components"]["securitySchemes"]).lower()
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"openapi.json" in docs.content
