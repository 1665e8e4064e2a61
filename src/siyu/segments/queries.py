"""Reads for segments: lists, one segment, members, history, a rule's preview count and a
contact's segments and scores. Every query is scoped by workspace (and, for agents, to the
contacts they own)."""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from siyu.accounts.permissions import is_own_only
from siyu.contacts.queries import get_contact_for, visible_contacts
from siyu.core.audit import Actor
from siyu.core.errors import NotFound
from siyu.core.models import Workspace
from siyu.core.paging import newest_first_page
from siyu.segments.compiler import segment_queryset
from siyu.segments.models import (
    ContactScore,
    Segment,
    SegmentChange,
    SegmentMember,
    SegmentSize,
)
from siyu.segments.rules import RuleContext, validate_rule


def segments(workspace: Workspace, kind: str = "") -> QuerySet[Segment]:
    qs = Segment.objects.filter(workspace=workspace, archived_at__isnull=True)
    return qs.filter(kind=kind) if kind else qs


def get_segment_for(workspace: Workspace, segment_id: Any) -> Segment:
    try:
        segment_id = int(segment_id)
    except (TypeError, ValueError) as exc:
        raise NotFound("segment not found") from exc
    segment = segments(workspace).filter(pk=segment_id).select_related("workspace").first()
    if segment is None:
        raise NotFound("segment not found")
    return segment


def preview(workspace: Workspace, rule: Any, actor: Actor, segment_id: int | None = None) -> dict:
    """How many contacts a rule selects now (validated first: a bad rule is a 422), and a
    few of them. Agents count and see only their own contacts."""
    clean = validate_rule(rule, RuleContext(workspace, segment_id))
    qs = segment_queryset(workspace, clean, timezone.now())
    if is_own_only(actor.role):
        qs = qs.filter(pk__in=visible_contacts(workspace, actor).values("pk"))
    return {
        "count": qs.count(),
        "sample": list(qs.order_by("-id").values("id", "name")[:10]),
        "rule": clean,
    }


def member_page(
    workspace: Workspace, actor: Actor, segment: Segment, cursor: str, limit: int
) -> tuple[list[SegmentMember], str | None]:
    """Members, newest first; agents see their own contacts only."""
    qs = SegmentMember.objects.filter(workspace=workspace, segment=segment).select_related(
        "contact"
    )
    qs = qs.filter(contact_id__in=visible_contacts(workspace, actor).values("pk"))
    return newest_first_page(qs, "entered_at", cursor, limit)


def change_page(
    workspace: Workspace, actor: Actor, segment: Segment, cursor: str, limit: int
) -> tuple[list[SegmentChange], str | None]:
    qs = SegmentChange.objects.filter(workspace=workspace, segment=segment).select_related(
        "contact"
    )
    qs = qs.filter(contact_id__in=visible_contacts(workspace, actor).values("pk"))
    return newest_first_page(qs, "at", cursor, limit)


def size_history(segment: Segment, limit: int = 500) -> list[SegmentSize]:
    rows = SegmentSize.objects.filter(segment=segment).order_by("-at")[:limit]
    return list(reversed(rows))


def contact_segments(workspace: Workspace, actor: Actor, contact_id: Any) -> list[dict]:
    contact = get_contact_for(workspace, actor, contact_id)
    rows = (
        SegmentMember.objects.filter(
            workspace=workspace, contact=contact, segment__archived_at__isnull=True
        )
        .select_related("segment")
        .order_by("segment__kind", "segment__name")
    )
    return [
        {
            "id": m.segment_id,
            "name": m.segment.name,
            "kind": m.segment.kind,
            "builtin_key": m.segment.builtin_key,
            "entered_at": m.entered_at,
        }
        for m in rows
    ]


def contact_score(workspace: Workspace, actor: Actor, contact_id: Any) -> ContactScore | None:
    contact = get_contact_for(workspace, actor, contact_id)
    return ContactScore.objects.filter(workspace=workspace, contact=contact).first()


def clv_summary(workspace: Workspace) -> dict[str, Any] | None:
    """The latest CLV fit and what it predicts over the pool, or None before any fit."""
    from django.db.models import Avg, Count, Sum

    from siyu.segments.models import ClvFit

    fit = ClvFit.objects.filter(workspace=workspace).order_by("-fitted_at", "-id").first()
    if fit is None:
        return None
    totals = ContactScore.objects.filter(workspace=workspace, p_alive__isnull=False).aggregate(
        buyers=Count("id"),
        p_alive=Avg("p_alive"),
        purchases=Sum("expected_purchases_90d"),
        value_fen=Sum("expected_value_12m_fen"),
    )
    return {
        "fitted_at": fit.fitted_at,
        "until": fit.params.get("until_day"),
        "customers": fit.customers,
        "seconds": fit.seconds,
        "error": fit.error,
        "bgnbd": fit.params.get("bgnbd"),
        "gamma_gamma": fit.params.get("gamma_gamma"),
        "gamma_gamma_error": fit.params.get("gamma_gamma_error", ""),
        "predicted": totals,
    }


def hide_others(workspace: Workspace, actor: Actor, segments: list[Segment]) -> list[Segment]:
    """For agents, who see only their own contacts: each segment's size becomes the number
    of its members they own (one grouped query), so no count of other people's customers
    reaches them. Other roles: unchanged."""
    if not is_own_only(actor.role) or not segments:
        return segments
    from django.db.models import Count

    counts = dict(
        SegmentMember.objects.filter(
            workspace=workspace,
            segment_id__in=[s.pk for s in segments],
            contact_id__in=visible_contacts(workspace, actor).values("pk"),
        )
        .values("segment_id")
        .annotate(n=Count("id"))
        .values_list("segment_id", "n")
    )
    for segment in segments:
        segment.size = counts.get(segment.pk, 0)
    return segments
