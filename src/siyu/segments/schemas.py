"""API shapes for segments and scores. A rule is free JSON here: rules.py validates it and
names the path of any problem (422), which pydantic could not do for a recursive tree."""

import datetime
from typing import Any

from ninja import Field, Schema

from siyu.segments.models import ContactScore, Segment
from siyu.tracking.orders import yuan


class SegmentIn(Schema):
    name: str
    description: str = ""
    kind: str = "dynamic"
    rule: dict[str, Any] | None = None
    realtime: bool = False
    contact_ids: list[int] = Field(default_factory=list, max_length=100_000)


class SegmentPatch(Schema):
    name: str | None = None
    description: str | None = None
    rule: dict[str, Any] | None = None
    realtime: bool | None = None


class PreviewIn(Schema):
    rule: dict[str, Any]
    segment_id: int | None = None  # when editing: its own id, for the cycle check


class PreviewOut(Schema):
    count: int
    sample: list[dict[str, Any]]
    rule: dict[str, Any]


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    kind: str
    builtin_key: str
    rule: dict[str, Any]
    realtime: bool
    size: int
    refreshed_at: datetime.datetime | None
    refresh_ms: int | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


class SegmentList(Schema):
    items: list[SegmentOut]
    next: str | None


class RefreshOut(Schema):
    entered: int
    exited: int
    size: int


class MembersIn(Schema):
    add: list[int] = Field(default_factory=list, max_length=100_000)
    remove: list[int] = Field(default_factory=list, max_length=100_000)


class MemberOut(Schema):
    contact_id: int
    name: str
    entered_at: datetime.datetime


class MemberList(Schema):
    items: list[MemberOut]
    next: str | None


class ChangeOut(Schema):
    contact_id: int
    name: str
    kind: str
    at: datetime.datetime


class ChangeList(Schema):
    items: list[ChangeOut]
    next: str | None


class SizeOut(Schema):
    at: datetime.datetime
    size: int
    entered: int
    exited: int


class ContactSegmentOut(Schema):
    id: int
    name: str
    kind: str
    builtin_key: str
    entered_at: datetime.datetime


class ScoreOut(Schema):
    stage: str
    stage_label: str
    stage_since: datetime.datetime
    tier: str
    tier_label: str
    tier_since: datetime.datetime
    rfm_r: int | None
    rfm_f: int | None
    rfm_m: int | None
    rfm_segment: str
    rfm_segment_label: str
    p_alive: float | None
    expected_purchases_90d: float | None
    expected_value_12m: str | None
    expected_value_12m_fen: int | None
    computed_at: datetime.datetime
    clv_at: datetime.datetime | None


def segment_out(segment: Segment) -> dict[str, Any]:
    return {
        f: getattr(segment, f)
        for f in (
            "id",
            "name",
            "description",
            "kind",
            "builtin_key",
            "rule",
            "realtime",
            "size",
            "refreshed_at",
            "refresh_ms",
            "created_at",
            "updated_at",
        )
    }


def score_out(score: ContactScore) -> dict[str, Any]:
    value = score.expected_value_12m_fen
    return {
        "stage": score.stage,
        "stage_label": score.get_stage_display(),
        "stage_since": score.stage_since,
        "tier": score.tier,
        "tier_label": score.get_tier_display(),
        "tier_since": score.tier_since,
        "rfm_r": score.rfm_r,
        "rfm_f": score.rfm_f,
        "rfm_m": score.rfm_m,
        "rfm_segment": score.rfm_segment,
        "rfm_segment_label": score.get_rfm_segment_display() if score.rfm_segment else "",
        "p_alive": score.p_alive,
        "expected_purchases_90d": score.expected_purchases_90d,
        "expected_value_12m": None if value is None else yuan(value),
        "expected_value_12m_fen": value,
        "computed_at": score.computed_at,
        "clv_at": score.clv_at,
    }
