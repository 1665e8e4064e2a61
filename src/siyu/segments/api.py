"""REST endpoints for segments (thin: parse, authorise, call) and a contact's segments and
scores. docs/api.md lists them; rules are described in docs/segments.md."""

from django.http import HttpRequest
from ninja import Router, Status

from siyu.accounts.permissions import is_own_only
from siyu.contacts.queries import visible_contacts
from siyu.core.api import allowed
from siyu.core.errors import NotFound
from siyu.core.paging import decode_cursor, encode_cursor
from siyu.segments import actions, catalog, queries
from siyu.segments.schemas import (
    ChangeList,
    ContactSegmentOut,
    MemberList,
    MembersIn,
    PreviewIn,
    PreviewOut,
    RefreshOut,
    ScoreOut,
    SegmentIn,
    SegmentList,
    SegmentOut,
    SegmentPatch,
    SizeOut,
    score_out,
    segment_out,
)

segments_router = Router(tags=["segments"])
contact_segments_router = Router(tags=["segments"])
clv_router = Router(tags=["segments"])


@segments_router.get("", response=SegmentList, summary="List segments")
def list_segments(request: HttpRequest, kind: str = "", cursor: str = "", limit: int = 50):
    """Newest first; `kind` = dynamic, static or builtin."""
    workspace, actor = allowed(request, "segments.view")
    limit = max(1, min(limit, 200))
    qs = queries.segments(workspace, kind).order_by("-id")
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        qs = qs.filter(pk__lt=after)
    rows = list(qs[: limit + 1])
    next_cursor = encode_cursor([rows[limit - 1].pk]) if len(rows) > limit else None
    page = queries.hide_others(workspace, actor, rows[:limit])
    return {"items": [segment_out(s) for s in page], "next": next_cursor}


@segments_router.get("/schema", summary="What a rule may use")
def rule_schema(request: HttpRequest):
    """Node types, fields with their types and operators, choices: what the builder shows."""
    allowed(request, "segments.view")
    return catalog.schema()


@segments_router.post("/preview", response=PreviewOut, summary="Count a rule's contacts")
def preview(request: HttpRequest, payload: PreviewIn):
    """Validates the rule (422 naming its path) and counts the contacts it selects now."""
    workspace, actor = allowed(request, "segments.view")
    return queries.preview(workspace, payload.rule, actor, payload.segment_id)


@segments_router.post("", response={201: SegmentOut}, summary="Create a segment")
def create_segment(request: HttpRequest, payload: SegmentIn):
    """A dynamic segment from `rule` (its members computed at once) or a static one from
    `contact_ids`."""
    workspace, actor = allowed(request, "segments.manage")
    contact_ids = list(
        visible_contacts(workspace, actor)
        .filter(pk__in=payload.contact_ids)
        .values_list("pk", flat=True)
    )
    segment = actions.segment_create(
        workspace=workspace,
        actor=actor,
        name=payload.name,
        description=payload.description,
        kind=payload.kind,
        rule=payload.rule,
        realtime=payload.realtime,
        contact_ids=contact_ids,
    )
    return Status(201, segment_out(segment))


@segments_router.get("/{segment_id}", response=SegmentOut, summary="Get a segment")
def get_segment(request: HttpRequest, segment_id: int):
    workspace, actor = allowed(request, "segments.view")
    segment = queries.get_segment_for(workspace, segment_id)
    return segment_out(queries.hide_others(workspace, actor, [segment])[0])


@segments_router.patch("/{segment_id}", response=SegmentOut, summary="Edit a segment")
def update_segment(request: HttpRequest, segment_id: int, payload: SegmentPatch):
    workspace, actor = allowed(request, "segments.manage")
    segment = queries.get_segment_for(workspace, segment_id)
    changes = payload.model_dump(exclude_unset=True)
    segment = actions.segment_update(
        workspace=workspace, actor=actor, segment=segment, changes=changes
    )
    return segment_out(segment)


@segments_router.delete("/{segment_id}", response={204: None}, summary="Archive a segment")
def archive_segment(request: HttpRequest, segment_id: int):
    workspace, actor = allowed(request, "segments.manage")
    segment = queries.get_segment_for(workspace, segment_id)
    actions.segment_archive(workspace=workspace, actor=actor, segment=segment)
    return Status(204, None)


@segments_router.post("/{segment_id}/refresh", response=RefreshOut, summary="Refresh now")
def refresh_segment(request: HttpRequest, segment_id: int):
    workspace, _ = allowed(request, "segments.manage")
    segment = queries.get_segment_for(workspace, segment_id)
    return actions.segment_refresh(workspace=workspace, segment=segment)


@segments_router.get("/{segment_id}/members", response=MemberList, summary="Members")
def members(request: HttpRequest, segment_id: int, cursor: str = "", limit: int = 50):
    """Newest members first (agents: their own contacts only)."""
    workspace, actor = allowed(request, "segments.view")
    segment = queries.get_segment_for(workspace, segment_id)
    rows, next_cursor = queries.member_page(
        workspace, actor, segment, cursor, max(1, min(limit, 500))
    )
    items = [
        {"contact_id": m.contact_id, "name": m.contact.name, "entered_at": m.entered_at}
        for m in rows
    ]
    return {"items": items, "next": next_cursor}


@segments_router.post("/{segment_id}/members", response=RefreshOut, summary="Set static members")
def change_members(request: HttpRequest, segment_id: int, payload: MembersIn):
    """Add and remove contacts of a static segment; unknown ids are ignored."""
    workspace, actor = allowed(request, "segments.manage")
    segment = queries.get_segment_for(workspace, segment_id)
    visible = visible_contacts(workspace, actor)
    return actions.static_members_change(
        workspace=workspace,
        actor=actor,
        segment=segment,
        add=visible.filter(pk__in=payload.add).values_list("pk", flat=True),
        remove=visible.filter(pk__in=payload.remove).values_list("pk", flat=True),
    )


@segments_router.get("/{segment_id}/changes", response=ChangeList, summary="Entered and left")
def changes(request: HttpRequest, segment_id: int, cursor: str = "", limit: int = 50):
    workspace, actor = allowed(request, "segments.view")
    segment = queries.get_segment_for(workspace, segment_id)
    rows, next_cursor = queries.change_page(
        workspace, actor, segment, cursor, max(1, min(limit, 500))
    )
    items = [
        {"contact_id": c.contact_id, "name": c.contact.name, "kind": c.kind, "at": c.at}
        for c in rows
    ]
    return {"items": items, "next": next_cursor}


@segments_router.get("/{segment_id}/sizes", response=list[SizeOut], summary="Size history")
def sizes(request: HttpRequest, segment_id: int):
    """The size after each refresh (agents, who see only their own contacts: none)."""
    workspace, actor = allowed(request, "segments.view")
    segment = queries.get_segment_for(workspace, segment_id)
    return [] if is_own_only(actor.role) else queries.size_history(segment)


@contact_segments_router.get(
    "/contacts/{contact_id}/segments",
    response=list[ContactSegmentOut],
    summary="A contact's segments",
)
def segments_of_contact(request: HttpRequest, contact_id: int):
    workspace, actor = allowed(request, "contacts.view")
    return queries.contact_segments(workspace, actor, contact_id)


@contact_segments_router.get(
    "/contacts/{contact_id}/score", response=ScoreOut, summary="A contact's stage, tier, RFM, CLV"
)
def score_of_contact(request: HttpRequest, contact_id: int):
    workspace, actor = allowed(request, "contacts.view")
    score = queries.contact_score(workspace, actor, contact_id)
    if score is None:
        raise NotFound("not scored yet")
    return score_out(score)


@clv_router.get("", summary="The latest CLV fit")
def clv_latest(request: HttpRequest):
    """Parameters of the latest BG/NBD + Gamma-Gamma fit and what it predicts over the
    pool (buyers, mean P(alive), expected purchases in 90 days, 12-month value in fen)."""
    workspace, _ = allowed(request, "segments.view")
    summary = queries.clv_summary(workspace)
    if summary is None:
        raise NotFound("no CLV fit yet")
    return summary


@clv_router.post("/fit", response={202: dict}, summary="Refit the CLV model now")
def clv_refit(request: HttpRequest):
    """Queues a fit of the workspace's orders (as the nightly one); poll `GET /clv`."""
    workspace, actor = allowed(request, "scoring.manage")
    from siyu.segments.tasks import fit_clv

    fit_clv.enqueue(workspace.pk, f"api: {actor.label}")
    return Status(202, {"queued": True})
