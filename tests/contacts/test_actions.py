"""Actions on the customer pool: every change writes a timeline row and an audit row in the
same transaction, and an error leaves nothing half-written."""

import datetime

import pytest
from django.utils import timezone

from siyu.contacts import actions
from siyu.contacts.actions.contact import IdentityInput
from siyu.contacts.models import (
    AttributeDefinition,
    Consent,
    Contact,
    ContactTag,
    Identity,
    Tag,
    TagGroup,
    TimelineEntry,
)
from siyu.core.errors import Conflict, NotFound, ValidationError
from siyu.core.models import AuditLog
from tests.helpers import db_snapshot, error_of, snapshot_diff


@pytest.fixture
def ws(cast):
    return cast.workspace


@pytest.fixture
def op(cast):
    return cast.operator.actor


def timeline(contact) -> list[str]:
    return list(
        TimelineEntry.objects.filter(contact_id=contact.pk)
        .order_by("pk")
        .values_list("kind", flat=True)
    )


def last_audit(action: str) -> AuditLog:
    return AuditLog.objects.filter(action=action).order_by("-pk").first()


@pytest.fixture
def schema(ws, system_actor):
    define = actions.attribute_define
    define(workspace=ws, actor=system_actor, key="note", label="备注", type="text")
    define(workspace=ws, actor=system_actor, key="points", label="积分", type="number")
    define(workspace=ws, actor=system_actor, key="joined", label="入会", type="date")
    define(workspace=ws, actor=system_actor, key="vip", label="VIP", type="bool")
    define(
        workspace=ws,
        actor=system_actor,
        key="size",
        label="尺码",
        type="choice",
        choices=["S", "M", "L"],
    )


# --- create / update --------------------------------------------------------------------------


def test_create_writes_contact_identities_tags_timeline_and_audit(ws, op, system_actor, schema):
    group = actions.tag_group_create(workspace=ws, actor=system_actor, name="兴趣")
    tag = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="咖啡")
    contact = actions.contact_create(
        workspace=ws,
        actor=op,
        profile={"name": " 张三 ", "gender": "male", "birthday": "1990-05-01", "source": "douyin"},
        attributes={"points": "120", "vip": "是", "size": "M", "note": None},
        identities=[IdentityInput("phone", "13812345678"), IdentityInput("user_id", "u1")],
        tag_ids=[tag.pk, tag.pk],
    )
    contact.refresh_from_db()
    assert contact.name == "张三"
    assert contact.birthday == datetime.date(1990, 5, 1)
    assert contact.attributes == {"points": 120, "vip": True, "size": "M"}
    assert contact.owner_id is None
    assert sorted(contact.identities.values_list("kind", flat=True)) == ["phone", "user_id"]
    assert list(contact.contact_tags.values_list("tag_id", flat=True)) == [tag.pk]
    assert timeline(contact) == ["created", "tag_added"]
    created = TimelineEntry.objects.get(contact=contact, kind="created")
    assert created.data == {"source": "douyin"}
    assert created.actor_label == "operator@brand.test"
    row = last_audit("contact.create")
    assert row.object_type == "contact" and row.object_id == str(contact.pk)
    assert row.actor.email == "operator@brand.test"
    assert row.after["birthday"] == "1990-05-01"
    assert row.after["attributes"] == {"points": 120, "vip": True, "size": "M"}
    assert row.after["tags"] == [tag.pk]


@pytest.mark.parametrize(
    "key, value, stored",
    [
        ("note", "喜欢拿铁", "喜欢拿铁"),
        ("note", 42, "42"),
        ("points", 10, 10),
        ("points", "3.5", 3.5),
        ("points", "7.0", 7),
        ("joined", "2024-02-29", "2024-02-29"),
        ("joined", datetime.date(2023, 1, 2), "2023-01-02"),
        ("vip", True, True),
        ("vip", "false", False),
        ("vip", "否", False),
        ("vip", "1", True),
        ("size", "L", "L"),
    ],
)
def test_typed_attribute_values(key, value, stored, ws, op, schema):
    contact = actions.contact_create(workspace=ws, actor=op, attributes={key: value})
    contact.refresh_from_db()
    assert contact.attributes == {key: stored}


@pytest.mark.parametrize(
    "key, value",
    [
        ("points", "many"),
        ("points", True),
        ("points", "NaN"),
        ("points", "Infinity"),
        ("joined", "2024-02-30"),
        ("joined", "yesterday"),
        ("vip", "maybe"),
        ("size", "XL"),
        ("note", "x" * 2001),
        ("unknown", "x"),
    ],
)
def test_bad_attribute_values_name_the_attribute(key, value, ws, op, schema):
    contact = actions.contact_create(workspace=ws, actor=op, profile={"name": "甲"})
    before = db_snapshot()
    with pytest.raises(ValidationError) as exc:
        actions.contact_update(workspace=ws, actor=op, contact=contact, attributes={key: value})
    assert exc.value.status == 422
    assert exc.value.details["field"] == f"attributes.{key}"
    with pytest.raises(ValidationError):
        actions.contact_create(workspace=ws, actor=op, attributes={key: value})
    assert snapshot_diff(before, db_snapshot()) == []


@pytest.mark.parametrize(
    "field, value",
    [
        ("gender", "other"),
        ("birthday", "1990-13-01"),
        ("birthday", "2999-01-01"),
        ("name", "名" * 121),
        ("city", "c" * 41),
        ("owner", 1),
    ],
)
def test_bad_profile_values_name_the_field(field, value, ws, op):
    before = db_snapshot()
    with pytest.raises(ValidationError) as exc:
        actions.contact_create(workspace=ws, actor=op, profile={field: value})
    assert exc.value.details["field"] == field
    assert snapshot_diff(before, db_snapshot()) == []


def test_update_records_only_changes(ws, op, schema):
    contact = actions.contact_create(
        workspace=ws, actor=op, profile={"name": "甲", "city": "杭州"}, attributes={"points": 5}
    )
    updated = actions.contact_update(
        workspace=ws,
        actor=op,
        contact=contact,
        profile={"name": "甲", "city": "上海", "birthday": "2000-01-01"},
        attributes={"points": 6, "vip": True},
    )
    assert updated.city == "上海"
    assert updated.attributes == {"points": 6, "vip": True}
    entry = TimelineEntry.objects.filter(contact=contact, kind="updated").get()
    assert entry.data == {"fields": ["attributes.points", "attributes.vip", "birthday", "city"]}
    row = last_audit("contact.update")
    assert row.before == {
        "city": "杭州",
        "birthday": None,
        "attributes.points": 5,
        "attributes.vip": None,
    }
    assert row.after == {
        "city": "上海",
        "birthday": "2000-01-01",
        "attributes.points": 6,
        "attributes.vip": True,
    }
    # the same values again: nothing is written
    before = db_snapshot()
    actions.contact_update(
        workspace=ws, actor=op, contact=contact, profile={"city": "上海"}, attributes={"points": 6}
    )
    assert snapshot_diff(before, db_snapshot()) == []


def test_update_none_removes_an_attribute_and_clears_birthday(ws, op, schema):
    contact = actions.contact_create(
        workspace=ws,
        actor=op,
        profile={"birthday": "1999-09-09"},
        attributes={"points": 5, "vip": False},
    )
    actions.contact_update(
        workspace=ws,
        actor=op,
        contact=contact,
        profile={"birthday": None},
        attributes={"points": None},
    )
    contact.refresh_from_db()
    assert contact.birthday is None
    assert contact.attributes == {"vip": False}


def test_update_is_scoped_to_the_workspace(cast, op, make_contact):
    foreign = make_contact(workspace=cast.outsider_workspace)
    with pytest.raises(Contact.DoesNotExist):
        actions.contact_update(
            workspace=cast.workspace, actor=op, contact=foreign, profile={"name": "x"}
        )
    foreign.refresh_from_db()
    assert foreign.name == "张三"


# --- owner ----------------------------------------------------------------------------------


def test_assign_owner_must_be_a_member(cast, ws, op, make_contact):
    contact = make_contact()
    actions.contact_assign(workspace=ws, actor=op, contact=contact, owner_id=cast.agent.staff.pk)
    contact.refresh_from_db()
    assert contact.owner_id == cast.agent.staff.pk
    assert TimelineEntry.objects.get(contact=contact, kind="owner_changed").data == {
        "owner": "agent"
    }
    row = last_audit("contact.assign")
    assert (row.before, row.after) == ({"owner_id": None}, {"owner_id": cast.agent.staff.pk})

    before = db_snapshot()
    for bad in (cast.outsider.staff.pk, 999999):
        with pytest.raises(ValidationError) as exc:
            actions.contact_assign(workspace=ws, actor=op, contact=contact, owner_id=bad)
        assert exc.value.details["field"] == "owner_id"
    with pytest.raises(ValidationError):
        actions.contact_create(workspace=ws, actor=op, owner_id=cast.outsider.staff.pk)
    # assigning the current owner again writes nothing
    actions.contact_assign(workspace=ws, actor=op, contact=contact, owner_id=cast.agent.staff.pk)
    assert snapshot_diff(before, db_snapshot()) == []

    actions.contact_assign(workspace=ws, actor=op, contact=contact, owner_id=None)
    contact.refresh_from_db()
    assert contact.owner_id is None


# --- delete ----------------------------------------------------------------------------------


def test_delete_removes_everything_of_the_contact_and_audits(ws, cast, make_contact, system_actor):
    group = actions.tag_group_create(workspace=ws, actor=system_actor, name="g")
    tag = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="t")
    contact = make_contact(name="将删", phone="13812345678")
    actions.contacts_tag(workspace=ws, actor=system_actor, contact_ids=[contact.pk], add=[tag.pk])
    actions.consent_set(
        workspace=ws, actor=system_actor, contact=contact, channel="sms", status="granted"
    )
    keep = make_contact(name="保留", phone="13900001111")
    pk = contact.pk
    assert TimelineEntry.objects.filter(contact_id=pk).count() == 3
    actions.contact_delete(workspace=ws, actor=cast.admin.actor, contact=contact)
    assert not Contact.objects.filter(pk=pk).exists()
    for model in (Identity, ContactTag, Consent, TimelineEntry):
        assert not model.objects.filter(contact_id=pk).exists(), model
    assert Identity.objects.filter(contact=keep).count() == 1
    assert Tag.objects.filter(pk=tag.pk).exists()
    row = last_audit("contact.delete")
    assert row.object_id == str(pk)
    assert row.actor == cast.admin.staff
    assert row.before == {
        "name": "将删",
        "source": "store_qr",
        "identities": [["phone", "138****5678"]],
    }


# --- consent ---------------------------------------------------------------------------------


def test_consent_latest_wins_with_history_on_the_timeline(ws, op, make_contact):
    contact = make_contact()
    actions.consent_set(
        workspace=ws, actor=op, contact=contact, channel="sms", status="granted", source="门店扫码"
    )
    first = Consent.objects.get(contact=contact, channel="sms")
    assert (first.status, first.source) == ("granted", "门店扫码")
    actions.consent_set(
        workspace=ws, actor=op, contact=contact, channel="sms", status="withdrawn", source="回复TD"
    )
    actions.consent_set(workspace=ws, actor=op, contact=contact, channel="email", status="granted")
    rows = {c.channel: c for c in Consent.objects.filter(contact=contact)}
    assert set(rows) == {"sms", "email"}
    assert (rows["sms"].status, rows["sms"].source) == ("withdrawn", "回复TD")
    assert rows["sms"].recorded_at >= first.recorded_at
    assert rows["email"].source == "operator@brand.test"  # defaults to who recorded it
    history = list(
        TimelineEntry.objects.filter(contact=contact, kind="consent").order_by("pk").values("data")
    )
    assert [h["data"] for h in history] == [
        {"channel": "sms", "status": "granted", "source": "门店扫码"},
        {"channel": "sms", "status": "withdrawn", "source": "回复TD"},
        {"channel": "email", "status": "granted", "source": "operator@brand.test"},
    ]
    audits = AuditLog.objects.filter(action="consent.set").order_by("pk")
    assert [(a.before, a.after) for a in audits][:2] == [
        ({"channel": "sms", "status": None}, {"channel": "sms", "status": "granted"}),
        ({"channel": "sms", "status": "granted"}, {"channel": "sms", "status": "withdrawn"}),
    ]


def test_consent_rejects_unknown_channel_and_status(ws, op, make_contact):
    contact = make_contact()
    before = db_snapshot()
    with pytest.raises(ValidationError) as exc:
        actions.consent_set(
            workspace=ws, actor=op, contact=contact, channel="fax", status="granted"
        )
    assert exc.value.details["field"] == "channel"
    with pytest.raises(ValidationError) as exc:
        actions.consent_set(workspace=ws, actor=op, contact=contact, channel="sms", status="maybe")
    assert exc.value.details["field"] == "status"
    assert snapshot_diff(before, db_snapshot()) == []


# --- tags ------------------------------------------------------------------------------------


def test_tag_group_and_tag_crud_with_uniqueness(cast, ws, op):
    group = actions.tag_group_create(workspace=ws, actor=op, name=" 生命周期 ", color="green")
    assert (group.name, group.color) == ("生命周期", "green")
    with pytest.raises(Conflict) as exc:
        actions.tag_group_create(workspace=ws, actor=op, name="生命周期")
    assert exc.value.details == {"field": "name"}
    # the same name in another workspace is fine
    actions.tag_group_create(workspace=cast.outsider_workspace, actor=op, name="生命周期")
    with pytest.raises(ValidationError) as exc:
        actions.tag_group_create(workspace=ws, actor=op, name="  ")
    assert exc.value.details["field"] == "name"
    with pytest.raises(ValidationError):
        actions.tag_group_create(workspace=ws, actor=op, name="长" * 61)

    new = actions.tag_create(workspace=ws, actor=op, group=group, name="新客")
    active = actions.tag_create(workspace=ws, actor=op, group=group, name="活跃")
    with pytest.raises(Conflict):
        actions.tag_create(workspace=ws, actor=op, group=group, name="新客")
    other_group = actions.tag_group_create(workspace=ws, actor=op, name="渠道")
    actions.tag_create(workspace=ws, actor=op, group=other_group, name="新客")  # other group: ok

    with pytest.raises(Conflict):
        actions.tag_update(workspace=ws, actor=op, tag=active, name="新客")
    renamed = actions.tag_update(workspace=ws, actor=op, tag=active, name="沉默")
    assert renamed.name == "沉默"
    assert (last_audit("tag.update").before, last_audit("tag.update").after) == (
        {"name": "活跃"},
        {"name": "沉默"},
    )
    with pytest.raises(Conflict):
        actions.tag_group_update(workspace=ws, actor=op, group=other_group, name="生命周期")
    actions.tag_group_update(workspace=ws, actor=op, group=other_group, name="来源")
    assert TagGroup.objects.get(pk=other_group.pk).name == "来源"

    actions.tag_delete(workspace=ws, actor=op, tag=new)
    assert not Tag.objects.filter(pk=new.pk).exists()
    actions.tag_group_delete(workspace=ws, actor=op, group=group)
    assert not Tag.objects.filter(group_id=group.pk).exists()
    assert last_audit("taggroup.delete").before == {"name": "生命周期", "tags": ["沉默"]}
    assert [
        a for a in AuditLog.objects.order_by("pk").values_list("action", flat=True) if "tag" in a
    ] == [
        "taggroup.create",
        "taggroup.create",
        "tag.create",
        "tag.create",
        "taggroup.create",
        "tag.create",
        "tag.update",
        "taggroup.update",
        "tag.delete",
        "taggroup.delete",
    ]


def test_contacts_tag_is_idempotent_and_writes_only_changes(ws, op, make_contact):
    group = actions.tag_group_create(workspace=ws, actor=op, name="兴趣")
    coffee = actions.tag_create(workspace=ws, actor=op, group=group, name="咖啡")
    tea = actions.tag_create(workspace=ws, actor=op, group=group, name="茶")
    a, b = make_contact(name="甲"), make_contact(name="乙")
    assert actions.contacts_tag(
        workspace=ws, actor=op, contact_ids=[a.pk, b.pk, a.pk], add=[coffee.pk]
    ) == {"added": 2, "removed": 0}
    before = db_snapshot()
    assert actions.contacts_tag(
        workspace=ws, actor=op, contact_ids=[a.pk, b.pk], add=[coffee.pk]
    ) == {"added": 0, "removed": 0}
    assert snapshot_diff(before, db_snapshot()) == []  # no timeline, no audit
    assert ContactTag.objects.filter(tag=coffee).count() == 2

    result = actions.contacts_tag(
        workspace=ws, actor=op, contact_ids=[a.pk], add=[tea.pk], remove=[coffee.pk]
    )
    assert result == {"added": 1, "removed": 1}
    assert set(a.contact_tags.values_list("tag__name", flat=True)) == {"茶"}
    assert timeline(a) == ["created", "tag_added", "tag_added", "tag_removed"]
    assert timeline(b) == ["created", "tag_added"]
    row = last_audit("contacts.tag")
    assert row.object_id == str(a.pk)
    assert row.after == {
        "contacts": 1,
        "add": ["茶"],
        "remove": ["咖啡"],
        "added": 1,
        "removed": 1,
    }
    # removing a tag nobody has writes nothing
    before = db_snapshot()
    assert actions.contacts_tag(workspace=ws, actor=op, contact_ids=[b.pk], remove=[tea.pk]) == {
        "added": 0,
        "removed": 0,
    }
    assert snapshot_diff(before, db_snapshot()) == []


def test_contacts_tag_ignores_other_workspaces_and_rejects_their_tags(cast, ws, op, make_contact):
    group = actions.tag_group_create(workspace=ws, actor=op, name="兴趣")
    mine = actions.tag_create(workspace=ws, actor=op, group=group, name="咖啡")
    their_group = actions.tag_group_create(workspace=cast.outsider_workspace, actor=op, name="g")
    theirs = actions.tag_create(
        workspace=cast.outsider_workspace, actor=op, group=their_group, name="t"
    )
    a = make_contact()
    foreign = make_contact(workspace=cast.outsider_workspace)
    result = actions.contacts_tag(
        workspace=ws, actor=op, contact_ids=[a.pk, foreign.pk], add=[mine.pk]
    )
    assert result == {"added": 1, "removed": 0}
    assert not ContactTag.objects.filter(contact=foreign).exists()
    before = db_snapshot()
    with pytest.raises(ValidationError) as exc:
        actions.contacts_tag(workspace=ws, actor=op, contact_ids=[a.pk], add=[mine.pk, theirs.pk])
    assert exc.value.details == {"field": "add", "ids": [theirs.pk]}
    with pytest.raises(ValidationError) as exc:
        actions.contacts_tag(workspace=ws, actor=op, contact_ids=[a.pk], remove=[999999])
    assert exc.value.details["field"] == "remove"
    with pytest.raises(ValidationError) as exc:
        actions.contact_create(workspace=ws, actor=op, tag_ids=[theirs.pk])
    assert exc.value.details["field"] == "tag_ids"
    assert snapshot_diff(before, db_snapshot()) == []


# --- attribute schema -----------------------------------------------------------------------


def test_attribute_define_rules(ws, op):
    d = actions.attribute_define(
        workspace=ws, actor=op, key="level", label="", type="choice", choices=[" 金 ", "银", ""]
    )
    assert (d.label, d.choices) == ("level", ["金", "银"])
    assert last_audit("attribute.define").after == {
        "key": "level",
        "type": "choice",
        "choices": ["金", "银"],
    }
    before = db_snapshot()
    cases = [
        ({"key": "Level"}, "key"),
        ({"key": "1st"}, "key"),
        ({"key": ""}, "key"),
        ({"type": "json"}, "type"),
        ({"type": "choice", "choices": []}, "choices"),
    ]
    for override, field in cases:
        args = {"key": "ok_key", "label": "x", "type": "text", **override}
        with pytest.raises(ValidationError) as exc:
            actions.attribute_define(workspace=ws, actor=op, **args)
        assert exc.value.details["field"] == field, override
    with pytest.raises(Conflict):
        actions.attribute_define(workspace=ws, actor=op, key="level", label="x", type="text")
    assert snapshot_diff(before, db_snapshot()) == []
    # non-choice types keep no choices
    t = actions.attribute_define(
        workspace=ws, actor=op, key="memo", label="m", type="text", choices=["a"]
    )
    assert t.choices == []


def test_attribute_delete_keeps_stored_values(ws, op, schema):
    contact = actions.contact_create(workspace=ws, actor=op, attributes={"points": 9})
    d = AttributeDefinition.objects.get(workspace=ws, key="points")
    actions.attribute_delete(workspace=ws, actor=op, definition=d)
    assert not AttributeDefinition.objects.filter(key="points").exists()
    contact.refresh_from_db()
    assert contact.attributes == {"points": 9}
    assert last_audit("attribute.delete").before == {"key": "points", "type": "number"}
    with pytest.raises(ValidationError) as exc:
        actions.contact_update(workspace=ws, actor=op, contact=contact, attributes={"points": 1})
    assert exc.value.details["field"] == "attributes.points"


# --- identities ------------------------------------------------------------------------------


def test_identity_add_and_remove_write_timeline_and_audit(ws, op, make_contact):
    contact = make_contact()
    identity = actions.identity_add(
        workspace=ws, actor=op, contact=contact, kind="email", value="A@B.cn"
    )
    assert TimelineEntry.objects.get(contact=contact, kind="identity_added").data == {
        "kind": "email",
        "value": "a***@b.cn",
    }
    assert last_audit("identity.add").after == {"kind": "email", "value": "a***@b.cn"}
    actions.identity_remove(workspace=ws, actor=op, identity=identity)
    assert not Identity.objects.filter(pk=identity.pk).exists()
    assert TimelineEntry.objects.get(contact=contact, kind="identity_removed").data == {
        "kind": "email",
        "value": "a***@b.cn",
    }
    assert last_audit("identity.remove").before == {"kind": "email", "value": "a***@b.cn"}


def test_reveal_of_a_non_pii_identity_is_not_audited(ws, op, make_contact):
    contact = make_contact(user_id="u-1")
    identity = contact.identities.get()
    before = db_snapshot()
    assert actions.identity_reveal(workspace=ws, actor=op, identity=identity) == "u-1"
    assert snapshot_diff(before, db_snapshot()) == []


# --- merge -----------------------------------------------------------------------------------


@pytest.fixture
def pair(cast, ws, system_actor, schema):
    """Two records of the same person, as a shop meets them twice."""
    group = actions.tag_group_create(workspace=ws, actor=system_actor, name="兴趣")
    coffee = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="咖啡")
    tea = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="茶")
    cake = actions.tag_create(workspace=ws, actor=system_actor, group=group, name="蛋糕")
    survivor = actions.contact_create(
        workspace=ws,
        actor=system_actor,
        profile={"name": "王芳", "source": "store_qr"},
        attributes={"points": 100, "size": "M"},
        identities=[IdentityInput("phone", "13812345678")],
        tag_ids=[coffee.pk, tea.pk],
    )
    other = actions.contact_create(
        workspace=ws,
        actor=system_actor,
        profile={"name": "芳芳", "city": "杭州", "gender": "female", "birthday": "1992-03-04"},
        attributes={"points": 5, "vip": True},
        identities=[
            IdentityInput("email", "fang@example.com"),
            IdentityInput("wechat_openid", "oFang", "wxMini"),
        ],
        tag_ids=[tea.pk, cake.pk],
        owner_id=cast.agent.staff.pk,
    )
    old = timezone.now() - datetime.timedelta(days=3)
    new = timezone.now() - datetime.timedelta(days=1)
    for contact, channel, status, at in [
        (survivor, "sms", "granted", old),  # the other's newer withdrawal wins
        (other, "sms", "withdrawn", new),
        (survivor, "email", "withdrawn", new),  # the survivor's newer decision stays
        (other, "email", "granted", old),
        (other, "wechat", "granted", old),  # only the other has it: moves
    ]:
        actions.consent_set(
            workspace=ws,
            actor=system_actor,
            contact=contact,
            channel=channel,
            status=status,
            source=f"{contact.name}-{channel}",
        )
        Consent.objects.filter(contact=contact, channel=channel).update(recorded_at=at)
    Contact.objects.filter(pk=other.pk).update(first_seen_at=old)
    return survivor, other, {"coffee": coffee, "tea": tea, "cake": cake}


def test_merge_folds_everything_into_the_survivor(cast, ws, op, pair):
    survivor, other, tags = pair
    other_timeline = set(TimelineEntry.objects.filter(contact=other).values_list("pk", flat=True))
    other_first_seen = Contact.objects.get(pk=other.pk).first_seen_at
    merged = actions.contacts_merge(workspace=ws, actor=op, survivor=survivor, other=other)

    assert not Contact.objects.filter(pk=other.pk).exists()
    merged.refresh_from_db()
    # identities moved
    assert sorted(merged.identities.values_list("kind", flat=True)) == [
        "email",
        "phone",
        "wechat_openid",
    ]
    assert not Identity.objects.filter(contact_id=other.pk).exists()
    # tags: union without duplicates
    names = list(merged.contact_tags.values_list("tag__name", flat=True))
    assert sorted(names) == sorted(["咖啡", "茶", "蛋糕"])
    assert ContactTag.objects.filter(tag=tags["tea"]).count() == 1
    # consent: the newer decision wins per channel
    consent = {c.channel: (c.status, c.source) for c in Consent.objects.filter(contact=merged)}
    assert consent == {
        "sms": ("withdrawn", "芳芳-sms"),
        "email": ("withdrawn", "王芳-email"),
        "wechat": ("granted", "芳芳-wechat"),
    }
    # profile and attributes: the survivor's values win, gaps are filled from the other
    assert merged.name == "王芳"
    assert merged.source == "store_qr"
    assert merged.city == "杭州"
    assert merged.gender == "female"
    assert merged.birthday == datetime.date(1992, 3, 4)
    assert merged.owner_id == cast.agent.staff.pk
    assert merged.attributes == {"points": 100, "size": "M", "vip": True}
    assert merged.first_seen_at == other_first_seen
    # timeline moved, plus one "merged" row
    moved = set(TimelineEntry.objects.filter(contact=merged).values_list("pk", flat=True))
    assert other_timeline <= moved
    merged_row = TimelineEntry.objects.filter(contact=merged).order_by("-pk").first()
    assert merged_row.kind == "merged"
    assert merged_row.data == {"other_id": other.pk, "other_name": "芳芳"}
    # audit with before/after
    row = last_audit("contact.merge")
    assert row.object_id == str(survivor.pk)
    assert row.actor == cast.operator.staff
    assert row.before["survivor"]["id"] == survivor.pk
    assert row.before["other"]["id"] == other.pk
    assert row.before["other"]["attributes"] == {"points": 5, "vip": True}
    assert sorted(row.before["other"]["tags"]) == sorted(["茶", "蛋糕"])
    assert sorted(map(tuple, row.after["identities"])) == sorted(
        [("phone", "138****5678"), ("email", "f***@example.com"), ("wechat_openid", "oFang")]
    )
    assert row.after["attributes"] == {"points": 100, "size": "M", "vip": True}


def test_merge_into_itself_or_across_workspaces_is_refused(cast, ws, op, make_contact):
    a = make_contact()
    foreign = make_contact(workspace=cast.outsider_workspace)
    before = db_snapshot()
    with pytest.raises(ValidationError) as exc:
        actions.contacts_merge(workspace=ws, actor=op, survivor=a, other=a)
    assert exc.value.details["field"] == "other_id"
    with pytest.raises((KeyError, NotFound)):  # the foreign contact is not in this workspace
        actions.contacts_merge(workspace=ws, actor=op, survivor=a, other=foreign)
    assert snapshot_diff(before, db_snapshot()) == []


def test_merge_across_workspaces_via_api_is_404(cast, api, make_contact):
    a = make_contact()
    foreign = make_contact(workspace=cast.outsider_workspace)
    client, outsider = api("admin"), api("outsider")
    before = db_snapshot()
    r = client.post(f"/api/v1/contacts/{a.pk}/merge", {"other_id": foreign.pk})
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"
    r = outsider.post(f"/api/v1/contacts/{foreign.pk}/merge", {"other_id": a.pk})
    assert r.status_code == 404
    assert Contact.objects.filter(pk__in=[a.pk, foreign.pk]).count() == 2
    assert snapshot_diff(before, db_snapshot()) == []
    assert not AuditLog.objects.filter(action="contact.merge").exists()


# --- nothing half-written ----------------------------------------------------------------------


def test_create_with_a_taken_email_writes_nothing(api, make_contact):
    existing = make_contact(email="taken@example.com")
    client = api("admin")
    before = db_snapshot()
    r = client.post(
        "/api/v1/contacts",
        {
            "name": "新人",
            "identities": [
                {"kind": "phone", "value": "13700001111"},
                {"kind": "email", "value": "TAKEN@example.com"},
            ],
        },
    )
    assert r.status_code == 409
    assert error_of(r)["details"]["contact_id"] == existing.pk
    assert snapshot_diff(before, db_snapshot()) == []
    assert not Contact.objects.filter(name="新人").exists()


def test_patch_with_a_bad_owner_after_a_good_profile_change_writes_nothing(api, make_contact):
    contact = make_contact(name="原名")
    client = api("admin")
    before = db_snapshot()
    r = client.patch(f"/api/v1/contacts/{contact.pk}", {"name": "新名", "owner_id": 999999})
    assert r.status_code == 422
    assert error_of(r)["details"]["field"] == "owner_id"
    assert snapshot_diff(before, db_snapshot()) == []


def test_an_error_inside_an_action_rolls_back_its_audit_and_timeline(
    ws, op, make_contact, monkeypatch
):
    """If writing the audit row fails, the change itself must not be kept."""
    contact = make_contact()
    from siyu.contacts.actions import consent as consent_module

    def broken_audit(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(consent_module, "audit", broken_audit)
    before = db_snapshot()
    with pytest.raises(RuntimeError):
        actions.consent_set(
            workspace=ws, actor=op, contact=contact, channel="sms", status="granted"
        )
    assert snapshot_diff(before, db_snapshot()) == []


def test_every_contact_action_writes_timeline_and_audit(cast, ws, op, make_contact, schema):
    group = actions.tag_group_create(workspace=ws, actor=op, name="g")
    tag = actions.tag_create(workspace=ws, actor=op, group=group, name="t")
    contact = actions.contact_create(workspace=ws, actor=op, profile={"name": "甲"})
    other = make_contact(name="乙", user_id="u-2")
    steps = [
        (
            lambda: actions.contact_update(
                workspace=ws, actor=op, contact=contact, profile={"city": "苏州"}
            ),
            "updated",
            "contact.update",
        ),
        (
            lambda: actions.contact_assign(
                workspace=ws, actor=op, contact=contact, owner_id=cast.agent.staff.pk
            ),
            "owner_changed",
            "contact.assign",
        ),
        (
            lambda: actions.identity_add(
                workspace=ws, actor=op, contact=contact, kind="user_id", value="u-1"
            ),
            "identity_added",
            "identity.add",
        ),
        (
            lambda: actions.identity_remove(
                workspace=ws, actor=op, identity=contact.identities.get()
            ),
            "identity_removed",
            "identity.remove",
        ),
        (
            lambda: actions.contacts_tag(
                workspace=ws, actor=op, contact_ids=[contact.pk], add=[tag.pk]
            ),
            "tag_added",
            "contacts.tag",
        ),
        (
            lambda: actions.contacts_tag(
                workspace=ws, actor=op, contact_ids=[contact.pk], remove=[tag.pk]
            ),
            "tag_removed",
            "contacts.tag",
        ),
        (
            lambda: actions.consent_set(
                workspace=ws, actor=op, contact=contact, channel="wecom", status="granted"
            ),
            "consent",
            "consent.set",
        ),
        (
            lambda: actions.contacts_merge(workspace=ws, actor=op, survivor=contact, other=other),
            "merged",
            "contact.merge",
        ),
    ]
    for run, kind, action in steps:
        audits = AuditLog.objects.count()
        run()
        last = TimelineEntry.objects.filter(contact=contact).order_by("-pk").first()
        assert last.kind == kind
        assert last.actor_label == "operator@brand.test"
        assert AuditLog.objects.count() == audits + 1, action
        assert AuditLog.objects.order_by("-pk").first().action == action
