"""Set-based inserts of synthetic people: contacts, identities (normalised, encrypted and
hashed by the real `build_identity`), tags, consent and timeline rows, with bulk_create.

A per-workspace counter `k` makes every identity unique (see `people`); its high-water mark
is kept in the audit rows of the loads themselves (`demo.load`, `demo.seed`)."""

import datetime
import random
from dataclasses import dataclass, field

from django.db import connection, models

from siyu.accounts.models import Membership
from siyu.accounts.permissions import Role
from siyu.contacts.actions.identity import build_identity
from siyu.contacts.attributes import coerce_value, schema_for
from siyu.contacts.models import Consent, Contact, ContactTag, Identity, Tag, TimelineEntry
from siyu.core import sqlbulk
from siyu.core.errors import ValidationError
from siyu.core.models import AuditLog, Workspace
from siyu.demo import data
from siyu.demo.people import Person, make_person

COUNTER_ACTIONS = ("demo.load", "demo.seed")
BULK_SIZE = 2000  # rows per INSERT (SQLite caps it lower by its parameter limit)


def next_counter(workspace: Workspace) -> int:
    """The first counter value no earlier load of this workspace has used."""
    ends = AuditLog.objects.filter(workspace=workspace, action__in=COUNTER_ACTIONS).values_list(
        "after", flat=True
    )
    return max((a.get("counter_end", 0) for a in ends if isinstance(a, dict)), default=0)


@dataclass
class Pool:
    """What a workspace offers the generator: advisors to own contacts, tags, its schema."""

    workspace: Workspace
    advisors: list[int]
    advisor_by_store: dict[str, int]
    staff_label: dict[int, str]
    staff_name: dict[int, str]
    tag_ids: dict[tuple[str, str], int]
    schema: dict
    assigner: str = "system"

    @classmethod
    def of(cls, workspace: Workspace) -> "Pool":
        members = list(
            Membership.objects.filter(workspace=workspace).select_related("staff").order_by("id")
        )
        agents = [m for m in members if m.role == Role.AGENT] or [
            m for m in members if m.role in (Role.OWNER, Role.ADMIN, Role.OPERATOR)
        ]
        by_email = {m.staff.email: m.staff_id for m in agents}
        operators = [m.staff.email for m in members if m.role == Role.OPERATOR]
        return cls(
            workspace=workspace,
            advisors=[m.staff_id for m in agents],
            advisor_by_store={
                s.tag: by_email[s.advisor_email] for s in data.STORES if s.advisor_email in by_email
            },
            staff_label={m.staff_id: m.staff.email for m in members},
            staff_name={m.staff_id: m.staff.display_name for m in members},
            tag_ids={
                (t.group.name, t.name): t.pk
                for t in Tag.objects.filter(workspace=workspace).select_related("group")
            },
            schema=schema_for(workspace),
            assigner=operators[0] if operators else "system",
        )

    def owner_for(self, person: Person) -> int | None:
        if person.owner_hint < 0 or not self.advisors:
            return None
        own = self.advisor_by_store.get(person.store)
        if own is not None:
            return own
        return self.advisors[int(person.owner_hint * len(self.advisors)) % len(self.advisors)]

    def attributes_for(self, person: Person) -> dict:
        out = {}
        for key, value in person.attributes.items():
            definition = self.schema.get(key)
            if definition is None:
                continue
            try:
                out[key] = coerce_value(definition, value, key)
            except ValidationError:
                continue
        return out


@dataclass
class Counts:
    contacts: int = 0
    identities: int = 0
    tags: int = 0
    consents: int = 0
    timeline: int = 0
    skipped: int = 0  # counter values dropped because an identity already existed

    @property
    def rows(self) -> int:
        return self.contacts + self.identities + self.tags + self.consents + self.timeline

    def add(self, other: "Counts") -> None:
        for name in ("contacts", "identities", "tags", "consents", "timeline", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        return {
            "contacts": self.contacts,
            "identities": self.identities,
            "tags": self.tags,
            "consents": self.consents,
            "timeline": self.timeline,
        }


@dataclass
class _Built:
    person: Person
    identities: list[Identity] = field(default_factory=list)


def _build(workspace: Workspace, person: Person) -> _Built:
    return _Built(
        person,
        [
            build_identity(workspace, None, kind, value, app_id)
            for kind, value, app_id in person.identities
        ],
    )


def _taken(workspace: Workspace, built: list[_Built]) -> set[tuple[str, str, str]]:
    """The (kind, app_id, hash) of these identities that the workspace already has."""
    hashes = [i.value_hash for b in built for i in b.identities]
    chunk = 900 if connection.vendor == "sqlite" else 5000
    taken: set[tuple[str, str, str]] = set()
    for start in range(0, len(hashes), chunk):
        taken.update(
            Identity.objects.filter(
                workspace=workspace, value_hash__in=hashes[start : start + chunk]
            ).values_list("kind", "app_id", "value_hash")
        )
    return taken


def insert_batch(
    pool: Pool,
    *,
    start: int,
    count: int,
    rng: random.Random,
    now: datetime.datetime,
    rich: bool,
    precheck: bool,
) -> tuple[int, Counts]:
    """Generate and insert `count` people from counter `start`; return (next counter, counts).
    With `precheck`, people whose identity already exists are skipped and replaced (the
    fast path without it lets the unique constraint raise instead). Call inside a transaction."""
    workspace = pool.workspace
    counts = Counts()
    k = start
    kept: list[_Built] = []
    while len(kept) < count:
        fresh = [_build(workspace, make_person(k + i, rng, now)) for i in range(count - len(kept))]
        k += len(fresh)
        if precheck:
            taken = _taken(workspace, fresh)
            ok = [
                b
                for b in fresh
                if not any((i.kind, i.app_id, i.value_hash) in taken for i in b.identities)
            ]
            counts.skipped += len(fresh) - len(ok)
            fresh = ok
        kept += fresh
    _insert(pool, kept, counts, rich=rich)
    return k, counts


def _save(model: type[models.Model], objs: list, *, with_ids: bool = False) -> None:
    """Insert model instances: COPY on PostgreSQL (several times faster than INSERT for
    large batches; ids are taken from the table's sequence first), bulk_create elsewhere."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=BULK_SIZE)
        return
    from psycopg.types.json import Jsonb

    table = model._meta.db_table
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if with_ids:
            for obj, pk in zip(objs, sqlbulk.reserve_ids(model, len(objs)), strict=True):
                obj.pk = pk
        fields = [f for f in model._meta.concrete_fields if with_ids or not f.primary_key]
        json = {f.attname for f in fields if isinstance(f, models.JSONField)}
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row(
                    [
                        Jsonb(getattr(obj, f.attname))
                        if f.attname in json
                        else getattr(obj, f.attname)
                        for f in fields
                    ]
                )


def _insert(pool: Pool, built: list[_Built], counts: Counts, *, rich: bool) -> None:
    workspace = pool.workspace
    ws_id = workspace.pk
    built.sort(key=lambda b: b.person.created_at)  # ids grow with creation time, as in life
    contacts = []
    for b in built:
        p = b.person
        contacts.append(
            Contact(
                workspace_id=ws_id,
                name=p.name,
                gender=p.gender,
                birthday=p.birthday,
                province=p.province,
                city=p.city,
                source=p.source,
                owner_id=pool.owner_for(p),
                attributes=pool.attributes_for(p),
                first_seen_at=p.first_seen_at,
                last_seen_at=p.last_seen_at,
                created_at=p.created_at,
                updated_at=max([p.created_at, *(at for _k, _d, at in p.later)]),
            )
        )
    _save(Contact, contacts, with_ids=True)

    identities, links, consents, timeline = [], [], [], []
    minute = datetime.timedelta(minutes=2)
    for contact, b in zip(contacts, built, strict=True):
        p = b.person
        for identity in b.identities:
            identity.contact = contact
            identity.created_at = p.created_at
            identities.append(identity)
        tag_ids = [pool.tag_ids[t] for t in p.tags if t in pool.tag_ids]
        links += [
            ContactTag(workspace_id=ws_id, contact=contact, tag_id=t, created_at=p.created_at)
            for t in tag_ids
        ]
        consents += [
            Consent(
                workspace_id=ws_id,
                contact=contact,
                channel=channel,
                status=status,
                source=source,
                recorded_at=at,
            )
            for channel, status, source, at in p.consents
        ]
        events = [("created", {"source": p.source}, p.created_by, p.created_at)]
        if rich:
            events += _story(pool, contact, p, tag_ids, minute)
            events.sort(key=lambda e: e[3])
        timeline += [
            TimelineEntry(
                workspace_id=ws_id,
                contact=contact,
                kind=kind,
                data=payload,
                actor_label=actor,
                created_at=at,
            )
            for kind, payload, actor, at in events
        ]
    _save(Identity, identities)
    _save(ContactTag, links)
    _save(Consent, consents)
    _save(TimelineEntry, timeline)
    counts.contacts += len(contacts)
    counts.identities += len(identities)
    counts.tags += len(links)
    counts.consents += len(consents)
    counts.timeline += len(timeline)


def _story(pool: Pool, contact: Contact, p: Person, tag_ids: list[int], step) -> list:
    """The demo's richer timeline: assignment, tagging, consent, later profile updates."""
    owner_label = pool.staff_label.get(contact.owner_id, "system")
    events = []
    if contact.owner_id and p.source != "store_qr":
        name = pool.staff_name.get(contact.owner_id, "")
        events.append(("owner_changed", {"owner": name}, pool.assigner, p.created_at + step * 30))
    names = [name for group, name in p.tags if (group, name) in pool.tag_ids]
    if tag_ids:
        events.append(("tag_added", {"tags": names}, owner_label, p.created_at + step))
    for channel, status, source, at in p.consents:
        events.append(
            ("consent", {"channel": channel, "status": status, "source": source}, "system", at)
        )
    for kind, payload, at in p.later:
        events.append((kind, payload, "system:member-level", at))
    return events
