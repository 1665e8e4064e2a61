"""The audit log: who (staff or API key), what, which object, before/after, from which IP,
and when, written in the same transaction as the change."""

import datetime

import pytest
from django.test import RequestFactory
from django.utils import timezone

from siyu.accounts import actions as account_actions
from siyu.accounts.access import client_ip, key_actor, staff_actor
from siyu.accounts.models import Staff
from siyu.contacts import actions
from siyu.core.audit import Actor, audit
from siyu.core.errors import NotFound
from siyu.core.models import AuditLog


def recent(row) -> bool:
    return abs(timezone.now() - row.created_at) < datetime.timedelta(seconds=30)


def test_api_key_actions_record_key_label_ip_and_time(cast, api):
    key, raw = account_actions.apikey_create(
        workspace=cast.workspace, actor=cast.admin.actor, name="crm", role="operator"
    )
    from tests.conftest import ApiClient

    client = ApiClient(raw).client
    r = client.post(
        "/api/v1/contacts",
        {"name": "审计"},
        content_type="application/json",
        REMOTE_ADDR="203.0.113.7",
    )
    assert r.status_code == 201
    cid = r.json()["id"]
    client.patch(
        f"/api/v1/contacts/{cid}",
        {"city": "成都"},
        content_type="application/json",
        REMOTE_ADDR="2001:db8::7",
    )
    create = AuditLog.objects.get(action="contact.create")
    assert create.workspace == cast.workspace
    assert create.actor is None
    assert create.actor_label == f"api-key:{key.prefix}"
    assert (create.object_type, create.object_id) == ("contact", str(cid))
    assert create.before is None
    assert create.after["name"] == "审计"
    assert create.ip == "203.0.113.7"
    assert recent(create)
    update = AuditLog.objects.get(action="contact.update")
    assert (update.before, update.after) == ({"city": ""}, {"city": "成都"})
    assert update.ip == "2001:db8::7"
    assert update.created_at >= create.created_at


def test_staff_actor_records_the_person_and_ip(cast, make_contact):
    request = RequestFactory().post("/", REMOTE_ADDR="198.51.100.23")
    request.user = cast.operator.staff
    actor = staff_actor(request, cast.workspace)
    assert (actor.user, actor.label, actor.role, actor.ip) == (
        cast.operator.staff,
        "operator@brand.test",
        "operator",
        "198.51.100.23",
    )
    contact = make_contact()
    actions.consent_set(
        workspace=cast.workspace, actor=actor, contact=contact, channel="sms", status="granted"
    )
    row = AuditLog.objects.get(action="consent.set")
    assert row.actor == cast.operator.staff
    assert row.actor_label == "operator@brand.test"
    assert row.ip == "198.51.100.23"
    assert (row.object_type, row.object_id) == ("contact", str(contact.pk))
    assert row.before == {"channel": "sms", "status": None}
    assert row.after == {"channel": "sms", "status": "granted"}
    assert recent(row)


def test_staff_actor_for_a_non_member_is_404(cast):
    request = RequestFactory().get("/")
    request.user = cast.outsider.staff
    with pytest.raises(NotFound):
        staff_actor(request, cast.workspace)
    Staff.objects.filter(pk=cast.operator.staff.pk).update(is_active=False)
    request.user = Staff.objects.get(pk=cast.operator.staff.pk)
    with pytest.raises(NotFound):
        staff_actor(request, cast.workspace)


def test_key_actor_and_missing_ip(cast):
    key, _ = account_actions.apikey_create(
        workspace=cast.workspace, actor=cast.admin.actor, name="k", role="analyst"
    )
    request = RequestFactory().get("/", REMOTE_ADDR="")
    assert client_ip(request) is None
    actor = key_actor(request, key)
    assert (actor.user, actor.role, actor.api_key_id, actor.ip) == (None, "analyst", key.pk, None)
    assert actor.label == f"api-key:{key.prefix}"


def test_audit_helper_derives_object_and_keeps_label_when_staff_is_deleted(cast):
    actor = cast.admin.actor
    row = audit(
        workspace=cast.workspace,
        actor=Actor(user=actor.user, label=actor.label, role="admin", ip="10.0.0.1"),
        action="workspace.update",
        obj=cast.workspace,
        before={"name": "a"},
        after={"name": "b"},
    )
    assert (row.object_type, row.object_id) == ("workspace", str(cast.workspace.pk))
    explicit = audit(
        workspace=cast.workspace,
        actor=Actor.system("cli:test"),
        action="contacts.export",
        object_type="contact",
    )
    assert (explicit.object_type, explicit.object_id, explicit.actor) == ("contact", "", None)
    assert explicit.actor_label == "cli:test"
    Staff.objects.filter(pk=cast.admin.staff.pk).delete()
    row.refresh_from_db()
    assert row.actor is None
    assert row.actor_label == "admin@brand.test"
    assert row.ip == "10.0.0.1"


def test_audit_rows_belong_to_the_acting_workspace(cast, make_contact):
    mine = make_contact()
    theirs = make_contact(workspace=cast.outsider_workspace)
    actions.contact_update(
        workspace=cast.outsider_workspace,
        actor=cast.outsider.actor,
        contact=theirs,
        profile={"name": "改"},
    )
    actions.contact_update(
        workspace=cast.workspace, actor=cast.admin.actor, contact=mine, profile={"name": "改"}
    )
    rows = AuditLog.objects.filter(action="contact.update").order_by("pk")
    assert [(r.workspace_id, r.object_id) for r in rows] == [
        (cast.outsider_workspace.pk, str(theirs.pk)),
        (cast.workspace.pk, str(mine.pk)),
    ]


def test_staff_and_key_actions_are_all_audited(cast):
    ws, by = cast.workspace, cast.owner.actor
    m = account_actions.staff_add(workspace=ws, actor=by, email="n@brand.test", role="agent")
    account_actions.staff_set_role(workspace=ws, actor=by, membership=m, role="analyst")
    account_actions.staff_remove(workspace=ws, actor=by, membership=m)
    key, _ = account_actions.apikey_create(workspace=ws, actor=by, name="k")
    account_actions.apikey_revoke(workspace=ws, actor=by, key=key)
    rows = AuditLog.objects.filter(actor=cast.owner.staff).order_by("pk")
    assert [(r.action, r.object_type) for r in rows] == [
        ("staff.add", "staff"),
        ("staff.role", "staff"),
        ("staff.remove", "staff"),
        ("apikey.create", "apikey"),
        ("apikey.revoke", "apikey"),
    ]
    assert rows[1].before == {"role": "agent"} and rows[1].after == {"role": "analyst"}
    assert rows[2].before == {"email": "n@brand.test", "role": "analyst"}


def test_the_audit_ip_sees_through_trusted_proxies_only(rf, settings):
    from siyu.accounts.access import client_ip

    settings.SIYU_TRUSTED_PROXIES = frozenset({"10.0.0.1"})
    behind = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1")
    assert client_ip(behind) == "203.0.113.9"
    forged = rf.get("/", REMOTE_ADDR="198.51.100.4", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(forged) == "198.51.100.4"  # not a trusted proxy: the header is ignored
    junk = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_ip(junk) == "10.0.0.1"
    settings.SIYU_TRUSTED_PROXIES = frozenset()
    assert client_ip(behind) == "10.0.0.1"
