"""Double clicks, retries and races change nothing twice; unknown or over-long input is a
clear 422; an agent cannot probe the pool through identity conflicts."""

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from siyu.accounts import actions as account_actions
from siyu.accounts.models import Membership
from siyu.contacts import actions
from siyu.contacts.models import Contact, TimelineEntry
from siyu.core.errors import NotFound
from siyu.core.jobs import jobs_requeue_stale
from siyu.core.models import AuditLog, Job
from tests.helpers import db_snapshot, error_of, snapshot_diff


def test_a_second_merge_of_the_same_contact_is_a_404_not_a_crash(cast, make_contact, api):
    survivor, other = make_contact("甲"), make_contact("乙")
    client = api("admin")
    first = client.post(f"/api/v1/contacts/{survivor.pk}/merge", {"other_id": other.pk})
    assert first.status_code == 200
    with pytest.raises(NotFound):
        actions.contacts_merge(
            workspace=cast.workspace, actor=cast.owner.actor, survivor=survivor, other=other
        )
    assert AuditLog.objects.filter(action="contact.merge").count() == 1


def test_deleting_twice_deletes_and_audits_once(cast, make_contact):
    contact = make_contact("甲")
    actions.contact_delete(workspace=cast.workspace, actor=cast.owner.actor, contact=contact)
    with pytest.raises(NotFound):
        actions.contact_delete(workspace=cast.workspace, actor=cast.owner.actor, contact=contact)
    assert AuditLog.objects.filter(action="contact.delete").count() == 1
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_removing_an_identity_twice_writes_once(cast, make_contact):
    contact = make_contact("甲", phone="13812340000")
    identity = contact.identities.get()
    actions.identity_remove(workspace=cast.workspace, actor=cast.owner.actor, identity=identity)
    with pytest.raises(NotFound):
        actions.identity_remove(workspace=cast.workspace, actor=cast.owner.actor, identity=identity)
    assert TimelineEntry.objects.filter(kind="identity_removed").count() == 1


def test_an_agent_learns_nothing_about_contacts_it_cannot_see(cast, make_contact, api):
    someone = make_contact("别人", phone="13900009999")
    mine = make_contact("我的", phone="13900008888", owner=cast.agent)
    agent = api("agent")
    before = db_snapshot()
    hidden = agent.post(
        "/api/v1/contacts", {"identities": [{"kind": "phone", "value": "13900009999"}]}
    )
    assert hidden.status_code == 409
    assert "contact_id" not in error_of(hidden)["details"]
    assert str(someone.pk) not in hidden.content.decode()
    visible = agent.post(
        "/api/v1/contacts", {"identities": [{"kind": "phone", "value": "13900008888"}]}
    )
    assert visible.status_code == 409
    assert error_of(visible)["details"]["contact_id"] == mine.pk
    assert snapshot_diff(before, db_snapshot()) == []
    admin = api("admin").post(
        "/api/v1/contacts", {"identities": [{"kind": "phone", "value": "13900009999"}]}
    )
    assert error_of(admin)["details"]["contact_id"] == someone.pk


def test_an_agents_keys_stop_working_when_they_are_no_longer_an_agent(cast, api):
    agent = api("agent")
    assert agent.get("/api/v1/contacts").status_code == 200
    membership = Membership.objects.get(workspace=cast.workspace, staff=cast.agent.staff)
    account_actions.staff_set_role(
        workspace=cast.workspace, actor=cast.owner.actor, membership=membership, role="analyst"
    )
    assert agent.get("/api/v1/contacts").status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/contacts", {"name": "甲", "nmae": "typo"}, "nmae"),
        ("/api/v1/tags/groups", {"name": "组", "color": "x" * 17}, "color"),
        (
            "/api/v1/contacts",
            {"identities": [{"kind": "wechat_openid", "value": "o1", "app_id": "w" * 65}]},
            "identities.0.app_id",
        ),
        (
            "/api/v1/contacts",
            {"identities": [{"kind": "email", "value": "a" * 250 + "@b.cn"}]},
            "identities[0].value",
        ),
    ],
)
def test_unknown_or_over_long_fields_are_422_naming_the_field(cast, api, path, body, field):
    client = api("admin")
    before = db_snapshot()
    response = client.post(path, body)
    assert response.status_code == 422, response.content
    assert error_of(response)["details"]["field"] == field
    assert snapshot_diff(before, db_snapshot()) == []


def test_deleting_a_tag_puts_a_row_on_every_tagged_contacts_timeline(cast, make_contact):
    owner = cast.owner.actor
    group = actions.tag_group_create(workspace=cast.workspace, actor=owner, name="偏好")
    tag = actions.tag_create(workspace=cast.workspace, actor=owner, group=group, name="拿铁")
    tagged = [make_contact(f"客{i}") for i in range(3)]
    untagged = make_contact("无")
    actions.contacts_tag(
        workspace=cast.workspace, actor=owner, contact_ids=[c.pk for c in tagged], add=[tag.pk]
    )
    actions.tag_delete(workspace=cast.workspace, actor=owner, tag=tag)
    rows = TimelineEntry.objects.filter(kind="tag_removed")
    assert sorted(rows.values_list("contact_id", flat=True)) == sorted(c.pk for c in tagged)
    assert all(r.data == {"tags": ["拿铁"]} and r.actor_label == owner.label for r in rows)
    assert all(r.created_at is not None for r in rows)
    assert not TimelineEntry.objects.filter(contact=untagged, kind="tag_removed").exists()


def test_a_job_left_running_by_a_dead_worker_is_run_again(
    cast, make_contact, django_capture_on_commit_callbacks
):
    owner = cast.owner.actor
    group = actions.tag_group_create(workspace=cast.workspace, actor=owner, name="组")
    tag = actions.tag_create(workspace=cast.workspace, actor=owner, group=group, name="VIP")
    make_contact("甲")
    job = Job.objects.create(
        workspace=cast.workspace,
        kind="contacts.bulk_tag",
        params={"filter": {"q": ""}, "add": [tag.pk]},
        status=Job.Status.RUNNING,
        started_at=timezone.now() - datetime.timedelta(hours=1),
        actor_label=owner.label,
        actor_role="owner",
    )
    fresh = Job.objects.create(
        workspace=cast.workspace,
        kind="contacts.bulk_tag",
        params={},
        status=Job.Status.RUNNING,
        started_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_requeue_stale() == 1
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    assert job.result == {"matched": 1, "added": 1, "removed": 0}
    assert fresh.status == Job.Status.RUNNING  # a live worker's job is left alone


def test_createadmin_refuses_a_weak_password(db):
    with pytest.raises(CommandError, match="--password"):
        call_command(
            "createadmin",
            email="a@b.cn",
            password="x",  # noqa: S106 - the point: too weak
            workspace="w",
            role="owner",
        )
    assert not Membership.objects.exists()
