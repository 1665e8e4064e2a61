"""API shapes for the customer pool."""

import datetime
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from siyu.contacts.actions.identity import identity_clear_value
from siyu.contacts.models import Contact


class InputSchema(Schema):
    """A request body: an unknown field is an error naming it (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid")


class IdentityIn(InputSchema):
    kind: str = Field(
        ...,
        description="user_id, anonymous_id, phone, email, wechat_openid, "
        "wechat_unionid or wecom_external_userid",
    )
    value: str
    app_id: str = Field("", max_length=64, description="WeChat app id; required for wechat_openid")


class IdentityOut(Schema):
    id: int
    kind: str
    app_id: str
    value: str = Field(..., description="masked (138****1234) unless revealed")
    masked: bool


class TagOut(Schema):
    id: int
    name: str
    group_id: int


class ConsentOut(Schema):
    status: str
    source: str
    recorded_at: datetime.datetime


class ContactIn(InputSchema):
    name: str = ""
    gender: Literal["unknown", "female", "male"] = "unknown"
    birthday: datetime.date | None = None
    province: str = ""
    city: str = ""
    source: str = ""
    owner_id: int | None = None
    attributes: dict[str, Any] = {}
    identities: list[IdentityIn] = []
    tag_ids: list[int] = []


class ContactPatch(InputSchema):
    name: str | None = None
    gender: Literal["unknown", "female", "male"] | None = None
    birthday: datetime.date | None = None
    province: str | None = None
    city: str | None = None
    source: str | None = None
    owner_id: int | None = None
    attributes: dict[str, Any] | None = None


class ContactOut(Schema):
    id: int
    name: str
    gender: str
    birthday: datetime.date | None
    province: str
    city: str
    source: str
    owner_id: int | None
    attributes: dict[str, Any]
    identities: list[IdentityOut]
    tags: list[TagOut]
    consent: dict[str, ConsentOut]
    first_seen_at: datetime.datetime
    last_seen_at: datetime.datetime
    created_at: datetime.datetime
    updated_at: datetime.datetime


class ContactList(Schema):
    items: list[ContactOut]
    next: str | None


class TagChange(InputSchema):
    add: list[int] = []
    remove: list[int] = []


class BulkTagIn(TagChange):
    contact_ids: list[int] = Field(..., max_length=10000)


class TagChangeOut(Schema):
    added: int
    removed: int


class MergeIn(InputSchema):
    other_id: int = Field(..., description="the contact folded into this one (then deleted)")


class ConsentIn(InputSchema):
    channel: Literal["sms", "email", "wecom", "wechat"]
    status: Literal["granted", "withdrawn"]
    source: str = ""


class TimelineOut(Schema):
    id: int
    kind: str
    data: dict[str, Any]
    actor: str
    created_at: datetime.datetime


class TimelineList(Schema):
    items: list[TimelineOut]


class TagGroupIn(InputSchema):
    name: str
    color: str = Field("blue", max_length=16)


class TagGroupOut(Schema):
    id: int
    name: str
    color: str
    tags: list[TagOut]


class TagIn(InputSchema):
    name: str
    group_id: int


class TagRename(InputSchema):
    name: str


class AttributeIn(InputSchema):
    key: str
    label: str = ""
    type: Literal["text", "number", "date", "bool", "choice"]
    choices: list[str] = []


class AttributeOut(Schema):
    key: str
    label: str
    type: str
    choices: list[str]


def contact_out(contact: Contact, reveal: bool = False) -> dict[str, Any]:
    """Serialise a contact whose identities, tags and consents are prefetched or cheap."""
    return {
        "id": contact.pk,
        "name": contact.name,
        "gender": contact.gender,
        "birthday": contact.birthday,
        "province": contact.province,
        "city": contact.city,
        "source": contact.source,
        "owner_id": contact.owner_id,
        "attributes": contact.attributes,
        "identities": [
            {
                "id": i.pk,
                "kind": i.kind,
                "app_id": i.app_id,
                "value": identity_clear_value(i) if (reveal or not i.is_pii) else i.masked,
                "masked": i.is_pii and not reveal,
            }
            for i in contact.identities.all()
        ],
        "tags": [
            {"id": ct.tag.pk, "name": ct.tag.name, "group_id": ct.tag.group_id}
            for ct in contact.contact_tags.all()
        ],
        "consent": {
            c.channel: {"status": c.status, "source": c.source, "recorded_at": c.recorded_at}
            for c in contact.consents.all()
        },
        "first_seen_at": contact.first_seen_at,
        "last_seen_at": contact.last_seen_at,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }
