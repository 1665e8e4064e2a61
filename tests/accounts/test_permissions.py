"""The permission matrix, enforced server-side on every API write: an allowed role succeeds
(and leaves an audit row), a denied role gets 403 `forbidden` and the database is unchanged."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from siyu.accounts.access import can, require
from siyu.accounts.permissions import DESCRIPTIONS, MATRIX, OWN_ONLY, Role
from siyu.contacts import actions
from siyu.contacts.actions.contact import IdentityInput
from siyu.contacts.models import Contact, Identity, TimelineEntry
from siyu.contacts.queries import get_contact_for, visible_contacts
from siyu.core.audit import Actor
from siyu.core.errors import NotFound, PermissionDenied
from siyu.core.models import AuditLog
from tests.helpers import db_snapshot, error_of, snapshot_diff

DOCS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
KEY_ROLES = ["admin", "operator", "analyst", "agent"]  # API keys are never owner


@dataclass
class World:
    a: Contact  # owned by the agent, has a phone and a user id
    b: Contact  # owned by the agent, has an email
    c: Contact  # owned by the operator
    d: Contact  # owned by nobody
    group: Any
    tag1: Any
    tag2: Any
    identity: Identity  # a's user_id identity
    operator_id: int


@pytest.fixture
def world(cast, system_actor) -> World:
    ws = cast.workspace
    group = actions.tag_group_create(workspace=ws, actor=system_actor, name="兴趣")
    tag1 = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="咖啡")
    tag2 = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="茶")
    actions.attribute_define(
        workspace=ws, actor=system_actor, key="level", label="等级", type="number"
    )

    def make(name, owner, idents):
        return actions.contact_create(
            workspace=ws,
            actor=system_actor,
            profile={"name": name, "source": "store_qr"},
            identities=[IdentityInput(*i) for i in idents],
            owner_id=owner.staff.pk if owner else None,
            tag_ids=[tag1.pk],
        )

    a = make("甲", cast.agent, [("phone", "13812345678"), ("user_id", "u-1")])
    b = make("乙", cast.agent, [("email", "yi@example.com")])
    c = make("丙", cast.operator, [("phone", "13900001111")])
    d = make("丁", None, [("user_id", "u-4")])
    identity = a.identities.get(kind="user_id")
    return World(a, b, c, d, group, tag1, tag2, identity, cast.operator.staff.pk)


@pytest.fixture
def client_for(api, agent_api):
    def make(role):
        return agent_api if role == "agent" else api(role)

    return make


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: Callable[[World], str]
    body: Callable[[World], dict | None]
    status: int
    perm: str
    audit: str
    roles: frozenset  # key roles expected to be allowed (written from the requirements)
    gate: str = ""  # a permission checked first (PATCH needs contacts.edit before assign)


def _c(w: World) -> str:
    return f"/api/v1/contacts/{w.a.pk}"


WRITERS = frozenset({"admin", "operator", "agent"})
MANAGERS = frozenset({"admin", "operator"})
ADMINS = frozenset({"admin"})

ENDPOINTS: dict[str, Endpoint] = {
    "contact create": Endpoint(
        "post",
        lambda w: "/api/v1/contacts",
        lambda w: {"name": "新客", "identities": [{"kind": "phone", "value": "13700002222"}]},
        201,
        "contacts.create",
        "contact.create",
        WRITERS,
    ),
    "contact update": Endpoint(
        "patch",
        _c,
        lambda w: {"name": "改名", "attributes": {"level": 3}},
        200,
        "contacts.edit",
        "contact.update",
        WRITERS,
    ),
    "contact assign owner": Endpoint(
        "patch",
        _c,
        lambda w: {"owner_id": w.operator_id},
        200,
        "contacts.assign",
        "contact.assign",
        MANAGERS,
        gate="contacts.edit",
    ),
    "contact delete": Endpoint(
        "delete", _c, lambda w: None, 204, "contacts.delete", "contact.delete", ADMINS
    ),
    "identity add": Endpoint(
        "post",
        lambda w: f"{_c(w)}/identities",
        lambda w: {"kind": "wechat_unionid", "value": "union-9"},
        201,
        "contacts.edit",
        "identity.add",
        WRITERS,
    ),
    "identity remove": Endpoint(
        "delete",
        lambda w: f"{_c(w)}/identities/{w.identity.pk}",
        lambda w: None,
        204,
        "contacts.edit",
        "identity.remove",
        WRITERS,
    ),
    "contact tag add": Endpoint(
        "post",
        lambda w: f"{_c(w)}/tags",
        lambda w: {"add": [w.tag2.pk]},
        200,
        "contacts.tag",
        "contacts.tag",
        WRITERS,
    ),
    "contact tag remove": Endpoint(
        "post",
        lambda w: f"{_c(w)}/tags",
        lambda w: {"remove": [w.tag1.pk]},
        200,
        "contacts.tag",
        "contacts.tag",
        WRITERS,
    ),
    "bulk tag": Endpoint(
        "post",
        lambda w: "/api/v1/contacts/bulk-tag",
        lambda w: {"contact_ids": [w.a.pk, w.b.pk], "add": [w.tag2.pk]},
        200,
        "contacts.bulk",
        "contacts.tag",
        MANAGERS,
    ),
    "consent": Endpoint(
        "put",
        lambda w: f"{_c(w)}/consent",
        lambda w: {"channel": "sms", "status": "granted", "source": "门店"},
        200,
        "contacts.consent",
        "consent.set",
        WRITERS,
    ),
    "merge": Endpoint(
        "post",
        lambda w: f"{_c(w)}/merge",
        lambda w: {"other_id": w.b.pk},
        200,
        "contacts.merge",
        "contact.merge",
        MANAGERS,
    ),
    "tag group create": Endpoint(
        "post",
        lambda w: "/api/v1/tags/groups",
        lambda w: {"name": "生命周期"},
        201,
        "tags.manage",
        "taggroup.create",
        MANAGERS,
    ),
    "tag group rename": Endpoint(
        "patch",
        lambda w: f"/api/v1/tags/groups/{w.group.pk}",
        lambda w: {"name": "爱好"},
        200,
        "tags.manage",
        "taggroup.update",
        MANAGERS,
    ),
    "tag group delete": Endpoint(
        "delete",
        lambda w: f"/api/v1/tags/groups/{w.group.pk}",
        lambda w: None,
        204,
        "tags.manage",
        "taggroup.delete",
        MANAGERS,
    ),
    "tag create": Endpoint(
        "post",
        lambda w: "/api/v1/tags",
        lambda w: {"name": "果汁", "group_id": w.group.pk},
        201,
        "tags.manage",
        "tag.create",
        MANAGERS,
    ),
    "tag rename": Endpoint(
        "patch",
        lambda w: f"/api/v1/tags/{w.tag1.pk}",
        lambda w: {"name": "美式"},
        200,
        "tags.manage",
        "tag.update",
        MANAGERS,
    ),
    "tag delete": Endpoint(
        "delete",
        lambda w: f"/api/v1/tags/{w.tag1.pk}",
        lambda w: None,
        204,
        "tags.manage",
        "tag.delete",
        MANAGERS,
    ),
    "attribute define": Endpoint(
        "post",
        lambda w: "/api/v1/attributes",
        lambda w: {"key": "vip", "label": "会员", "type": "bool"},
        201,
        "attributes.manage",
        "attribute.define",
        ADMINS,
    ),
    "attribute delete": Endpoint(
        "delete",
        lambda w: "/api/v1/attributes/level",
        lambda w: None,
        204,
        "attributes.manage",
        "attribute.delete",
        ADMINS,
    ),
}


def _call(client, ep: Endpoint, w: World):
    body = ep.body(w)
    if ep.method == "delete":
        return client.delete(ep.path(w))
    return getattr(client, ep.method)(ep.path(w), body)


@pytest.mark.parametrize("role", KEY_ROLES)
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_api_write_matrix(name, role, world, client_for):
    ep = ENDPOINTS[name]
    client = client_for(role)
    before = db_snapshot()
    audit_before = AuditLog.objects.count()
    response = _call(client, ep, world)
    after = db_snapshot()
    if role in ep.roles:
        assert response.status_code == ep.status, response.content
        assert snapshot_diff(before, after), "an allowed write changed nothing"
        new_audit = AuditLog.objects.filter(pk__gt=max_pk(before))
        assert ep.audit in set(new_audit.values_list("action", flat=True))
        assert all(a.actor_label.startswith("api-key:sk_") for a in new_audit)
    else:
        assert response.status_code == 403, response.content
        body = error_of(response)
        assert body["code"] == "forbidden"
        denied = ep.gate if ep.gate and role not in WRITERS else ep.perm
        assert body["details"] == {"permission": denied}
        assert snapshot_diff(before, after) == []
        assert AuditLog.objects.count() == audit_before


def max_pk(snapshot) -> int:
    rows = snapshot["core.AuditLog"]
    return rows[-1]["id"] if rows else 0


def test_endpoint_roles_agree_with_the_matrix():
    """The roles the endpoint table expects are exactly what MATRIX grants to key roles."""
    for name, ep in ENDPOINTS.items():
        granted = {r.value for r in MATRIX[ep.perm]} & set(KEY_ROLES)
        assert granted == set(ep.roles), name


def test_matrix_meets_the_requirements():
    roles = {r.value: {p for p, held in MATRIX.items() if r in held} for r in Role}
    assert roles["owner"] == set(MATRIX), "owners hold every permission"
    # analysts read and export; segments and messaging are read-only to them
    assert roles["analyst"] == {
        "dashboard.view",
        "contacts.view",
        "contacts.export",
        "segments.view",
        "messaging.view",
        "campaigns.view",
    }
    for perm in (
        "staff.manage",
        "staff.view",
        "apikeys.manage",
        "settings.manage",
        "channels.manage",
    ):
        assert {r.value for r in MATRIX[perm]} == {"owner", "admin"}, perm
    assert {r.value for r in MATRIX["pii.reveal"]} == {"owner", "admin"}
    assert roles["agent"] == {
        "dashboard.view",
        "contacts.view",
        "contacts.create",
        "contacts.edit",
        "contacts.tag",
        "contacts.consent",
        "segments.view",  # members limited to their own contacts
    }
    assert {r.value for r in OWN_ONLY} == {"agent"}
    assert set(DESCRIPTIONS) == set(MATRIX)


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_require_follows_the_matrix_for_every_role(role):
    actor = Actor(user=None, label=role, role=role)
    for perm, held in MATRIX.items():
        assert can(actor, perm) is (role in held)
        if role in held:
            require(actor, perm)
        else:
            with pytest.raises(PermissionDenied) as exc:
                require(actor, perm)
            assert exc.value.status == 403
            assert exc.value.details == {"permission": perm}


# --- agents: own contacts only ------------------------------------------------------------


def test_agent_lists_only_own_contacts(world, agent_api, cast):
    items = agent_api.get("/api/v1/contacts").json()["items"]
    assert sorted(c["id"] for c in items) == sorted([world.a.pk, world.b.pk])
    assert {c["owner_id"] for c in items} == {cast.agent.staff.pk}
    # searching does not widen what an agent sees
    assert agent_api.get("/api/v1/contacts", q="139 0000 1111").json()["items"] == []
    assert agent_api.get("/api/v1/contacts", q="丙").json()["items"] == []


CONTACT_ROUTES = [
    ("get", "{id}", None),
    ("get", "{id}/identities", None),
    ("get", "{id}/timeline", None),
    ("patch", "{id}", {"name": "x"}),
    ("post", "{id}/identities", {"kind": "user_id", "value": "zz"}),
    ("post", "{id}/tags", {"add": []}),
    ("put", "{id}/consent", {"channel": "sms", "status": "granted"}),
]


@pytest.mark.parametrize("other", ["c", "d"])
def test_agent_gets_404_for_contacts_of_others(other, world, agent_api):
    target = getattr(world, other)
    before = db_snapshot()
    for method, path, body in CONTACT_ROUTES:
        url = "/api/v1/contacts/" + path.format(id=target.pk)
        response = agent_api.get(url) if method == "get" else getattr(agent_api, method)(url, body)
        assert response.status_code == 404, (method, url, response.content)
        assert error_of(response)["code"] == "not_found"
    ident = target.identities.first()
    response = agent_api.delete(f"/api/v1/contacts/{target.pk}/identities/{ident.pk}")
    assert response.status_code == 404
    assert snapshot_diff(before, db_snapshot()) == []


def test_agent_bulk_and_merge_are_forbidden_even_on_own_contacts(world, agent_api):
    r = agent_api.post(
        "/api/v1/contacts/bulk-tag", {"contact_ids": [world.a.pk], "add": [world.tag2.pk]}
    )
    assert r.status_code == 403
    r = agent_api.post(f"/api/v1/contacts/{world.a.pk}/merge", {"other_id": world.b.pk})
    assert r.status_code == 403
    assert Contact.objects.filter(pk=world.b.pk).exists()


def test_agent_create_makes_the_agent_the_owner(world, agent_api, cast):
    r = agent_api.post("/api/v1/contacts", {"name": "新朋友"})
    assert r.status_code == 201, r.content
    assert r.json()["owner_id"] == cast.agent.staff.pk
    assert Contact.objects.get(pk=r.json()["id"]).owner_id == cast.agent.staff.pk
    ids = [c["id"] for c in agent_api.get("/api/v1/contacts").json()["items"]]
    assert r.json()["id"] in ids


def test_agent_cannot_choose_another_owner(world, agent_api, cast):
    before = db_snapshot()
    r = agent_api.post("/api/v1/contacts", {"name": "x", "owner_id": cast.operator.staff.pk})
    assert r.status_code == 403
    assert error_of(r)["code"] == "forbidden"
    assert snapshot_diff(before, db_snapshot()) == []


def test_agent_key_whose_agent_left_sees_and_creates_nothing(world, api, cast):
    client = api("agent")  # issued to the cast's agent
    assert client.get("/api/v1/contacts").json()["items"]
    cast.agent.staff.delete()  # the agent leaves: the key goes with them
    assert client.get("/api/v1/contacts").status_code == 401
    before = db_snapshot()
    r = client.post("/api/v1/contacts", {"name": "孤儿"})
    assert r.status_code == 401
    assert snapshot_diff(before, db_snapshot()) == []


def test_agent_scope_in_queries_and_actions(world, cast):
    agent = cast.agent.actor
    ws = cast.workspace
    assert set(visible_contacts(ws, agent).values_list("pk", flat=True)) == {
        world.a.pk,
        world.b.pk,
    }
    assert get_contact_for(ws, agent, world.a.pk) == world.a
    with pytest.raises(NotFound):
        get_contact_for(ws, agent, world.c.pk)
    created = actions.contact_create(workspace=ws, actor=agent, profile={"name": "自建"})
    assert created.owner_id == cast.agent.staff.pk
    # other roles see everyone
    assert visible_contacts(ws, cast.analyst.actor).count() == 4 + 1


# --- analysts: read and export, never write ------------------------------------------------


def test_analyst_can_list_and_get(world, api):
    client = api("analyst")
    items = client.get("/api/v1/contacts").json()["items"]
    assert {c["id"] for c in items} == {world.a.pk, world.b.pk, world.c.pk, world.d.pk}
    r = client.get(f"/api/v1/contacts/{world.c.pk}")
    assert r.status_code == 200
    assert r.json()["name"] == "丙"
    assert client.get(f"/api/v1/contacts/{world.c.pk}/timeline").status_code == 200
    assert client.get("/api/v1/tags/groups").status_code == 200
    assert client.get("/api/v1/tags").status_code == 200
    assert client.get("/api/v1/attributes").json()[0]["key"] == "level"


# --- PII: masked by default, revealed (and audited) only for owner/admin --------------------


def test_pii_is_masked_without_reveal(world, api):
    client = api("admin")
    before = AuditLog.objects.count()
    body = client.get(f"/api/v1/contacts/{world.a.pk}").json()
    phone = next(i for i in body["identities"] if i["kind"] == "phone")
    assert phone == {
        "id": phone["id"],
        "kind": "phone",
        "app_id": "",
        "value": "138****5678",
        "masked": True,
    }
    user_id = next(i for i in body["identities"] if i["kind"] == "user_id")
    assert user_id["value"] == "u-1" and user_id["masked"] is False
    assert AuditLog.objects.count() == before


def test_admin_reveal_is_audited_with_identity_ids(world, api):
    contact = world.a
    actions.identity_add(
        workspace=contact.workspace,
        actor=Actor.system("test"),
        contact=contact,
        kind="email",
        value="Jia@Example.com",
    )
    pii_ids = sorted(contact.identities.filter(kind__in=["phone", "email"]).values_list("pk"))
    r = api("admin").get(f"/api/v1/contacts/{contact.pk}", reveal="true")
    assert r.status_code == 200
    values = {i["kind"]: (i["value"], i["masked"]) for i in r.json()["identities"]}
    assert values["phone"] == ("+8613812345678", False)
    assert values["email"] == ("jia@example.com", False)
    rows = AuditLog.objects.filter(action="pii.reveal").order_by("pk")
    assert sorted((r.after["identity_id"],) for r in rows) == pii_ids
    assert {r.object_type for r in rows} == {"contact"}
    assert {r.object_id for r in rows} == {str(contact.pk)}
    assert all(r.actor_label.startswith("api-key:") for r in rows)
    assert TimelineEntry.objects.filter(contact=contact, kind="pii_revealed").count() == 2


@pytest.mark.parametrize("role", ["operator", "analyst", "agent"])
def test_reveal_is_forbidden_for_other_roles(role, world, client_for):
    client = client_for(role)
    before = db_snapshot()
    r = client.get(f"/api/v1/contacts/{world.a.pk}", reveal="true")
    assert r.status_code == 403
    body = error_of(r)
    assert body["code"] == "forbidden"
    assert body["details"] == {"permission": "pii.reveal"}
    assert "138" not in r.content.decode()
    assert snapshot_diff(before, db_snapshot()) == []
    assert not AuditLog.objects.filter(action="pii.reveal").exists()


def test_owner_may_reveal_through_the_action(world, cast):
    identity = world.a.identities.get(kind="phone")
    assert can(cast.owner.actor, "pii.reveal")
    value = actions.identity_reveal(
        workspace=cast.workspace, actor=cast.owner.actor, identity=identity
    )
    assert value == "+8613812345678"
    row = AuditLog.objects.get(action="pii.reveal")
    assert row.actor == cast.owner.staff
    assert row.after == {"kind": "phone", "identity_id": identity.pk}


# --- docs/permissions.md is the matrix -----------------------------------------------------


def matrix_markdown() -> str:
    roles = list(Role)
    header = "| Permission | What it allows | " + " | ".join(r.value for r in roles) + " |"
    rule = "|---|---|" + "|".join(":-:" for _ in roles) + "|"
    lines = [header, rule]
    for perm, held in MATRIX.items():
        marks = " | ".join("✓" if r in held else " " for r in roles)
        lines.append(f"| `{perm}` | {DESCRIPTIONS[perm]} | {marks} |")
    return "\n".join(lines)


def test_permissions_doc_matches_the_matrix():
    text = DOCS.read_text(encoding="utf-8")
    start, end = "<!-- matrix:start -->\n", "\n<!-- matrix:end -->"
    assert start in text and end in text, "docs/permissions.md lost its matrix markers"
    table = text.split(start, 1)[1].split(end, 1)[0]
    assert table == matrix_markdown(), (
        "docs/permissions.md is out of date; paste this table:\n" + matrix_markdown()
    )
    # and no other table rows outside the markers that could contradict it
    outside = text.replace(table, "")
    assert not any(line.startswith("| `") for line in outside.splitlines())
