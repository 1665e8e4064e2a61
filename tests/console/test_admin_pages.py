"""Workspace administration pages: tags, staff and roles, API keys, audit log, settings."""

import datetime
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from siyu.accounts import actions as account_actions
from siyu.accounts.models import ApiKey, Membership, Staff
from siyu.contacts import actions as contact_actions
from siyu.contacts.models import AttributeDefinition, ContactTag, Tag, TagGroup
from siyu.core.audit import Actor
from siyu.core.models import AuditLog, Workspace

HTMX = {"HTTP_HX_REQUEST": "true"}
NEW_PASSWORD = "Long-pass-123"  # noqa: S105
HIJACK_PASSWORD = "Hijack-pass-999"  # noqa: S105
PAGES = ["tags", "staff", "api-keys", "audit", "settings"]


def snapshot() -> dict[str, Any]:
    """Every row an admin page could change, to prove a refused request changed nothing."""
    return {
        "workspaces": list(Workspace.objects.order_by("pk").values()),
        "staff": list(Staff.objects.order_by("pk").values()),
        "memberships": list(Membership.objects.order_by("pk").values()),
        "keys": list(
            ApiKey.objects.order_by("pk").values("id", "name", "role", "key_hash", "revoked_at")
        ),
        "groups": list(TagGroup.objects.order_by("pk").values()),
        "tags": list(Tag.objects.order_by("pk").values()),
        "contact_tags": list(ContactTag.objects.order_by("pk").values()),
        "attributes": list(AttributeDefinition.objects.order_by("pk").values()),
        "audit": list(AuditLog.objects.order_by("pk").values()),
    }


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def tagged(cast, make_contact):
    """Two groups; 兴趣/咖啡 on two contacts (one owned by the agent), 兴趣/茶 on none."""
    ws, actor = cast.workspace, cast.owner.actor
    interests = contact_actions.tag_group_create(workspace=ws, actor=actor, name="兴趣")
    stage = contact_actions.tag_group_create(workspace=ws, actor=actor, name="购买阶段")
    coffee = contact_actions.tag_create(workspace=ws, actor=actor, group=interests, name="咖啡")
    tea = contact_actions.tag_create(workspace=ws, actor=actor, group=interests, name="茶")
    first = contact_actions.tag_create(workspace=ws, actor=actor, group=stage, name="首购")
    a = make_contact("甲")
    b = make_contact("乙", owner=cast.agent)
    contact_actions.contacts_tag(
        workspace=ws, actor=actor, contact_ids=[a.pk, b.pk], add=[coffee.pk]
    )
    return {"interests": interests, "stage": stage, "coffee": coffee, "tea": tea, "first": first}


# --- every page, every role ------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_for_the_owner_in_chinese(cast, console, page):
    response = console("owner").get(f"/w/brand/{page}/")
    assert response.status_code == 200
    body = text(response)
    assert '<html lang="zh-hans">' in body
    heading = {"tags": "标签", "staff": "员工与角色", "api-keys": "API 密钥", "audit": "审计日志"}
    assert heading.get(page, "设置") in body


@pytest.mark.parametrize("page", PAGES)
def test_outsiders_get_404_and_anonymous_the_login_page(cast, console, page):
    assert console("outsider").get(f"/w/brand/{page}/").status_code == 404
    anonymous = Client().get(f"/w/brand/{page}/")
    assert anonymous.status_code == 302 and "/login/" in anonymous.headers["Location"]


ALLOWED = {
    # page: roles that may open it
    "tags": {"owner", "admin", "operator", "analyst", "agent"},
    "staff": {"owner", "admin"},
    "api-keys": {"owner", "admin"},
    "audit": {"owner", "admin"},
    "settings": {"owner", "admin"},
}


@pytest.mark.parametrize("role", ["admin", "operator", "analyst", "agent"])
@pytest.mark.parametrize("page", PAGES)
def test_pages_follow_the_permission_matrix(cast, console, role, page):
    status = console(role).get(f"/w/brand/{page}/").status_code
    assert status == (200 if role in ALLOWED[page] else 403)


def _writes(cast, tagged) -> list[tuple[str, str, dict]]:
    """(permission needed, path, form) for every write on the admin pages."""
    member = Membership.objects.get(workspace=cast.workspace, staff=cast.agent.staff)
    key, _ = account_actions.apikey_create(
        workspace=cast.workspace, actor=cast.owner.actor, name="erp", role="operator"
    )
    attr = contact_actions.attribute_define(
        workspace=cast.workspace, actor=cast.owner.actor, key="skin", label="肤质", type="text"
    )
    g, t = tagged["interests"].pk, tagged["coffee"].pk
    return [
        ("tags.manage", "/w/brand/tags/groups/new/", {"name": "新组"}),
        ("tags.manage", f"/w/brand/tags/groups/{g}/rename/", {"name": "改名"}),
        ("tags.manage", f"/w/brand/tags/groups/{g}/delete/", {}),
        ("tags.manage", f"/w/brand/tags/groups/{g}/tags/new/", {"name": "新标签"}),
        ("tags.manage", f"/w/brand/tags/{t}/rename/", {"name": "改名"}),
        ("tags.manage", f"/w/brand/tags/{t}/delete/", {}),
        (
            "staff.manage",
            "/w/brand/staff/add/",
            {"email": "new@brand.test", "role": "agent", "password": "Long-pass-123"},
        ),
        ("staff.manage", f"/w/brand/staff/{member.pk}/role/", {"role": "operator"}),
        ("staff.manage", f"/w/brand/staff/{member.pk}/remove/", {}),
        ("apikeys.manage", "/w/brand/api-keys/new/", {"name": "k", "role": "analyst"}),
        ("apikeys.manage", f"/w/brand/api-keys/{key.pk}/revoke/", {}),
        (
            "settings.manage",
            "/w/brand/settings/workspace/",
            {"name": "改名", "timezone": "Asia/Tokyo"},
        ),
        (
            "attributes.manage",
            "/w/brand/settings/attributes/new/",
            {"key": "vip_no", "label": "会员号", "type": "text"},
        ),
        ("attributes.manage", f"/w/brand/settings/attributes/{attr.pk}/delete/", {}),
    ]


@pytest.mark.parametrize("role", ["operator", "analyst", "agent"])
def test_writes_without_the_permission_are_refused_and_change_nothing(cast, console, tagged, role):
    from siyu.accounts.permissions import has_perm

    writes = _writes(cast, tagged)
    client = console(role)
    for perm, path, form in writes:
        if has_perm(role, perm):
            continue
        before = snapshot()
        response = client.post(path, form)
        assert response.status_code == 403, (role, path)
        assert snapshot() == before, (role, path)
        # the confirm pages of deletes are refused too
        if path.endswith(("/delete/", "/remove/", "/revoke/")):
            assert client.get(path).status_code == 403


def test_outsiders_writes_get_404_and_change_nothing(cast, console, tagged):
    writes = _writes(cast, tagged)
    client = console("outsider")
    before = snapshot()
    for _, path, form in writes:
        assert client.post(path, form).status_code == 404, path
    assert snapshot() == before


def test_objects_of_another_workspace_are_not_found(cast, console):
    other, boss = cast.outsider_workspace, cast.outsider.actor
    group = contact_actions.tag_group_create(workspace=other, actor=boss, name="别家")
    tag = contact_actions.tag_create(workspace=other, actor=boss, group=group, name="别家标签")
    key, _ = account_actions.apikey_create(workspace=other, actor=boss, name="x")
    attr = contact_actions.attribute_define(
        workspace=other, actor=boss, key="k", label="k", type="text"
    )
    member = Membership.objects.get(workspace=other)
    client = console("owner")
    before = snapshot()
    for path in [
        f"/w/brand/tags/groups/{group.pk}/rename/",
        f"/w/brand/tags/groups/{group.pk}/delete/",
        f"/w/brand/tags/groups/{group.pk}/tags/new/",
        f"/w/brand/tags/{tag.pk}/rename/",
        f"/w/brand/tags/{tag.pk}/delete/",
        f"/w/brand/staff/{member.pk}/role/",
        f"/w/brand/staff/{member.pk}/remove/",
        f"/w/brand/api-keys/{key.pk}/revoke/",
        f"/w/brand/settings/attributes/{attr.pk}/delete/",
    ]:
        assert client.post(path, {"name": "偷改", "role": "agent"}).status_code == 404, path
        assert client.get(path).status_code in (404, 405), path
    assert snapshot() == before


# --- tags ----------------------------------------------------------------------------------


def test_tags_page_lists_groups_tags_and_counts_with_links(cast, console, tagged):
    response = console("owner").get("/w/brand/tags/")
    body = text(response)
    groups = {g.name: {t.name: t.n for t in g.tag_list} for g in response.context["groups"]}
    assert groups == {"兴趣": {"咖啡": 2, "茶": 0}, "购买阶段": {"首购": 0}}
    assert f'href="/w/brand/contacts/?tag_id={tagged["coffee"].pk}"' in body
    assert "新建标签组" in body  # managers see the forms


def test_agents_see_counts_over_their_own_contacts_and_no_forms(cast, console, tagged):
    response = console("agent").get("/w/brand/tags/")
    counts = {t.name: t.n for g in response.context["groups"] for t in g.tag_list}
    assert counts == {"咖啡": 1, "茶": 0, "首购": 0}
    assert "新建标签组" not in text(response)


def test_tag_counts_take_a_fixed_number_of_queries(cast, console, tagged):
    client = console("owner")
    with CaptureQueriesContext(connection) as small:
        client.get("/w/brand/tags/")
    for i in range(6):
        group = contact_actions.tag_group_create(
            workspace=cast.workspace, actor=cast.owner.actor, name=f"组{i}"
        )
        for j in range(5):
            contact_actions.tag_create(
                workspace=cast.workspace, actor=cast.owner.actor, group=group, name=f"标签{j}"
            )
    with CaptureQueriesContext(connection) as large:
        client.get("/w/brand/tags/")
    assert len(large.captured_queries) == len(small.captured_queries)


def test_empty_tags_page_explains_what_to_do(cast, console):
    body = text(console("owner").get("/w/brand/tags/"))
    assert "还没有标签组" in body


def test_tag_group_and_tag_crud(cast, console):
    client = console("operator")  # operators manage tags
    response = client.post("/w/brand/tags/groups/new/", {"name": " 门店 "})
    assert response.status_code == 302
    group = TagGroup.objects.get(workspace=cast.workspace)
    assert group.name == "门店"
    assert response.headers["Location"].endswith(f"#group-{group.pk}")

    assert (
        client.post(f"/w/brand/tags/groups/{group.pk}/rename/", {"name": "门店归属"}).status_code
        == 302
    )
    assert (
        client.post(f"/w/brand/tags/groups/{group.pk}/tags/new/", {"name": "国贸店"}).status_code
        == 302
    )
    tag = Tag.objects.get(group=group)
    assert client.post(f"/w/brand/tags/{tag.pk}/rename/", {"name": "国贸旗舰店"}).status_code == 302
    group.refresh_from_db()
    tag.refresh_from_db()
    assert (group.name, tag.name) == ("门店归属", "国贸旗舰店")
    page = text(client.get("/w/brand/tags/", follow=True))
    assert "国贸旗舰店" in page

    assert client.post(f"/w/brand/tags/{tag.pk}/delete/").status_code == 302
    assert not Tag.objects.filter(pk=tag.pk).exists()
    assert client.post(f"/w/brand/tags/groups/{group.pk}/delete/").status_code == 302
    assert not TagGroup.objects.filter(pk=group.pk).exists()
    actions = list(
        AuditLog.objects.filter(workspace=cast.workspace, action__startswith="tag")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == [
        "taggroup.create",
        "taggroup.update",
        "tag.create",
        "tag.update",
        "tag.delete",
        "taggroup.delete",
    ]


def test_delete_confirmation_says_how_many_contacts_lose_the_tag(cast, console, tagged):
    client = console("owner")
    tag_page = text(client.get(f"/w/brand/tags/{tagged['coffee'].pk}/delete/"))
    assert "2 位客户将失去这个标签" in tag_page
    group_page = text(client.get(f"/w/brand/tags/groups/{tagged['interests'].pk}/delete/"))
    assert "咖啡" in group_page and "茶" in group_page
    assert "2 位客户将失去" in group_page
    assert Tag.objects.filter(pk=tagged["coffee"].pk).exists()  # GET deletes nothing


def test_htmx_edits_swap_the_group_card(cast, console, tagged):
    client = console("owner")
    group = tagged["interests"]
    response = client.post(f"/w/brand/tags/groups/{group.pk}/tags/new/", {"name": "甜品"}, **HTMX)
    assert response.status_code == 200
    body = text(response)
    assert body.lstrip().startswith(f'<section class="card tag-group-card" id="group-{group.pk}"')
    assert "甜品" in body and "<html" not in body
    # an error comes back inside the card, with a 200 so that htmx swaps it in
    dup = client.post(f"/w/brand/tags/groups/{group.pk}/tags/new/", {"name": "甜品"}, **HTMX)
    assert dup.status_code == 200
    assert "已存在" in text(dup)
    assert Tag.objects.filter(group=group, name="甜品").count() == 1


@pytest.mark.parametrize("name", ["", "   ", "长" * 61])
def test_bad_tag_names_show_an_error_naming_the_field_and_change_nothing(
    cast, console, tagged, name
):
    client = console("owner")
    group, tag = tagged["interests"], tagged["coffee"]
    before = snapshot()
    for path in [
        "/w/brand/tags/groups/new/",
        f"/w/brand/tags/groups/{group.pk}/rename/",
        f"/w/brand/tags/groups/{group.pk}/tags/new/",
        f"/w/brand/tags/{tag.pk}/rename/",
    ]:
        response = client.post(path, {"name": name})
        assert response.status_code == 422, path
        assert "名称：" in text(response), path
    assert snapshot() == before


def test_duplicate_group_name_is_refused(cast, console, tagged):
    response = console("owner").post("/w/brand/tags/groups/new/", {"name": "兴趣"})
    assert response.status_code == 409
    assert "已存在同名的标签组" in text(response)
    assert TagGroup.objects.filter(workspace=cast.workspace, name="兴趣").count() == 1


# --- staff and roles ---------------------------------------------------------------------


def test_staff_page_lists_members_and_the_role_legend(cast, console):
    body = text(console("admin").get("/w/brand/staff/"))
    for email in ["owner@brand.test", "agent@brand.test", "analyst@brand.test"]:
        assert email in body
    assert "owner@other.test" not in body
    for role in ["所有者", "管理员", "运营", "分析师"]:
        assert role in body
    assert "创建、重命名和删除标签与标签组" in body  # tags.manage, translated
    assert "从未登录" in body or "从未" in body


def test_owner_adds_staff_who_can_then_log_in(cast, console):
    client = console("owner")
    response = client.post(
        "/w/brand/staff/add/",
        {"email": "New@Brand.test", "name": "小王", "role": "agent", "password": "Long-pass-123"},
    )
    assert response.status_code == 302
    membership = Membership.objects.get(workspace=cast.workspace, staff__email="new@brand.test")
    assert membership.role == "agent"
    assert Client().login(username="new@brand.test", password=NEW_PASSWORD)
    assert "小王" in text(client.get("/w/brand/staff/"))


def test_adding_an_existing_login_never_resets_their_password(cast, console):
    from tests.conftest import PASSWORD

    response = console("owner").post(
        "/w/brand/staff/add/",
        {"email": "owner@other.test", "role": "analyst", "password": "Hijack-pass-999"},
    )
    assert response.status_code == 302
    assert Membership.objects.filter(workspace=cast.workspace, staff=cast.outsider.staff).exists()
    assert Client().login(username="owner@other.test", password=PASSWORD)
    assert not Client().login(username="owner@other.test", password=HIJACK_PASSWORD)


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"email": "not-an-email", "role": "agent", "password": "Long-pass-123"}, "邮箱"),
        ({"email": "x@brand.test", "role": "agent", "password": ""}, "初始密码"),
        ({"email": "x@brand.test", "role": "agent", "password": "short"}, "初始密码"),
        ({"email": "x@brand.test", "role": "boss", "password": "Long-pass-123"}, "角色"),
        ({"email": "agent@brand.test", "role": "agent", "password": ""}, "邮箱"),
    ],
)
def test_bad_staff_input_names_the_field_and_changes_nothing(cast, console, form, field):
    client = console("owner")
    before = snapshot()
    response = client.post("/w/brand/staff/add/", form)
    assert response.status_code in (409, 422)
    assert f"{field}：" in text(response)
    assert snapshot() == before


def test_role_change_plain_and_with_htmx(cast, console):
    client = console("admin")
    member = Membership.objects.get(workspace=cast.workspace, staff=cast.agent.staff)
    assert client.post(f"/w/brand/staff/{member.pk}/role/", {"role": "operator"}).status_code == 302
    member.refresh_from_db()
    assert member.role == "operator"
    response = client.post(f"/w/brand/staff/{member.pk}/role/", {"role": "analyst"}, **HTMX)
    assert response.status_code == 200
    assert text(response).lstrip().startswith(f'<tr id="member-{member.pk}"')
    member.refresh_from_db()
    assert member.role == "analyst"
    assert AuditLog.objects.filter(workspace=cast.workspace, action="staff.role").count() == 2


def test_admin_cannot_grant_or_touch_owner(cast, console):
    client = console("admin")
    member = Membership.objects.get(workspace=cast.workspace, staff=cast.agent.staff)
    owner = Membership.objects.get(workspace=cast.workspace, staff=cast.owner.staff)
    before = snapshot()
    grant = client.post(f"/w/brand/staff/{member.pk}/role/", {"role": "owner"})
    assert grant.status_code == 403
    assert "只有所有者才能授予或变更所有者角色" in text(grant)
    add = client.post(
        "/w/brand/staff/add/",
        {"email": "boss@brand.test", "role": "owner", "password": "Long-pass-123"},
    )
    assert add.status_code == 403
    assert "只有所有者" in text(add)
    demote = client.post(f"/w/brand/staff/{owner.pk}/role/", {"role": "agent"}, **HTMX)
    assert "只有所有者" in text(demote)
    remove = client.post(f"/w/brand/staff/{owner.pk}/remove/")
    assert remove.status_code == 403
    assert snapshot() == before
    # and the page offers admins no owner option
    page = client.get("/w/brand/staff/")
    assert ("owner", "所有者") not in [(v, str(label)) for v, label in page.context["grantable"]]


def test_changing_my_own_role_with_htmx_reloads_the_page(cast, console):
    client = console("owner")
    admin = Membership.objects.get(workspace=cast.workspace, staff=cast.admin.staff)
    client.post(f"/w/brand/staff/{admin.pk}/role/", {"role": "owner"})
    me = Membership.objects.get(workspace=cast.workspace, staff=cast.owner.staff)
    response = client.post(f"/w/brand/staff/{me.pk}/role/", {"role": "admin"}, **HTMX)
    assert response.headers["HX-Refresh"] == "true"
    me.refresh_from_db()
    assert me.role == "admin"


def test_owner_can_grant_owner(cast, console):
    member = Membership.objects.get(workspace=cast.workspace, staff=cast.admin.staff)
    console("owner").post(f"/w/brand/staff/{member.pk}/role/", {"role": "owner"})
    member.refresh_from_db()
    assert member.role == "owner"


def test_last_owner_cannot_be_removed_or_demoted(cast, console):
    client = console("owner")
    owner = Membership.objects.get(workspace=cast.workspace, staff=cast.owner.staff)
    before = snapshot()
    confirm = client.get(f"/w/brand/staff/{owner.pk}/remove/")
    assert "你正在移除自己" in text(confirm)
    removed = client.post(f"/w/brand/staff/{owner.pk}/remove/")
    assert removed.status_code == 409
    assert "工作区至少要保留一位所有者" in text(removed)
    demoted = client.post(f"/w/brand/staff/{owner.pk}/role/", {"role": "admin"})
    assert demoted.status_code == 409
    assert "工作区至少要保留一位所有者" in text(demoted)
    assert snapshot() == before


def test_remove_staff(cast, console):
    client = console("owner")
    member = Membership.objects.get(workspace=cast.workspace, staff=cast.analyst.staff)
    assert "analyst" in text(client.get(f"/w/brand/staff/{member.pk}/remove/"))
    assert client.post(f"/w/brand/staff/{member.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert Staff.objects.filter(pk=cast.analyst.staff.pk).exists()  # the login stays
    assert console("analyst").get("/w/brand/").status_code == 404


# --- API keys ------------------------------------------------------------------------------


def test_api_key_is_shown_once_then_only_its_prefix(cast, console):
    client = console("owner")
    response = client.post("/w/brand/api-keys/new/", {"name": "小程序后端", "role": "operator"})
    assert response.status_code == 200
    body = text(response)
    raw = re.search(r'<code id="new-key">(sk_[\w-]+)</code>', body).group(1)
    assert 'class="secret-once"' in body
    assert f"Bearer {raw}" in body and "/api/v1/contacts" in body
    assert "no-store" in response.headers.get("Cache-Control", "")
    key = ApiKey.objects.get(workspace=cast.workspace, name="小程序后端")
    assert key.role == "operator" and key.created_by == cast.owner.staff
    assert raw not in str(list(ApiKey.objects.values()))  # only the hash is stored

    later = text(client.get("/w/brand/api-keys/"))
    assert raw not in later and "secret-once" not in later
    assert f"{key.prefix}…" in later and "小程序后端" in later
    assert raw not in text(client.get("/w/brand/audit/"))


def test_revoked_key_fails_against_the_api(cast, console):
    client = console("admin")
    body = text(client.post("/w/brand/api-keys/new/", {"name": "ERP", "role": "analyst"}))
    raw = re.search(r'<code id="new-key">(sk_[\w-]+)</code>', body).group(1)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/contacts").status_code == 200
    key = ApiKey.objects.get(workspace=cast.workspace, name="ERP")
    assert "ERP" in text(client.get(f"/w/brand/api-keys/{key.pk}/revoke/"))
    assert api.get("/api/v1/contacts").status_code == 200  # the confirm page revokes nothing
    assert client.post(f"/w/brand/api-keys/{key.pk}/revoke/").status_code == 302
    assert api.get("/api/v1/contacts").status_code == 401
    page = text(client.get("/w/brand/api-keys/"))
    assert "已吊销" in page


@pytest.mark.parametrize(
    ("form", "field"),
    [({"name": " ", "role": "admin"}, "名称"), ({"name": "x", "role": "owner"}, "角色")],
)
def test_bad_key_input_names_the_field_and_creates_nothing(cast, console, form, field):
    client = console("owner")
    before = snapshot()
    response = client.post("/w/brand/api-keys/new/", form)
    assert response.status_code == 422
    assert f"{field}：" in text(response)
    assert "secret-once" not in text(response)
    assert snapshot() == before


def test_empty_key_list_has_an_empty_state(cast, console):
    assert "还没有 API 密钥" in text(console("owner").get("/w/brand/api-keys/"))


# --- audit log -----------------------------------------------------------------------------


def test_audit_log_shows_translated_actions_and_links_contacts(cast, console, make_contact):
    contact = make_contact("王五")
    contact_actions.contact_update(
        workspace=cast.workspace, actor=cast.owner.actor, contact=contact, profile={"name": "王六"}
    )
    body = text(console("owner").get("/w/brand/audit/"))
    assert "编辑客户" in body and "新建客户" in body
    assert f'href="/w/brand/contacts/{contact.pk}/"' in body
    assert "<details>" in body and "王五" in body and "王六" in body
    assert "别家品牌" not in body  # the other workspace's creation is not listed


def _entries(cast, n, action="tag.create", label="x@brand.test"):
    actor = Actor(user=None, label=label, role="owner", ip="10.0.0.1")
    from siyu.core.audit import audit

    return [
        audit(workspace=cast.workspace, actor=actor, action=action, object_type="tag", object_id=i)
        for i in range(n)
    ]


def test_audit_filters(cast, console):
    _entries(cast, 3, action="tag.create", label="alice@brand.test")
    _entries(cast, 2, action="apikey.revoke", label="api-key:sk_abc")
    old = _entries(cast, 1, action="staff.add", label="bob@brand.test")[0]
    AuditLog.objects.filter(pk=old.pk).update(
        created_at=datetime.datetime(2024, 1, 31, 16, 30, tzinfo=datetime.UTC)  # 2/1 00:30 +8
    )
    client = console("owner")

    def rows(**params):
        response = client.get("/w/brand/audit/", params)
        assert response.status_code == 200
        return response.context["rows"]

    assert {r.action for r in rows(action="tag.create")} == {"tag.create"}
    assert len(rows(action="tag.create")) == 3
    assert len(rows(actor="ALICE")) == 3
    assert len(rows(actor="sk_abc")) == 2
    assert [r.object_id for r in rows(object_type="tag", object_id="1")] == ["1", "1"]
    # the date range is in the workspace's time zone (Asia/Shanghai)
    assert [r.pk for r in rows(date_from="2024-02-01", date_to="2024-02-01")] == [old.pk]
    assert rows(date_from="2024-01-31", date_to="2024-01-31") == []
    assert old.pk not in [r.pk for r in rows(date_from="2024-02-02")]
    assert [r.pk for r in rows(date_to="2024-02-01")] == [old.pk]
    # the action select lists the distinct actions, translated
    page = client.get("/w/brand/audit/")
    assert ("apikey.revoke", "吊销 API 密钥") in page.context["actions"]
    bad = client.get("/w/brand/audit/", {"date_from": "yesterday"})
    assert "起始日期：" in text(bad)


def test_audit_log_is_keyset_paged(cast, console):
    _entries(cast, 60)
    client = console("owner")
    first = client.get("/w/brand/audit/", {"action": "tag.create"})
    ids = [r.pk for r in first.context["rows"]]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    older = first.context["older_url"]
    assert f"cursor={ids[-1]}" in older and "action=tag.create" in older
    second = client.get("/w/brand/audit/" + older)
    more = [r.pk for r in second.context["rows"]]
    assert len(more) == 10 and max(more) < min(ids)
    assert second.context["older_url"] == ""
    assert "最新" in text(second)
    assert client.get("/w/brand/audit/", {"cursor": "abc"}).status_code == 200


# --- settings and attributes ---------------------------------------------------------------


def test_settings_update_name_and_time_zone(cast, console):
    client = console("admin")
    response = client.post(
        "/w/brand/settings/workspace/", {"name": "星巴克中国", "timezone": "Asia/Hong_Kong"}
    )
    assert response.status_code == 302
    ws = Workspace.objects.get(pk=cast.workspace.pk)
    assert (ws.name, ws.timezone, ws.currency) == ("星巴克中国", "Asia/Hong_Kong", "CNY")
    entry = AuditLog.objects.filter(workspace=ws, action="workspace.update").get()
    assert entry.after == {"name": "星巴克中国", "timezone": "Asia/Hong_Kong"}
    # saving again without changes writes no audit row
    client.post(
        "/w/brand/settings/workspace/", {"name": "星巴克中国", "timezone": "Asia/Hong_Kong"}
    )
    assert AuditLog.objects.filter(workspace=ws, action="workspace.update").count() == 1


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"name": "", "timezone": "Asia/Shanghai"}, "工作区名称"),
        ({"name": "新名字", "timezone": "Mars/Olympus"}, "时区"),
        ({"name": "新名字", "timezone": ""}, "时区"),
        ({"name": "新名字", "timezone": "../../etc/passwd"}, "时区"),
    ],
)
def test_bad_settings_name_the_field_and_change_nothing(cast, console, form, field):
    client = console("owner")
    before = snapshot()
    response = client.post("/w/brand/settings/workspace/", form)
    assert response.status_code == 422
    assert f"{field}：" in text(response)
    assert snapshot() == before


def test_attribute_define_and_delete(cast, console, make_contact):
    client = console("owner")
    response = client.post(
        "/w/brand/settings/attributes/new/",
        {"key": "skin_type", "label": "肤质", "type": "choice", "choices": "干性\r\n油性\n\n混合"},
    )
    assert response.status_code == 302
    definition = AttributeDefinition.objects.get(workspace=cast.workspace, key="skin_type")
    assert (definition.label, definition.type, definition.choices) == (
        "肤质",
        "choice",
        ["干性", "油性", "混合"],
    )
    page = text(client.get("/w/brand/settings/"))
    assert "skin_type" in page and "油性" in page
    contact = make_contact("赵")
    contact_actions.contact_update(
        workspace=cast.workspace,
        actor=cast.owner.actor,
        contact=contact,
        attributes={"skin_type": "油性"},
    )
    confirm = text(client.get(f"/w/brand/settings/attributes/{definition.pk}/delete/"))
    assert "1 位客户" in confirm
    assert client.post(f"/w/brand/settings/attributes/{definition.pk}/delete/").status_code == 302
    assert not AttributeDefinition.objects.filter(pk=definition.pk).exists()
    assert list(
        AuditLog.objects.filter(action__startswith="attribute.")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["attribute.define", "attribute.delete"]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"key": "Skin Type", "label": "肤质", "type": "text"}, "键名"),
        ({"key": "1abc", "label": "肤质", "type": "text"}, "键名"),
        ({"key": "", "label": "肤质", "type": "text"}, "键名"),
        ({"key": "skin", "label": "肤质", "type": "color"}, "类型"),
        ({"key": "skin", "label": "肤质", "type": "choice", "choices": " \n "}, "选项"),
        ({"key": "skin", "label": "肤质", "type": "choice", "choices": "a\na"}, "选项"),
        ({"key": "skin", "label": "长" * 61, "type": "text"}, "显示名称"),
    ],
)
def test_bad_attribute_input_names_the_field_and_changes_nothing(cast, console, form, field):
    client = console("owner")
    before = snapshot()
    response = client.post("/w/brand/settings/attributes/new/", form)
    assert response.status_code == 422
    assert f"{field}：" in text(response)
    assert snapshot() == before


def test_duplicate_attribute_key_is_refused(cast, console):
    contact_actions.attribute_define(
        workspace=cast.workspace, actor=cast.owner.actor, key="skin", label="肤质", type="text"
    )
    response = console("owner").post(
        "/w/brand/settings/attributes/new/", {"key": "skin", "label": "x", "type": "text"}
    )
    assert response.status_code == 409
    assert "键名：" in text(response)
    assert AttributeDefinition.objects.filter(workspace=cast.workspace).count() == 1


def test_english_switch_translates_back(cast, console):
    client = console("owner")
    client.post("/i18n/setlang/", {"language": "en", "next": "/w/brand/staff/"})
    body = text(client.get("/w/brand/staff/"))
    assert "Staff and roles" in body and "What each role may do" in body


def test_an_agent_key_is_issued_to_an_agent_and_sees_only_their_contacts(
    cast, console, make_contact
):
    from siyu.accounts.models import ApiKey
    from tests.conftest import ApiClient

    mine = make_contact("客服的客户", owner=cast.agent)
    make_contact("别人的客户")
    client = console("owner")
    missing = client.post("/w/brand/api-keys/new/", {"name": "门店", "role": "agent"})
    assert missing.status_code == 422
    assert "客服密钥必须发给一位客服" in missing.content.decode()
    assert not ApiKey.objects.exists()
    page = client.post(
        "/w/brand/api-keys/new/",
        {"name": "门店", "role": "agent", "acts_for": str(cast.agent.staff.pk)},
    )
    assert page.status_code == 200
    raw = page.context["raw_key"]
    items = ApiClient(raw).get("/api/v1/contacts").json()["items"]
    assert [c["id"] for c in items] == [mine.pk]
    # removing the agent from the workspace revokes their keys
    from siyu.accounts.actions import staff_remove
    from siyu.accounts.models import Membership

    membership = Membership.objects.get(workspace=cast.workspace, staff=cast.agent.staff)
    staff_remove(workspace=cast.workspace, actor=cast.owner.actor, membership=membership)
    assert ApiClient(raw).get("/api/v1/contacts").status_code == 401
