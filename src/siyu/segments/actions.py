"""Every write to segments: create, edit, archive, refresh, static members, built-ins."""

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from siyu.core.audit import Actor, audit
from siyu.core.errors import Conflict, ValidationError
from siyu.core.models import Workspace
from siyu.segments import membership
from siyu.segments.models import (
    LifecycleStage,
    RfmSegment,
    Segment,
    SegmentKind,
    SegmentMember,
    ValueTier,
)
from siyu.segments.rules import RuleContext, referenced_segments, validate_rule

EMPTY_RULE: dict = {"type": "and", "rules": []}


def _clean_name(workspace: Workspace, name: Any, exclude: int | None = None) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise ValidationError("name", "must not be empty")
    if len(name) > 120:
        raise ValidationError("name", "longer than 120 characters")
    taken = Segment.objects.filter(workspace=workspace, name=name, archived_at__isnull=True)
    if taken.exclude(pk=exclude).exists():
        raise Conflict(
            "a segment named %(name)s exists", details={"field": "name"}, params={"name": name}
        )
    return name


def _snapshot(segment: Segment) -> dict:
    return {
        "name": segment.name,
        "kind": segment.kind,
        "rule": segment.rule,
        "realtime": segment.realtime,
        "description": segment.description,
    }


def segment_create(
    *,
    workspace: Workspace,
    actor: Actor,
    name: str,
    rule: Any = None,
    kind: str = SegmentKind.DYNAMIC,
    description: str = "",
    realtime: bool = False,
    contact_ids: Iterable[int] = (),
    refresh: bool = True,
) -> Segment:
    """A dynamic segment (from `rule`) or a static one (from `contact_ids`, already scoped
    to the workspace by the caller). A dynamic segment's members are computed at once."""
    if kind not in (SegmentKind.DYNAMIC, SegmentKind.STATIC):
        raise ValidationError("kind", "expected dynamic or static")
    with transaction.atomic():
        name = _clean_name(workspace, name)
        if kind == SegmentKind.DYNAMIC:
            clean = validate_rule(rule if rule is not None else EMPTY_RULE, RuleContext(workspace))
        else:
            if rule not in (None, {}):
                raise ValidationError("rule", "a static segment has no rule")
            clean, realtime = {}, False
        segment = Segment.objects.create(
            workspace=workspace,
            name=name,
            kind=kind,
            rule=clean,
            realtime=realtime,
            description=description or "",
            created_by=actor.user,
        )
        audit(
            workspace=workspace,
            actor=actor,
            action="segment.create",
            obj=segment,
            after=_snapshot(segment),
        )
        if kind == SegmentKind.STATIC:
            membership.set_static_members(segment, add=contact_ids)
    if kind == SegmentKind.DYNAMIC and refresh:
        membership.refresh_segment(segment)
    return segment


def segment_update(
    *, workspace: Workspace, actor: Actor, segment: Segment, changes: dict[str, Any]
) -> Segment:
    """Change name, description, rule or realtime; a changed rule refreshes at once."""
    if segment.kind == SegmentKind.BUILTIN:
        raise Conflict("built-in segments cannot be edited; change the scoring settings")
    with transaction.atomic():
        before = _snapshot(segment)
        if "name" in changes:
            segment.name = _clean_name(workspace, changes["name"], exclude=segment.pk)
        if "description" in changes:
            segment.description = changes["description"] or ""
        if "rule" in changes:
            if segment.kind == SegmentKind.STATIC:
                raise ValidationError("rule", "a static segment has no rule")
            segment.rule = validate_rule(changes["rule"], RuleContext(workspace, segment.pk))
        if "realtime" in changes:
            if segment.kind == SegmentKind.STATIC and changes["realtime"]:
                raise ValidationError("realtime", "a static segment is never re-evaluated")
            segment.realtime = bool(changes["realtime"])
        segment.updated_at = timezone.now()
        segment.save()
        after = _snapshot(segment)
        if after != before:
            audit(
                workspace=workspace,
                actor=actor,
                action="segment.update",
                obj=segment,
                before=before,
                after=after,
            )
    if after["rule"] != before["rule"]:
        membership.refresh_segment(segment)
    return segment


@transaction.atomic
def segment_archive(*, workspace: Workspace, actor: Actor, segment: Segment) -> Segment:
    """Archive: the segment stops refreshing and its members are released (their history
    stays). Refused while another segment's rule uses it."""
    if segment.kind == SegmentKind.BUILTIN:
        raise Conflict("built-in segments cannot be archived")
    users = [
        s.name
        for s in Segment.objects.filter(workspace=workspace, archived_at__isnull=True).exclude(
            pk=segment.pk
        )
        if segment.pk in referenced_segments(s.rule or EMPTY_RULE)
    ]
    if users:
        raise Conflict(
            "segment is used by %(names)s",
            params={"names": "、".join(users)},
            details={"used_by": users},
        )
    segment.archived_at = timezone.now()
    segment.save(update_fields=["archived_at"])
    SegmentMember.objects.filter(segment=segment).delete()
    audit(workspace=workspace, actor=actor, action="segment.archive", obj=segment)
    return segment


def segment_refresh(*, workspace: Workspace, segment: Segment) -> dict:
    if segment.kind == SegmentKind.STATIC:
        return {"entered": 0, "exited": 0, "size": segment.size}
    return membership.refresh_segment(segment)


def static_members_change(
    *,
    workspace: Workspace,
    actor: Actor,
    segment: Segment,
    add: Iterable[int] = (),
    remove: Iterable[int] = (),
) -> dict:
    """Add or remove contacts (ids already scoped to the workspace) of a static segment."""
    if segment.kind != SegmentKind.STATIC:
        raise Conflict("only a static segment's members are set by hand")
    add, remove = list(add), list(remove)
    with transaction.atomic():
        result = membership.set_static_members(segment, add=add, remove=remove)
        audit(
            workspace=workspace,
            actor=actor,
            action="segment.members",
            obj=segment,
            after={"added": result["entered"], "removed": result["exited"]},
        )
    return result


# -- built-ins ------------------------------------------------------------------------------

BUILTINS: list[tuple[str, str, dict]] = (
    [
        (
            f"stage:{v}",
            str(label),
            {"type": "score", "field": "stage", "op": "eq", "value": v},
        )
        for v, label in LifecycleStage.choices
    ]
    + [
        (f"tier:{v}", str(label), {"type": "score", "field": "tier", "op": "eq", "value": v})
        for v, label in ValueTier.choices
    ]
    + [
        (
            f"rfm:{v}",
            f"RFM·{label}",
            {"type": "score", "field": "rfm_segment", "op": "eq", "value": v},
        )
        for v, label in RfmSegment.choices
    ]
)


def builtins_ensure(workspace: Workspace) -> list[Segment]:
    """Create the workspace's built-in segments that are missing (idempotent)."""
    existing = {
        s.builtin_key: s
        for s in Segment.objects.filter(workspace=workspace, kind=SegmentKind.BUILTIN)
    }
    created = []
    for key, name, rule in BUILTINS:
        if key in existing:
            continue
        taken = Segment.objects.filter(workspace=workspace, name=name, archived_at__isnull=True)
        label = name if not taken.exists() else f"{name}（内置）"
        created.append(
            Segment(
                workspace=workspace,
                name=label,
                kind=SegmentKind.BUILTIN,
                builtin_key=key,
                rule=rule,
                realtime=key.startswith(("stage:", "tier:")),
            )
        )
    if created:
        Segment.objects.bulk_create(created, ignore_conflicts=True)
    order = {key: n for n, (key, _, _) in enumerate(BUILTINS)}
    builtins = Segment.objects.filter(workspace=workspace, kind=SegmentKind.BUILTIN)
    return sorted(builtins, key=lambda s: order.get(s.builtin_key, len(order)))
