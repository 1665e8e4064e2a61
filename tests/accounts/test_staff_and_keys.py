"""Staff membership rules and API keys: hashed at rest, shown once, revocable, scoped."""

import datetime

import pytest
from django.utils import timezone

from siyu.accounts import actions
from siyu.accounts.models import ApiKey, Membership, Staff
from siyu.core.errors import Conflict, PermissionDenied, ValidationError
from siyu.core.models import AuditLog, Workspace
from tests.conftest import PASSWORD, ApiClient
from tests.helpers import db_snapshot, error_of, raw_rows, snapshot_diff


def membership(cast, role) -> Membership:
    return Membership.objects.get(workspace=cast.workspace, staff=cast.members[role].staff)


# --- workspaces ---------------------------------------------------------------------------


def test_workspace_create_is_audited_and_slug_unique(db, system_actor):
    ws = actions.workspace_create(name="喜茶", slug="heytea", actor=system_actor)
    row = AuditLog.objects.get(workspace=ws)
    assert (row.action, row.after) == ("workspace.create", {"name": "喜茶", "slug": "heytea"})
    with pytest.raises(Conflict) as exc:
        actions.workspace_create(name="again", slug="heytea", actor=system_actor)
    assert exc.value.details == {"field": "slug"}
    assert Workspace.objects.filter(slug="heytea").count() == 1


def test_workspace_update_records_before_and_after(cast):
    actions.workspace_update(
        workspace=cast.workspace, actor=cast.admin.actor, timezone="Asia/Hong_Kong"
    )
    row = AuditLog.objects.filter(action="workspace.update").get()
    assert row.before == {"timezone": "Asia/Shanghai"}
    assert row.after == {"timezone": "Asia/Hong_Kong"}
    assert row.actor == cast.admin.staff
    cast.workspace.refresh_from_db()
    assert cast.workspace.timezone == "Asia/Hong_Kong"


# --- staff -----------------------------------------------------------------------------------


def test_staff_add_creates_login_lowercases_email_and_audits(cast):
    m = actions.staff_add(
        workspace=cast.workspace,
        actor=cast.admin.actor,
        email="  New.Person@Brand.TEST ",
        role="operator",
        password=PASSWORD,
    )
    assert m.staff.email == "new.person@brand.test"
    assert m.role == "operator"
    assert m.staff.check_password(PASSWORD)
    row = AuditLog.objects.filter(action="staff.add").order_by("-pk").first()
    assert row.after == {"email": "new.person@brand.test", "role": "operator"}
    assert row.actor == cast.admin.staff


def test_staff_add_reuses_an_existing_login_in_another_workspace(cast):
    outsider = cast.outsider.staff
    m = actions.staff_add(
        workspace=cast.workspace, actor=cast.owner.actor, email=outsider.email, role="analyst"
    )
    assert m.staff == outsider
    assert Staff.objects.filter(email=outsider.email).count() == 1
    assert outsider.memberships.count() == 2


def test_staff_add_never_changes_an_existing_logins_password(cast):
    outsider = cast.outsider.staff
    actions.staff_add(
        workspace=cast.workspace,
        actor=cast.owner.actor,
        email=outsider.email,
        role="operator",
        password="Chosen-by-another-brand-1",  # noqa: S106
    )
    outsider.refresh_from_db()
    assert outsider.check_password(PASSWORD)
    assert not outsider.check_password("Chosen-by-another-brand-1")


def test_staff_add_twice_is_a_conflict(cast):
    before = db_snapshot()
    with pytest.raises(Conflict) as exc:
        actions.staff_add(
            workspace=cast.workspace, actor=cast.owner.actor, email="ADMIN@brand.test", role="agent"
        )
    assert exc.value.details == {"field": "email"}
    assert snapshot_diff(before, db_snapshot()) == []


def test_staff_add_unknown_role(cast):
    with pytest.raises(ValidationError) as exc:
        actions.staff_add(
            workspace=cast.workspace, actor=cast.owner.actor, email="x@brand.test", role="boss"
        )
    assert exc.value.details["field"] == "role"
    assert not Staff.objects.filter(email="x@brand.test").exists()


def test_only_an_owner_grants_owner(cast):
    before = db_snapshot()
    with pytest.raises(PermissionDenied):
        actions.staff_add(
            workspace=cast.workspace, actor=cast.admin.actor, email="o2@brand.test", role="owner"
        )
    with pytest.raises(PermissionDenied):
        actions.staff_set_role(
            workspace=cast.workspace,
            actor=cast.admin.actor,
            membership=membership(cast, "operator"),
            role="owner",
        )
    assert snapshot_diff(before, db_snapshot()) == []
    m = actions.staff_set_role(
        workspace=cast.workspace,
        actor=cast.owner.actor,
        membership=membership(cast, "operator"),
        role="owner",
    )
    assert m.role == "owner"
    row = AuditLog.objects.get(action="staff.role")
    assert (row.before, row.after) == ({"role": "operator"}, {"role": "owner"})


def test_admin_cannot_demote_or_remove_an_owner(cast):
    actions.staff_set_role(
        workspace=cast.workspace,
        actor=cast.owner.actor,
        membership=membership(cast, "operator"),
        role="owner",
    )
    before = db_snapshot()
    with pytest.raises(PermissionDenied):
        actions.staff_set_role(
            workspace=cast.workspace,
            actor=cast.admin.actor,
            membership=membership(cast, "owner"),
            role="analyst",
        )
    with pytest.raises(PermissionDenied):
        actions.staff_remove(
            workspace=cast.workspace, actor=cast.admin.actor, membership=membership(cast, "owner")
        )
    assert snapshot_diff(before, db_snapshot()) == []


def test_admin_manages_non_owner_staff(cast):
    m = actions.staff_set_role(
        workspace=cast.workspace,
        actor=cast.admin.actor,
        membership=membership(cast, "agent"),
        role="operator",
    )
    assert m.role == "operator"
    actions.staff_remove(workspace=cast.workspace, actor=cast.admin.actor, membership=m)
    assert not Membership.objects.filter(pk=m.pk).exists()
    assert Staff.objects.filter(pk=cast.agent.staff.pk).exists()  # the login stays
    row = AuditLog.objects.get(action="staff.remove")
    assert row.before == {"email": "agent@brand.test", "role": "operator"}
    assert row.object_id == str(cast.agent.staff.pk)


def test_setting_the_same_role_writes_nothing(cast):
    before = db_snapshot()
    actions.staff_set_role(
        workspace=cast.workspace,
        actor=cast.admin.actor,
        membership=membership(cast, "analyst"),
        role="analyst",
    )
    assert snapshot_diff(before, db_snapshot()) == []


def test_last_owner_can_be_neither_removed_nor_demoted(cast):
    owner = membership(cast, "owner")
    before = db_snapshot()
    with pytest.raises(Conflict):
        actions.staff_remove(workspace=cast.workspace, actor=cast.owner.actor, membership=owner)
    with pytest.raises(Conflict):
        actions.staff_set_role(
            workspace=cast.workspace, actor=cast.owner.actor, membership=owner, role="admin"
        )
    assert snapshot_diff(before, db_snapshot()) == []
    # with a second owner, the first may step down
    actions.staff_set_role(
        workspace=cast.workspace,
        actor=cast.owner.actor,
        membership=membership(cast, "admin"),
        role="owner",
    )
    actions.staff_set_role(
        workspace=cast.workspace, actor=cast.owner.actor, membership=owner, role="admin"
    )
    assert membership(cast, "owner").role == "admin"


def test_an_inactive_owner_does_not_count_as_the_remaining_owner(cast):
    second = membership(cast, "admin")
    actions.staff_set_role(
        workspace=cast.workspace, actor=cast.owner.actor, membership=second, role="owner"
    )
    Staff.objects.filter(pk=second.staff_id).update(is_active=False)
    with pytest.raises(Conflict):
        actions.staff_remove(
            workspace=cast.workspace,
            actor=cast.owner.actor,
            membership=membership(cast, "owner"),
        )


def test_staff_actions_never_reach_another_workspace(cast):
    foreign = Membership.objects.get(workspace=cast.outsider_workspace)
    with pytest.raises(Membership.DoesNotExist):
        actions.staff_set_role(
            workspace=cast.workspace, actor=cast.owner.actor, membership=foreign, role="agent"
        )
    with pytest.raises(Membership.DoesNotExist):
        actions.staff_remove(workspace=cast.workspace, actor=cast.owner.actor, membership=foreign)
    foreign.refresh_from_db()
    assert foreign.role == "owner"


# --- API keys --------------------------------------------------------------------------------


def test_api_key_is_hashed_at_rest_and_shown_once(cast):
    key, raw = actions.apikey_create(
        workspace=cast.workspace, actor=cast.admin.actor, name=" 数据同步 ", role="operator"
    )
    assert raw.startswith("sk_") and len(raw) > 40
    assert key.name == "数据同步"
    assert key.prefix == raw[:10]
    assert key.key_hash == actions.hash_api_key(raw) != raw
    assert key.created_by == cast.admin.staff
    # no column of any key row, nor any audit row, holds the clear key
    rows = raw_rows("accounts_apikey") + raw_rows("core_auditlog")
    assert rows
    assert not any(raw in str(value) for row in rows for value in row)
    assert not any(raw[10:20] in str(value) for row in rows for value in row)
    audit = AuditLog.objects.get(action="apikey.create", object_id=str(key.pk))
    assert audit.after == {
        "name": "数据同步",
        "prefix": raw[:10],
        "role": "operator",
        "acts_for": None,
    }
    # the key cannot be recovered from the model either
    assert raw not in repr(ApiKey.objects.filter(pk=key.pk).values().get())


def test_api_key_roles(cast):
    for role in ("admin", "operator", "analyst", "agent"):
        key, _ = actions.apikey_create(
            workspace=cast.workspace,
            actor=cast.admin.actor,
            name=role,
            role=role,
            acts_for_id=cast.agent.staff.pk,
        )
        assert key.role == role
        # only an agent key acts for someone
        assert key.acts_for == (cast.agent.staff if role == "agent" else None)
    before = db_snapshot()
    # an agent key must be issued to an agent of this workspace
    for acts_for in (None, cast.operator.staff.pk, cast.outsider.staff.pk):
        with pytest.raises(ValidationError) as exc:
            actions.apikey_create(
                workspace=cast.workspace,
                actor=cast.owner.actor,
                name="x",
                role="agent",
                acts_for_id=acts_for,
            )
        assert exc.value.details["field"] == "acts_for"
    with pytest.raises(ValidationError) as exc:
        actions.apikey_create(
            workspace=cast.workspace, actor=cast.owner.actor, name="root", role="owner"
        )
    assert exc.value.details["field"] == "role"
    with pytest.raises(ValidationError) as exc:
        actions.apikey_create(workspace=cast.workspace, actor=cast.owner.actor, name="  ")
    assert exc.value.details["field"] == "name"
    assert snapshot_diff(before, db_snapshot()) == []


def test_api_key_works_and_touches_last_used_at(cast):
    key, raw = actions.apikey_create(workspace=cast.workspace, actor=cast.admin.actor, name="k")
    assert key.last_used_at is None
    client = ApiClient(raw)
    assert client.get("/api/v1/contacts").status_code == 200
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    assert abs((timezone.now() - first).total_seconds()) < 30
    # within a minute it is not written again
    assert client.get("/api/v1/contacts").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at == first
    # an hour later it is
    old = timezone.now() - datetime.timedelta(hours=1)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=old)
    assert client.get("/api/v1/contacts").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at > old + datetime.timedelta(minutes=59)


def test_revoked_key_gets_401(cast):
    key, raw = actions.apikey_create(workspace=cast.workspace, actor=cast.admin.actor, name="k")
    client = ApiClient(raw)
    assert client.get("/api/v1/contacts").status_code == 200
    actions.apikey_revoke(workspace=cast.workspace, actor=cast.admin.actor, key=key)
    key.refresh_from_db()
    assert key.revoked_at is not None and not key.is_active
    r = client.get("/api/v1/contacts")
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthorized"
    before = db_snapshot()
    r = client.post("/api/v1/contacts", {"name": "x"})
    assert r.status_code == 401
    assert snapshot_diff(before, db_snapshot()) == []
    assert AuditLog.objects.filter(action="apikey.revoke", object_id=str(key.pk)).count() == 1
    # revoking again changes nothing and writes no second audit row
    revoked_at = key.revoked_at
    actions.apikey_revoke(workspace=cast.workspace, actor=cast.admin.actor, key=key)
    key.refresh_from_db()
    assert key.revoked_at == revoked_at
    assert AuditLog.objects.filter(action="apikey.revoke").count() == 1


def test_revoke_needs_the_keys_own_workspace(cast):
    key, raw = actions.apikey_create(
        workspace=cast.outsider_workspace, actor=cast.outsider.actor, name="theirs"
    )
    with pytest.raises(ApiKey.DoesNotExist):
        actions.apikey_revoke(workspace=cast.workspace, actor=cast.owner.actor, key=key)
    assert ApiClient(raw).get("/api/v1/contacts").status_code == 200


def test_authenticate_rejects_unknown_and_revoked(cast):
    key, raw = actions.apikey_create(workspace=cast.workspace, actor=cast.admin.actor, name="k")
    assert actions.apikey_authenticate(raw).pk == key.pk
    assert actions.apikey_authenticate(raw + "x") is None
    assert actions.apikey_authenticate(key.key_hash) is None  # the stored hash is not a key
    actions.apikey_revoke(workspace=cast.workspace, actor=cast.admin.actor, key=key)
    assert actions.apikey_authenticate(raw) is None


def test_another_workspaces_key_cannot_see_this_one(cast, make_contact, api, system_actor):
    mine = make_contact(name="本店客户", phone="13812345678")
    theirs = make_contact(name="别家客户", workspace=cast.outsider_workspace)
    outsider = api("outsider")
    items = outsider.get("/api/v1/contacts").json()["items"]
    assert [c["id"] for c in items] == [theirs.pk]
    assert outsider.get("/api/v1/contacts", q="13812345678").json()["items"] == []
    r = outsider.get(f"/api/v1/contacts/{mine.pk}")
    assert r.status_code == 404
    assert error_of(r) == {"code": "not_found", "message": "contact not found", "details": {}}
    # the same answer as for an id that does not exist at all: no existence leak
    missing = outsider.get("/api/v1/contacts/999999")
    assert missing.status_code == 404 and missing.json() == r.json()


def test_key_actor_is_labelled_with_the_prefix_and_not_a_staff_member(cast, api):
    key, raw = actions.apikey_create(
        workspace=cast.workspace, actor=cast.admin.actor, name="crm", role="operator"
    )
    r = ApiClient(raw).post("/api/v1/contacts", {"name": "接口客户"})
    assert r.status_code == 201
    row = AuditLog.objects.get(action="contact.create")
    assert row.actor_label == f"api-key:{key.prefix}"
    assert row.actor is None  # a key acts for an integration, not for its creator
