"""Reads of the customer pool, always scoped to a workspace and to what the actor may see."""

import datetime
import re
import zoneinfo
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from siyu.accounts.permissions import is_own_only
from siyu.contacts.actions.identity import identity_hash
from siyu.contacts.models import Contact, ContactTag, Identity, IdentityKind, TimelineEntry
from siyu.contacts.normalize import search_candidates
from siyu.core import crypto
from siyu.core.audit import Actor
from siyu.core.errors import NotFound, ValidationError
from siyu.core.models import Workspace
from siyu.core.paging import BAD_CURSOR, decode_cursor, decode_time, encode_cursor

SORTS = {
    "-created": ("-id",),
    "created": ("id",),
    "-last_seen": ("-last_seen_at", "-id"),
    "name": ("name", "id"),
}


def visible_contacts(workspace: Workspace, actor: Actor) -> QuerySet[Contact]:
    qs = Contact.objects.filter(workspace=workspace)
    if is_own_only(actor.role):
        qs = qs.filter(owner=actor.user) if actor.user is not None else qs.none()
    return qs


def get_contact_for(workspace: Workspace, actor: Actor, contact_id: Any) -> Contact:
    """The contact if the actor may see it; 404 otherwise (never a hint that it exists)."""
    try:
        contact_id = int(contact_id)
    except (TypeError, ValueError) as exc:
        raise NotFound("contact not found") from exc
    contact = visible_contacts(workspace, actor).filter(pk=contact_id).first()
    if contact is None:
        raise NotFound("contact not found")
    return contact


_OPENID_LIKE = re.compile(r"^(?!\d+$)[A-Za-z0-9_-]+$")


def openid_app_ids(workspace: Workspace) -> list[str]:
    """The app ids of stored openids, by a loose index scan: one probe of identity_unique
    per app id (a DISTINCT reads every openid row: 220 ms at a million contacts)."""
    openids = Identity.objects.filter(workspace=workspace, kind=IdentityKind.WECHAT_OPENID)
    found: list[str] = []
    while True:
        rest = openids.filter(app_id__gt=found[-1]) if found else openids
        app_id = rest.order_by("app_id").values_list("app_id", flat=True).first()
        if app_id is None:
            return found
        found.append(app_id)


def identity_matches(workspace: Workspace, q: str) -> list[int]:
    """Contacts whose identity equals the query under any identity kind (exact, by hash)."""
    candidates = search_candidates(q)
    hashes = [identity_hash(kind, value) for kind, value in candidates]
    # An openid's hash includes its app id: try the query under each app id in use, if the
    # query can be an openid at all (names, phones and emails cannot).
    openids = [
        v for k, v in candidates if k == IdentityKind.WECHAT_OPENID and _OPENID_LIKE.match(v)
    ]
    if openids:
        hashes += [
            identity_hash(IdentityKind.WECHAT_OPENID, v, app_id)
            for app_id in openid_app_ids(workspace)
            for v in openids
        ]
    return list(
        Identity.objects.filter(workspace=workspace, value_hash__in=hashes).values_list(
            "contact_id", flat=True
        )[:100]
    )


@dataclass
class ContactFilter:
    q: str = ""
    tag_id: int | None = None
    source: str = ""
    owner_id: int | None = None
    sort: str = "-created"
    segment_id: int | None = None  # members of this segment (e.g. to export them)

    def sealed(self) -> dict[str, Any]:
        """The filter as job parameters. The search text may be a phone or an email, so it
        is stored encrypted like all PII at rest."""
        data = asdict(self)
        q = data.pop("q")
        data["q_enc"] = crypto.encrypt(q) if q else ""
        return data

    @classmethod
    def unsealed(cls, data: dict[str, Any]) -> "ContactFilter":
        data = dict(data)
        q_enc = data.pop("q_enc", "")
        data["q"] = crypto.decrypt(q_enc) if q_enc else data.get("q", "")
        return cls(**data)

    def apply(self, workspace: Workspace, qs: QuerySet[Contact]) -> QuerySet[Contact]:
        if self.q.strip():
            q = self.q.strip()
            ids = identity_matches(workspace, q)
            # Names match by prefix so the (workspace, name) index serves the search.
            cond = Q(name__startswith=q)
            if ids:
                cond |= Q(pk__in=ids)
            qs = qs.filter(cond)
        if self.tag_id:
            qs = qs.filter(
                Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag_id=self.tag_id))
            )
        if self.source:
            qs = qs.filter(source=self.source)
        if self.owner_id == 0:
            qs = qs.filter(owner__isnull=True)
        elif self.owner_id:
            qs = qs.filter(owner_id=self.owner_id)
        if self.segment_id:
            from siyu.segments.models import SegmentMember  # segments builds on contacts

            members = SegmentMember.objects.filter(
                workspace=workspace, segment_id=self.segment_id, contact=OuterRef("pk")
            )
            qs = qs.filter(Exists(members))
        return qs


def _decode_cursor(cursor: str, sort: str) -> list[Any]:
    values = decode_cursor(cursor, len(SORTS[sort]))
    if sort == "-last_seen":
        values[0] = decode_time(values[0])
    if sort == "name" and not isinstance(values[0], str):
        raise ValidationError("cursor", BAD_CURSOR)
    return values


def _after(sort: str, values: list[Any]) -> Q:
    """Rows strictly after the cursor in `sort` order (keyset paging, no OFFSET)."""
    if sort == "-created":
        return Q(id__lt=values[0])
    if sort == "created":
        return Q(id__gt=values[0])
    if sort == "-last_seen":
        return Q(last_seen_at__lt=values[0]) | Q(last_seen_at=values[0], id__lt=values[1])
    return Q(name__gt=values[0]) | Q(name=values[0], id__gt=values[1])


def _cursor_of(contact: Contact, sort: str) -> str:
    fields = {
        "-created": ["id"],
        "created": ["id"],
        "-last_seen": ["last_seen_at", "id"],
        "name": ["name", "id"],
    }[sort]
    return encode_cursor([getattr(contact, f) for f in fields])


def contact_page(
    qs: QuerySet[Contact], *, sort: str = "-created", cursor: str = "", limit: int = 50
) -> tuple[list[Contact], str | None]:
    if sort not in SORTS:
        raise ValidationError(
            "sort", "expected one of %(choices)s", params={"choices": ", ".join(SORTS)}
        )
    if cursor:
        qs = qs.filter(_after(sort, _decode_cursor(cursor, sort)))
    rows = list(
        qs.order_by(*SORTS[sort])
        .select_related("owner")
        .prefetch_related(
            Prefetch("identities", queryset=Identity.objects.order_by("id")),
            Prefetch("contact_tags", queryset=ContactTag.objects.select_related("tag")),
        )[: limit + 1]
    )
    next_cursor = _cursor_of(rows[limit - 1], sort) if len(rows) > limit else None
    return rows[:limit], next_cursor


def primary_identity(contact: Contact, kind: str) -> Identity | None:
    for identity in contact.identities.all():
        if identity.kind == kind:
            return identity
    return None


def timeline_for(contact: Contact, limit: int = 100) -> list[TimelineEntry]:
    return list(TimelineEntry.objects.filter(contact=contact).order_by("-id")[:limit])


def pool_stats(workspace: Workspace, actor: Actor, days: int = 30) -> dict[str, Any]:
    """Dashboard numbers: size, new this week, by source, and new contacts per day (days in
    the workspace's time zone)."""
    qs = visible_contacts(workspace, actor)
    now = timezone.now()
    tz = zoneinfo.ZoneInfo(workspace.timezone)
    week_ago = now - datetime.timedelta(days=7)
    since = (
        (now - datetime.timedelta(days=days - 1))
        .astimezone(tz)
        .replace(hour=0, minute=0, second=0, microsecond=0)
    )
    from django.db.models.functions import TruncDate

    per_day = dict(
        qs.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    days_list = [(since + datetime.timedelta(days=i)).date() for i in range(days)]
    return {
        "computed_at": now,
        "total": qs.count(),
        "new_week": qs.filter(created_at__gte=week_ago).count(),
        "by_source": list(qs.values("source").annotate(n=Count("id")).order_by("-n")[:12]),
        "daily": [{"day": d.isoformat(), "n": per_day.get(d, 0)} for d in days_list],
        "with_phone": Identity.objects.filter(
            workspace=workspace, kind=IdentityKind.PHONE, contact__in=qs
        )
        .values("contact_id")
        .distinct()
        .count(),
    }
