"""The cast every test can use: one workspace with an owner, admin, operator, analyst and
agent, an outsider workspace with its own owner, API keys per role, and helpers."""

import json
from dataclasses import dataclass

import pytest
from django.test import Client

from siyu.accounts import actions as account_actions
from siyu.accounts.models import Staff
from siyu.accounts.permissions import Role
from siyu.contacts import actions as contact_actions
from siyu.contacts.actions.contact import IdentityInput
from siyu.core.audit import Actor
from siyu.core.models import Workspace

PASSWORD = "Siyu-test-pass-2026"  # noqa: S105


@dataclass
class Member:
    staff: Staff
    role: str
    actor: Actor


@dataclass
class Cast:
    workspace: Workspace
    outsider_workspace: Workspace
    members: dict[str, Member]
    outsider: Member

    def __getattr__(self, role: str) -> Member:
        try:
            return self.members[role]
        except KeyError as exc:
            raise AttributeError(role) from exc


def _member(workspace: Workspace, email: str, role: str, by: Actor) -> Member:
    membership = account_actions.staff_add(
        workspace=workspace,
        actor=by,
        email=email,
        role=role,
        name=email.split("@")[0],
        password=PASSWORD,
    )
    staff = membership.staff
    return Member(staff, role, Actor(user=staff, label=staff.email, role=role))


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Cached numbers (the dashboard's) must not leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def system_actor() -> Actor:
    return Actor.system("test")


@pytest.fixture
def cast(db, system_actor) -> Cast:
    ws = account_actions.workspace_create(name="星巴克演示", slug="brand", actor=system_actor)
    other = account_actions.workspace_create(name="别家品牌", slug="other", actor=system_actor)
    members = {role: _member(ws, f"{role}@brand.test", role, system_actor) for role in Role.values}
    outsider = _member(other, "owner@other.test", Role.OWNER, system_actor)
    return Cast(ws, other, members, outsider)


@pytest.fixture
def make_contact(cast):
    """make_contact(name=..., phone=..., email=..., owner=Member, workspace=...)"""

    def make(
        name="张三",
        phone=None,
        email=None,
        owner=None,
        workspace=None,
        source="store_qr",
        **identities,
    ):
        ws = workspace or cast.workspace
        idents = []
        if phone:
            idents.append(IdentityInput("phone", phone))
        if email:
            idents.append(IdentityInput("email", email))
        idents += [IdentityInput(kind, value) for kind, value in identities.items()]
        return contact_actions.contact_create(
            workspace=ws,
            actor=Actor.system("test"),
            profile={"name": name, "source": source},
            identities=idents,
            owner_id=owner.staff.pk if owner else None,
        )

    return make


class ApiClient:
    """A JSON client authenticated with an API key of a given role."""

    def __init__(self, key: str | None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
        self.client = Client(**headers)

    def get(self, path, **params):
        return self.client.get(path, params)

    def _send(self, method, path, body):
        return getattr(self.client, method)(path, json.dumps(body), content_type="application/json")

    def post(self, path, body=None):
        return self._send("post", path, body or {})

    def patch(self, path, body=None):
        return self._send("patch", path, body or {})

    def put(self, path, body=None):
        return self._send("put", path, body or {})

    def delete(self, path):
        return self.client.delete(path)


@pytest.fixture
def api(cast, system_actor):
    """api(role) -> ApiClient with a fresh key of that role in the cast's workspace;
    api("outsider") gets a key for the other workspace; api(None) has no key."""

    def make(role: str | None = Role.ADMIN) -> ApiClient:
        if role is None:
            return ApiClient(None)
        if role == "outsider":
            _, raw = account_actions.apikey_create(
                workspace=cast.outsider_workspace,
                actor=system_actor,
                name="outsider",
                role=Role.ADMIN,
            )
            return ApiClient(raw)
        _, raw = account_actions.apikey_create(
            workspace=cast.workspace,
            actor=system_actor,
            name=f"key-{role}",
            role=role,
            acts_for_id=cast.agent.staff.pk if role == Role.AGENT else None,
        )
        return ApiClient(raw)

    return make


@pytest.fixture
def console(cast):
    """console(role) -> a Django test Client logged in as that cast member."""

    def make(role: str = Role.OWNER) -> Client:
        client = Client()
        member = cast.outsider if role == "outsider" else cast.members[role]
        client.force_login(member.staff)
        return client

    return make


@pytest.fixture
def agent_api(cast):
    """An API client with an agent-role key issued (by the owner) to the cast's agent, so it
    sees and creates the agent's own contacts."""
    _, raw = account_actions.apikey_create(
        workspace=cast.workspace,
        actor=cast.owner.actor,
        name="agent-own",
        role=Role.AGENT,
        acts_for_id=cast.agent.staff.pk,
    )
    return ApiClient(raw)
