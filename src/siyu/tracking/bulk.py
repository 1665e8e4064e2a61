"""Writing what identity resolution planned for a batch (resolve.py), with set-based
statements for the whole batch rather than queries per event.

The plan is an ordered list of operations (create a contact, attach an identity, apply
traits, merge, note a conflict) plus, per event, its contact and, per order event, its
contact. `write` replays the operations in order on in-memory contacts (the ones that exist
are read and locked with one query), so later events see what earlier ones did, exactly as
if each were written at once, and writes the net result. New contacts take ids reserved
ahead (a contact created and merged away within the same batch is never inserted: its
identities and events go straight to the survivor), so every row names its contact from the
start, and the writes go in this order:

- merged-away contacts' rows moved with a few statements for all merges
  (contacts.actions.merge.move_owned_rows), then those contacts deleted;
- orders (orders.py, per order event);
- the events' resolutions (contact and notes), recorded as they leave the queue and folded
  into their contacts' seen times and aggregates (queue.resolve), the longest statement,
  which the server runs while Python replays the plan and builds the rest;
- new contacts with one INSERT, changed contacts with one bulk UPDATE, then identities,
  timeline and audit rows with one INSERT each, all built before any is sent.

The caller then recomputes the aggregates of the contacts that merges and orders touched."""

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from siyu.contacts.actions.contact import PROFILE_FIELDS, apply_changes, jsonable
from siyu.contacts.actions.merge import fill_from, move_owned_rows
from siyu.contacts.models import PII_KINDS, Contact, Identity, TimelineEntry
from siyu.core import crypto, sqlbulk
from siyu.core.models import AuditLog
from siyu.tracking import aggregates, queue
from siyu.tracking.orders import ORDER_COMPLETED, apply_order_event, orders_from_events

if TYPE_CHECKING:
    from siyu.tracking.resolve import Ident, Parsed, _Batch

# Temporary ids of contacts a plan creates: above every real id, in creation order.
TEMP_BASE = 1 << 60
# What replaying a plan may change on a contact, with its type for sqlbulk.
SAVED_COLUMNS = [
    ("id", "int"),
    *[(name, "date" if name == "birthday" else "text") for name in PROFILE_FIELDS],
    ("owner_id", "int"),
    ("attributes", "json"),
    ("first_seen_at", "ts"),
    ("last_seen_at", "ts"),
    ("created_at", "ts"),
    ("updated_at", "ts"),
]


@dataclass
class NewContact:
    source: str
    profile: dict[str, Any]
    attrs: dict[str, Any]
    idents: list["Ident"]


@dataclass
class Plan:
    new: dict[int, NewContact] = field(default_factory=dict)
    ops: list[tuple] = field(default_factory=list)
    events: list[tuple["Parsed", int | None]] = field(default_factory=list)
    orders: list[tuple["Parsed", int | None]] = field(default_factory=list)
    # plain events that only take the contact holding their ids (resolve.py, _Batch.run):
    # (event id, contact ref, time), nothing else to write
    attached: list[tuple[int, int, datetime.datetime]] = field(default_factory=list)
    # plain events not even read that repeat a pair of ids (known.py), by pair: (userId,
    # anonymousId, contact ref, their earliest and latest time); queue.resolve finds them
    paired: list[tuple[str, str, int, datetime.datetime, datetime.datetime]] = field(
        default_factory=list
    )
    batch_ids: list[int] = field(default_factory=list)  # the ids of the batch (for `paired`)

    def create(self, source: str, profile: dict, attrs: dict, idents: list["Ident"]) -> int:
        temp = TEMP_BASE + len(self.new)
        self.new[temp] = NewContact(source, profile, attrs, list(idents))
        self.ops.append(("create", temp))
        return temp


def _fields(contact: Contact) -> dict[str, Any]:
    """A contact as the merge audit row shows it."""
    return {
        "id": contact.pk,
        "name": contact.name,
        "source": contact.source,
        "owner_id": contact.owner_id,
        "attributes": contact.attributes,
    }


class _Replay:
    """The plan's operations applied in order to in-memory contacts."""

    def __init__(self, plan: Plan, batch: "_Batch", now: datetime.datetime):
        self.plan, self.batch, self.now = plan, batch, now
        self.workspace = batch.workspace
        self.own_seen: dict[int, tuple[datetime.datetime, datetime.datetime]] = {}
        real = {
            ref
            for op in plan.ops
            if op[0] in ("update", "merge")
            for ref in op[1:3]
            if isinstance(ref, int) and ref < TEMP_BASE
        }
        self.contacts: dict[int, Contact] = {
            c.pk: c
            for c in Contact.objects.select_for_update()
            .filter(workspace=self.workspace, pk__in=sorted(real))
            .order_by("pk")
        }
        self.dirty: set[int] = set()
        self.merged_into: dict[int, int] = {}
        self.identities: list[tuple[int, Ident]] = []
        self.timeline: list[tuple[int, str, dict]] = []
        self.audits: list[tuple[int, str, Any, Any]] = []

    def run(self) -> None:
        """Apply the operations (after the resolutions are sent: the server folds them
        meanwhile)."""
        # each new contact is first seen and last seen by the events that name it directly,
        # and a merge of two widens the survivor's to both: it is inserted after the
        # resolutions fold the batch's seen times in (which finds no row of it to widen)
        times: dict[int, list[datetime.datetime]] = {}
        for ref, ts in [
            *((ref, p.event.timestamp) for p, ref in self.plan.events),
            *((ref, ts) for _, ref, ts in self.plan.attached),
            *((ref, ts) for *_, ref, first, last in self.plan.paired for ts in (first, last)),
        ]:
            if ref is not None and ref >= TEMP_BASE:
                times.setdefault(ref, []).append(ts)
        self.own_seen = {ref: (min(seen), max(seen)) for ref, seen in times.items()}
        for op in self.plan.ops:
            getattr(self, "_" + op[0])(*op[1:])

    def _create(self, temp: int) -> None:
        new = self.plan.new[temp]
        profile = {"source": new.source, **new.profile}
        first, last = self.own_seen.get(temp, (self.now, self.now))
        self.contacts[temp] = Contact(
            workspace=self.workspace,
            attributes=dict(new.attrs),
            first_seen_at=first,
            last_seen_at=last,
            created_at=self.now,
            updated_at=self.now,
            **profile,
        )
        self.identities += [(temp, i) for i in new.idents]
        self.timeline.append((temp, "created", {"source": new.source}))
        after = {**jsonable(profile), "attributes": new.attrs, "tags": []}
        self.audits.append((temp, "contact.create", None, after))

    def _attach(self, ref: int, ident: "Ident") -> None:
        self.identities.append((ref, ident))
        self.timeline.append((ref, "identity_added", {"kind": ident.kind, "value": ident.masked}))

    def _update(self, ref: int, profile: dict, attrs: dict) -> None:
        """contact_update's rules: only what differs is written, with one timeline row."""
        contact = self.contacts[ref]
        before, after = apply_changes(contact, profile, attrs)
        if not after:
            return
        contact.updated_at = self.now
        self.dirty.add(ref)
        self.timeline.append((ref, "updated", {"fields": sorted(after)}))
        self.audits.append((ref, "contact.update", jsonable(before), jsonable(after)))

    def _merge(self, survivor: int, other: int) -> None:
        keep, gone = self.contacts[survivor], self.contacts[other]
        before = {"survivor": _fields(keep), "other": _fields(gone)}
        fill_from(keep, gone)
        keep.updated_at = self.now
        self.dirty.add(survivor)
        self.merged_into[other] = survivor
        if other < TEMP_BASE:  # a contact created in this batch never existed: no rows
            data = {"other_id": other, "other_name": gone.name or "-"}
            self.timeline.append((survivor, "merged", data))
            self.audits.append((survivor, "contact.merge", before, _fields(keep)))

    def _conflict(self, resolved: int, other: int, identities: list, message_id: str) -> None:
        for mine, theirs in ((resolved, other), (other, resolved)):
            data = {"other_id": theirs, "identities": identities, "message_id": message_id}
            self.timeline.append((mine, "identity_conflict", data))


def write(plan: Plan, batch: "_Batch") -> None:
    if not plan.events and not plan.attached and not plan.paired:
        return
    workspace, actor, now = batch.workspace, batch.actor, timezone.now()
    replay = _Replay(plan, batch, now)  # reads and locks the contacts the plan changes
    # the new contacts that survive the batch get their ids first (a merge planned is final:
    # batch.find), so that every row can name its contact before any contact is written
    temps = [t for t in plan.new if batch.find(t) == t]
    real = dict(zip(temps, sqlbulk.reserve_ids(Contact, len(temps)), strict=True))

    def cid(ref: int | None) -> int | None:
        if ref is None:
            return None
        ref = batch.find(ref)
        return real.get(ref, ref)

    gone = {o: cid(o) for o in batch.merged if o < TEMP_BASE}
    move_owned_rows(workspace, gone)  # identities, tags, consent, timeline, events, orders
    Contact.objects.filter(workspace=workspace, pk__in=sorted(gone)).delete()
    order_errors = _write_orders(workspace, actor, plan, cid)

    # What comes above reads from the database, what comes below only writes. The
    # resolutions are sent first: recording them folds the batch into its contacts' seen
    # times and aggregates, the longest statement of the batch, which the server runs
    # while Python replays the plan and builds the other rows (the caller writes under
    # sqlbulk.pipelined). Contacts written after it widen their seen times, never narrow.
    pairs = [(user, device, cid(ref)) for user, device, ref, _, _ in plan.paired]
    resolutions = _resolutions(plan, cid, order_errors)
    new_from = min(real.values(), default=aggregates.NO_NEW_CONTACTS)
    queue.resolve(workspace, resolutions, now, (plan.batch_ids, pairs), new_from)
    replay.run()
    new = [replay.contacts[t] for t in temps]
    for t, contact in zip(temps, new, strict=True):
        contact.pk = real[t]
    changed = [
        replay.contacts[r] for r in sorted(replay.dirty) if r < TEMP_BASE and batch.find(r) == r
    ]
    with sqlbulk.held():  # all built before any is sent (they queue behind the fold)
        sqlbulk.insert_rows(Contact, new, with_ids=True)
        save_contacts(changed)
        sqlbulk.insert_plain(
            Identity, [_identity(workspace.pk, cid(ref), i) for ref, i in replay.identities]
        )
        _write_history(replay, batch, cid, now)
        # and before they are sent, while the server folds: sending waits for it
        while batch.meanwhile:
            batch.meanwhile.pop(0)()


def _write_orders(workspace, actor, plan: Plan, cid) -> dict[int, list[str]]:
    """The plan's order events: completions together, then refunds one by one (after their
    orders exist). Returns the notes of each order event, by id() of its Parsed."""
    order_errors: dict[int, list[str]] = {}
    orders_from_events(
        workspace,
        actor,
        [
            (p.event, cid(ref), order_errors.setdefault(id(p), []))
            for p, ref in plan.orders
            if p.event.event == ORDER_COMPLETED
        ],
    )
    for p, ref in plan.orders:
        if p.event.event != ORDER_COMPLETED:
            apply_order_event(
                workspace, actor, p.event, cid(ref), order_errors.setdefault(id(p), [])
            )
    return order_errors


def _resolutions(plan: Plan, cid, order_errors: dict[int, list[str]]) -> list[queue.Resolution]:
    """Every event's contact and notes (queue.Resolution)."""
    rows = []
    for p, ref in plan.events:
        notes = [*p.errors]
        notes += [
            f"identity_conflict: {kinds} held by contact {cid(other)} (not merged)"
            for kinds, other in p.conflicts
        ]
        notes += order_errors.get(id(p), [])
        rows.append((p.event.pk, cid(ref), "\n".join(notes), p.event.timestamp))
    rows += [(event_id, cid(ref), "", ts) for event_id, ref, ts in plan.attached]
    return rows


def _write_history(replay: _Replay, batch: "_Batch", cid, now: datetime.datetime) -> None:
    """The batch's timeline and audit rows, but none for a contact it created and merged
    away (which never existed)."""
    workspace_id, actor = batch.workspace.pk, batch.actor
    folded = {t for t in replay.plan.new if t in replay.merged_into}
    sqlbulk.insert_plain(
        TimelineEntry,
        [
            {
                "workspace_id": workspace_id,
                "contact_id": cid(ref),
                "kind": kind,
                "data": _with_ids(data, cid),
                "actor_label": actor.label,
                "created_at": now,
            }
            for ref, kind, data in replay.timeline
            if not (kind == "created" and ref in folded)
        ],
    )
    actor_id = actor.user.pk if actor.user else None
    sqlbulk.insert_plain(
        AuditLog,
        [
            {
                "workspace_id": workspace_id,
                "actor_id": actor_id,
                "actor_label": actor.label,
                "action": action,
                "object_type": "contact",
                "object_id": str(cid(ref)),
                "before": before,
                "after": after,
                "ip": actor.ip,
                "created_at": now,
            }
            for ref, action, before, after in replay.audits
            if not (action == "contact.create" and ref in folded)
        ],
    )


def _with_ids(data: dict, cid) -> dict:
    """Timeline data naming a contact created in this batch: by its real id."""
    other = data.get("other_id")
    if isinstance(other, int) and other >= TEMP_BASE:
        return {**data, "other_id": cid(other)}
    return data


def save_contacts(contacts: list[Contact]) -> None:
    """Write the fields a plan may change, for many contacts in one statement per 2,000
    (Django's bulk_update is quadratic in the number of rows). Seen times only widen: the
    batch's resolutions may have folded later events in already."""
    table = Contact._meta.db_table
    names = [name for name, _ in SAVED_COLUMNS]
    widened = {
        "first_seen_at": sqlbulk.least(f"{table}.first_seen_at", "v.first_seen_at"),
        "last_seen_at": sqlbulk.greatest(f"{table}.last_seen_at", "v.last_seen_at"),
    }
    sqlbulk.update_from_values(
        table,
        SAVED_COLUMNS,
        [tuple(getattr(c, "pk" if n == "id" else n) for n in names) for c in contacts],
        ", ".join(f"{name} = {widened.get(name, f'v.{name}')}" for name in names[1:]),
    )


def _identity(workspace_id: int, contact_id: int, ident: "Ident") -> dict[str, Any]:
    pii = ident.kind in PII_KINDS
    return {
        "workspace_id": workspace_id,
        "contact_id": contact_id,
        "kind": ident.kind,
        "app_id": ident.app_id,
        "value": "" if pii else ident.value,
        "value_enc": crypto.encrypt(ident.value) if pii else "",
        "value_hash": ident.hash,
        "masked": ident.masked,
    }
