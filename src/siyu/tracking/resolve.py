"""Identity resolution: every queued event of a workspace is resolved to one contact,
creating, completing or merging contacts as its identifiers say, and its traits update the
contact. The rules (and the conflict rule) are in docs/tracking.md, "Identity resolution".

One drainer per workspace at a time (a lease on its `IngestState` row); events are taken off
the queue (queue.py) in id order, in batches, each batch in one transaction: an event's
resolution is recorded and its queue row deleted in the same transaction as its effects, so
running twice changes nothing."""

import contextlib
import datetime
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from siyu.contacts.actions.contact import clean_profile
from siyu.contacts.actions.identity import identity_hash
from siyu.contacts.attributes import coerce_value, schema_for
from siyu.contacts.models import PII_KINDS, Identity, IdentityKind, Source
from siyu.contacts.normalize import mask, normalize_identity
from siyu.core import sqlbulk
from siyu.core.audit import Actor
from siyu.core.errors import ValidationError
from siyu.core.models import Workspace
from siyu.tracking import aggregates, bulk, products, queue
from siyu.tracking.known import Pair, RepeatedPair, refresh_statistics, resolve_known
from siyu.tracking.models import Event, IngestState, MessageType, ResolvedEvent
from siyu.tracking.orders import ORDER_EVENTS
from siyu.tracking.pending import read_first, read_pending, read_repeated
from siyu.tracking.pii import PII_KEYS, unseal
from siyu.tracking.routing import is_plain

log = logging.getLogger(__name__)

# Events per transaction, at most (a live trickle makes small batches). Larger batches spread
# every statement and merge over more events, and rewrite each contact's seen times, stats
# and rollup once per batch that names it. On the ingest benchmark (docs/benchmarks.md,
# "Ingest"), PostgreSQL: 200,000 events drained in 8.0-8.9 s in batches of 200,000 against
# 8.9-9.3 s in batches of 100,000 and 9.1-9.5 s of 67,000; 400,000 events in 19.1-20.0 s
# against 21.6-22.0 s. A batch of 200,000 peaks at about 450 MB of the worker's memory
# (575 MB before the events repeating a pair of ids stayed on the server) and holds the
# locks of the contacts it changes for its 5 to 8 s.
# SQLite: 6,900/s at 2,000 and 10,400-10,700/s at 10,000; it stays smaller because a
# transaction there takes the one write lock as it begins (settings: IMMEDIATE), so the
# collection API waits for a whole batch, about a second at 10,000.
BATCH_SIZE = {"postgresql": 200_000}.get(connection.vendor, 10_000)
# Memory per sort or hash in a batch's statements (PostgreSQL): they sort and hash the
# whole batch (its resolutions by contact and time, its daily counts), which spilled to
# disk with the default 4 MB (0.3 s of 10.6 s per 100,000 events on the ingest benchmark).
BATCH_WORK_MEM_MB = 64
# No JIT compilation in a batch's transaction either (PostgreSQL): its statements handle the
# whole batch, so their estimated costs can pass the server's JIT thresholds (100,000 by
# default: reading 100,000 events by primary key is costed at 850,000), and compiling such
# a read took 0.14 s, as long as running it (0.18 s).
LEASE_SECONDS = 300  # a drainer that died frees its workspace after this long
LOOKUP_CHUNK = 900  # parameters per IN (…) query, under SQLite's oldest limit
ACTOR = Actor.system("tracking")

K = IdentityKind
# Which identifier of an event says most surely who sent it, when several contacts hold them.
PRIORITY = [
    K.USER_ID,
    K.ANONYMOUS_ID,
    K.WECOM_EXTERNAL_USERID,
    K.WECHAT_OPENID,
    K.WECHAT_UNIONID,
    K.PHONE,
    K.EMAIL,
]
PHONE_KEYS = frozenset(PII_KEYS - {"email"})  # phone, mobile, phone_number, phonenumber
TRAIT_KINDS = {
    "unionid": K.WECHAT_UNIONID,
    "wechat_unionid": K.WECHAT_UNIONID,
    "external_userid": K.WECOM_EXTERNAL_USERID,
    "wecom_external_userid": K.WECOM_EXTERNAL_USERID,
}
OPENID_KEYS = frozenset({"openid", "wechat_openid"})
# Trait keys that are identifiers or feed the profile: never custom attributes.
RESERVED_KEYS = (
    PII_KEYS
    | OPENID_KEYS
    | set(TRAIT_KINDS)
    | {"wechat_app_id", "name", "gender", "birthday", "address"}
)
GENDERS = {
    "male": "male",
    "m": "male",
    "man": "male",
    "男": "male",
    "female": "female",
    "f": "female",
    "woman": "female",
    "女": "female",
}


def move_events_on_merge(workspace: Workspace, mapping: dict[int, int]) -> None:
    """Merge hook (registered in TrackingConfig.ready): the others' events move to their
    survivors before the others are deleted (their resolutions' contact would otherwise
    become NULL)."""
    sqlbulk.update_from_values(
        ResolvedEvent._meta.db_table,
        [("other", "int"), ("survivor", "int")],
        sorted(mapping.items()),
        "contact_id = v.survivor",
        key="contact_id",
    )


# --- one drainer per workspace -----------------------------------------------------------------


def _claim(workspace_id: int) -> bool:
    """Take the workspace's lease with one atomic UPDATE; False if another drainer has it."""
    IngestState.objects.get_or_create(workspace_id=workspace_id)
    now = timezone.now()
    return bool(
        IngestState.objects.filter(workspace_id=workspace_id)
        .filter(Q(running_until__isnull=True) | Q(running_until__lt=now))
        .update(running_until=now + datetime.timedelta(seconds=LEASE_SECONDS))
    )


def _renew(workspace_id: int) -> None:
    IngestState.objects.filter(workspace_id=workspace_id).update(
        running_until=timezone.now() + datetime.timedelta(seconds=LEASE_SECONDS)
    )


def _release(workspace_id: int) -> None:
    IngestState.objects.filter(workspace_id=workspace_id).update(running_until=None)


# Other apps react to processed events (segments re-evaluate those contacts in real time)
# through a hook called after each batch commits: fn(workspace, event ids). Registered once,
# in the app's AppConfig.ready(); a hook must be cheap when it has nothing to do.
ProcessedHook = Callable[[Workspace, list[int]], None]
PROCESSED_HOOKS: list[ProcessedHook] = []


def register_processed_hook(fn: ProcessedHook) -> ProcessedHook:
    if fn not in PROCESSED_HOOKS:
        PROCESSED_HOOKS.append(fn)
    return fn


def process_pending_events(workspace_id: int, batch_size: int = BATCH_SIZE) -> int:
    """Drain the workspace's queued events in id order; the number processed. Returns at
    once if another drainer holds the workspace (that one loops until nothing is queued).
    An event whose resolution fails unexpectedly stays queued with its `error` (it shows in
    the ingestion lag and is retried by the next run) and does not stop the others."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return 0
    processed, cursor = 0, 0
    while _claim(workspace_id):
        try:
            while True:
                with collector_paused():
                    count, last_id, ids = _process_batch(workspace, cursor, batch_size)
                if not count:
                    break
                for hook in PROCESSED_HOOKS:
                    hook(workspace, ids)
                processed += count
                cursor = last_id
                _renew(workspace_id)
        finally:
            _release(workspace_id)
        # A task enqueued while we held the lease exited at once: look once more, after
        # releasing, so that its events are not left waiting for the next ingest.
        if not queue.has_queued(workspace_id, cursor):
            break
    return processed


@contextlib.contextmanager
def collector_paused():
    """CPython's cycle collector, paused for one batch. A batch keeps several hundred thousand
    objects alive at once (events, identifiers, plan rows), so the collector kept promoting
    them and scanning the whole heap again: 1.0 s of the 2.6 s of Python per 100,000 events
    on the ingest benchmark. What a batch allocates is freed by reference counting when it
    returns, and whatever is cyclic is collected once the collector runs again; the memory a
    batch holds is bounded by its size either way. Left alone if it is already paused."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def identities_by_hash(workspace_id: int, hashes: list[str]) -> list[tuple]:
    """(kind, app id, value hash, contact id) of the workspace's identities with these
    hashes: one query with an array on PostgreSQL, chunks of IN (…) on SQLite."""
    if connection.vendor == "postgresql":
        table = Identity._meta.db_table
        with sqlbulk.pg_cursor() as cursor:
            cursor.execute(
                f"SELECT kind, app_id, value_hash, contact_id FROM {table} "
                "WHERE workspace_id = %s AND value_hash = ANY(%b::text[])",
                [workspace_id, hashes],
            )
            return cursor.fetchall()
    rows = []
    for start in range(0, len(hashes), LOOKUP_CHUNK):
        rows += Identity.objects.filter(
            workspace_id=workspace_id, value_hash__in=hashes[start : start + LOOKUP_CHUNK]
        ).values_list("kind", "app_id", "value_hash", "contact_id")
    return rows


def _process_batch(
    workspace: Workspace, after_id: int, batch_size: int
) -> tuple[int, int, list[int]]:
    """Resolve the next batch of queued events (id > after_id) in one transaction:
    (events looked at, the last id, their ids)."""
    with transaction.atomic():
        ids = queue.next_ids(workspace.pk, after_id, batch_size)
        if not ids:
            return 0, after_id, []
        with aggregates.deferred() as touched:  # orders and merges: recomputed at the end
            sqlbulk.local_settings(BATCH_WORK_MEM_MB, jit=False)
            refresh_statistics()
            with sqlbulk.pipelined():
                # The events that always need planning are read first (with the ids of the
                # product events), and the pass that resolves (and folds) the events of
                # people already known is sent right behind (PostgreSQL): the server runs
                # the pass while Python takes those rows and parses them (sqlbulk.send: a
                # result waits only for itself and what was sent before it). The product
                # events are read after the pass: Python takes them while the server writes
                # the batch.
                first = read_first(workspace.pk, ids, products.PRODUCT_EVENTS)
                known_pass = resolve_known(workspace, ids)
                unplain, product_ids = first()
                product_rows = products.read_events(workspace, product_ids, processed=False)
                parsed = [parse_event(e) for e in unplain]
                known = known_pass()
                # plain events repeating an earlier event's ids are not even read, and the
                # pass read the other plain ones it left
                parsed += map(parse_event, known.planned)
            # (on SQLite all are read here)
            parsed += map(parse_event, read_pending(workspace.pk, known.unread))
            parsed.sort(key=lambda p: p.event.pk)
            catalog: list[dict] = []  # the batch's products, folded while the server writes it

            def fold_products() -> None:
                if not catalog:
                    catalog.append(products.catalog(workspace, product_rows()))

            fell_back = False
            if parsed or known.repeated:
                batch = _Batch(workspace)
                batch.meanwhile.append(fold_products)
                batch.run(parsed, known.repeated, ids)
                fell_back = batch.fell_back
            fold_products()  # if the batch did not
        # what merges and orders touched is rebuilt from raw data (which includes this
        # batch: the resolutions folded it in as they were written)
        aggregates.recompute(workspace, touched)
        if fell_back:  # some events may have stayed queued: count the processed ones only
            products.products_from_batch(workspace, ids)
        else:
            products.record(workspace, catalog[0])
    repeated = sum(pair.count for pair in known.repeated.values())
    return known.resolved + len(parsed) + repeated, ids[-1], ids


# --- reading an event --------------------------------------------------------------------------


@dataclass(frozen=True)
class Ident:
    """One identifier of an event, normalised and hashed as Identity rows are."""

    kind: str
    value: str
    app_id: str
    hash: str
    attach: bool = True  # False: only looked up (an alias's previousId as a user id)
    # (kind, app id, hash): how holders are looked up, kept rather than rebuilt on each use
    key: tuple[str, str, str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.kind, self.app_id, self.hash))

    def __hash__(self) -> int:  # equal identifiers have equal keys; cheaper than all fields
        return hash((self.key, self.attach))

    @property
    def masked(self) -> str:
        return mask(self.kind, self.value)


@dataclass
class Parsed:
    event: Any  # an Event, or a pending.PendingEvent
    idents: list[Ident] = field(default_factory=list)
    traits: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # (identity kinds, the other contact) of each identity conflict, noted when written
    conflicts: list[tuple[str, int]] = field(default_factory=list)


# The keyed hashes of identifiers seen lately, and the identifiers made of raw user ids and
# devices: a batch names the same ones over and over. Deterministic values, so sharing them
# between threads is harmless. Phone numbers and e-mails are not kept as raw keys.
_HASHES: dict[tuple[str, str, str], str] = {}
_IDENTS: dict[tuple[str, Any, str, bool], Ident] = {}
CACHED = 100_000


def _ident(parsed: Parsed, kind: str, raw: Any, where: str, app_id: str = "", attach=True):
    if isinstance(raw, bool) or not isinstance(raw, str | int) or raw == "":
        if raw not in (None, ""):
            parsed.errors.append(f"{where}: not a string")
        return
    app_id = app_id if kind == K.WECHAT_OPENID else ""
    cache_key = None if kind in PII_KINDS else (kind, raw, app_id, attach)
    ident = _IDENTS.get(cache_key) if cache_key else None
    if ident is None:
        try:
            value = normalize_identity(kind, str(raw), where)
        except ValidationError as exc:
            # never write a clear phone number or email into the error
            parsed.errors.append(f"{where}: invalid {kind}" if kind in PII_KINDS else exc.message)
            return
        key = (kind, value, app_id)
        value_hash = _HASHES.get(key)
        if value_hash is None:
            if len(_HASHES) > CACHED:
                _HASHES.clear()
            value_hash = _HASHES[key] = identity_hash(kind, value, app_id)
        ident = Ident(kind, value, app_id, value_hash, attach)
        if cache_key:
            if len(_IDENTS) > CACHED:
                _IDENTS.clear()
            _IDENTS[cache_key] = ident
    if all(i.key != ident.key or i.attach != attach for i in parsed.idents):
        parsed.idents.append(ident)


def parse_event(event: Event) -> Parsed:
    """The identifiers and traits of one event (docs/tracking.md lists them)."""
    parsed = Parsed(event)
    context = event.context if isinstance(event.context, dict) else {}
    traits: dict[str, Any] = {}
    if isinstance(context.get("traits"), dict):
        traits.update({k: (k, v, "context.traits") for k, v in context["traits"].items()})
    if event.type == MessageType.IDENTIFY and isinstance(event.traits, dict):
        traits.update({k: (k, v, "traits") for k, v in event.traits.items()})

    _ident(parsed, K.USER_ID, event.user_id, "userId")
    _ident(parsed, K.ANONYMOUS_ID, event.anonymous_id, "anonymousId")
    if event.type == MessageType.ALIAS and event.previous_id:
        # previousId is usually the anonymous id the user had; it may be an older user id
        _ident(parsed, K.ANONYMOUS_ID, event.previous_id, "previousId")
        _ident(parsed, K.USER_ID, event.previous_id, "previousId", attach=False)

    app = context.get("app") if isinstance(context.get("app"), dict) else {}
    app_id = app.get("id") or (traits.get("wechat_app_id") or (None, None))[1]
    for key, value, where in traits.values():
        lower = key.lower()
        path = f"{where}.{key}"
        if lower in PHONE_KEYS or lower == "email":
            try:
                value = unseal(value)
            except Exception:  # a token of a key no longer configured
                parsed.errors.append(f"{path}: cannot be decrypted")
                continue
            _ident(parsed, K.EMAIL if lower == "email" else K.PHONE, value, path)
        elif lower in TRAIT_KINDS:
            _ident(parsed, TRAIT_KINDS[lower], value, path)
        elif lower in OPENID_KEYS:
            if not app_id or not isinstance(app_id, str):
                parsed.errors.append(f"{path}: openid without an app id, not used")
            else:
                _ident(parsed, K.WECHAT_OPENID, value, path, app_id=app_id)
        else:
            parsed.traits[key] = (value, path)
    return parsed


def profile_from_traits(parsed: Parsed) -> dict[str, Any]:
    """Segment's name, gender, birthday and address.state/city, each checked on its own: a
    bad one is recorded on the event and skipped."""
    wanted: dict[str, tuple[Any, str]] = {}
    for key, (value, path) in parsed.traits.items():
        if key == "name" and value not in (None, ""):
            wanted["name"] = (value if isinstance(value, str) else str(value), path)
        elif key == "gender" and value not in (None, ""):
            gender = GENDERS.get(str(value).strip().lower())
            if gender is None:
                parsed.errors.append(f"{path}: unknown gender")
            else:
                wanted["gender"] = (gender, path)
        elif key == "birthday" and value not in (None, ""):
            wanted["birthday"] = (str(value)[:10], path)  # a date, or a date-time
        elif key == "address" and isinstance(value, dict):
            for part, profile_key in (("state", "province"), ("city", "city")):
                if value.get(part) not in (None, ""):
                    wanted[profile_key] = (str(value[part]), f"{path}.{part}")
    profile: dict[str, Any] = {}
    for key, (value, path) in wanted.items():
        try:
            profile.update(clean_profile({key: value}))
        except ValidationError as exc:
            parsed.errors.append(f"{path}: {exc.message.split(': ', 1)[-1]}")
    return profile


def attributes_from_traits(parsed: Parsed, schema: dict) -> dict[str, Any]:
    """Traits whose key is in the attribute schema, coerced as `clean_attributes` does; one
    that fails is recorded and skipped, the others apply. Other keys are ignored."""
    attrs: dict[str, Any] = {}
    for key, (value, path) in parsed.traits.items():
        if key not in schema or key.lower() in RESERVED_KEYS or value in (None, ""):
            continue
        try:
            attrs[key] = coerce_value(schema[key], value, path)
        except ValidationError as exc:
            parsed.errors.append(exc.message)
    return attrs


SOURCES = frozenset(Source.values)  # Source.values builds a new list on every access


def _source(event: Event) -> str:
    campaign = event.context.get("campaign") if isinstance(event.context, dict) else None
    source = campaign.get("source") if isinstance(campaign, dict) else None
    return source if isinstance(source, str) and source in SOURCES else Source.API


# --- resolving a batch -------------------------------------------------------------------------


class _Batch:
    """Plans one batch: the resolution rules run over the whole batch in memory (who holds
    which identity is read with one query), recording what to write in a `bulk.Plan`
    (contacts to create get temporary ids above every real id, so "the smallest id
    survives" holds for them too); bulk.py then writes the plan with set-based statements.
    If writing the batch fails, each event is planned and written on its own instead, so
    one bad event stays pending with its error and the others go on."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.schema = schema_for(workspace)
        self.actor = ACTOR
        self.fell_back = False  # the batch failed and was written event by event
        # Python work left for the wait while the server writes the batch (bulk.write)
        self.meanwhile: list[Callable[[], None]] = []
        self.reset()

    def reset(self) -> None:
        self.holders: dict[tuple[str, str, str], int] = {}
        self.user_ids: dict[int, set[str]] = {}
        self.merged: dict[int, int] = {}
        self.plan = bulk.Plan()

    # identity cache
    def load(self, parsed: list[Parsed]) -> None:
        hashes = sorted({i.hash for p in parsed for i in p.idents})
        for kind, app_id, value_hash, contact_id in identities_by_hash(self.workspace.pk, hashes):
            self.holders[(kind, app_id, value_hash)] = contact_id
        self._load_user_ids(set(self.holders.values()))

    def _load_user_ids(self, contact_ids: set[int]) -> None:
        missing = sorted(c for c in contact_ids if c not in self.user_ids)
        for cid in missing:
            self.user_ids[cid] = set()
        for start in range(0, len(missing), LOOKUP_CHUNK):
            rows = Identity.objects.filter(
                workspace=self.workspace,
                kind=K.USER_ID,
                contact_id__in=missing[start : start + LOOKUP_CHUNK],
            ).values_list("contact_id", "value_hash")
            for cid, value_hash in rows:
                self.user_ids[cid].add(value_hash)

    def find(self, contact_id: int) -> int:
        while contact_id in self.merged:
            contact_id = self.merged[contact_id]
        return contact_id

    def holder(self, ident: Ident) -> int | None:
        cid = self.holders.get(ident.key)
        return None if cid is None else self.find(cid)

    def uids(self, contact_id: int) -> set[str]:
        if contact_id not in self.user_ids:
            self._load_user_ids({contact_id})
        return self.user_ids[contact_id]

    def remember(self, ident: Ident, contact_id: int) -> None:
        self.holders[ident.key] = contact_id
        if ident.kind == K.USER_ID:
            self.uids(contact_id).add(ident.hash)

    # the batch
    def run(
        self,
        parsed: list[Parsed],
        repeated: dict[Pair, RepeatedPair] | None = None,
        batch_ids: list[int] | None = None,
    ) -> None:
        """Resolve these events (parsed, in id order) and write the plan, which folds them
        into their contacts' aggregates as it records their resolutions; the caller then
        recomputes the contacts that merges and orders touched (`aggregates.deferred`).

        A plain event (see `is_plain`) whose identifiers are all held by one contact at its
        turn takes that contact without being planned: planning it would decide exactly
        that and nothing else.

        `repeated` are plain events of the batch `batch_ids` not read, by pair of ids
        (userId, anonymousId; from known.resolve_known), that an earlier event of `parsed`
        carries. Once the others are planned, each takes the one contact that holds its
        pair (queue.resolve finds them): they were held from that earlier event on, and a
        merge only joins holders. The events of a pair held by two contacts in conflict
        (which no later event mends) or not usable are read and planned after the others,
        as they would have been in turn."""
        repeated = repeated or {}
        self.late = 0  # repeated events planned after the others (the tests count them)
        try:
            with transaction.atomic():
                self.load(parsed)
                for p in parsed:
                    holder = self.sole_holder(p)
                    if holder is None:
                        self.plan_event(p)
                    else:
                        self.plan.attached.append((p.event.pk, holder, p.event.timestamp))
                late = []  # the plan is final now
                for (user, anonymous), pair in sorted(repeated.items()):
                    holder = self.pair_holder(user, anonymous)
                    if holder is None:
                        late.append((user, anonymous))
                    else:
                        self.plan.paired.append((user, anonymous, holder, pair.first, pair.last))
                self.plan.batch_ids = batch_ids or []
                if late:
                    pairs = set(late)
                    planned = [
                        p.event.pk
                        for p in parsed
                        if (p.event.user_id, p.event.anonymous_id) in pairs
                    ]
                    events = read_repeated(self.workspace.pk, self.plan.batch_ids, late, planned)
                    self.late = len(events)
                    for event in events:
                        self.plan_event(parse_event(event))
                # the writes are sent as they are built: the server runs each while Python
                # builds the next (any error fails the batch, which is then written one by one)
                with sqlbulk.pipelined():
                    bulk.write(self.plan, self)
        except Exception:
            log.exception("resolving %d events together failed; one by one", len(parsed))
            self.fell_back = True
            events = [p.event for p in parsed]
            if repeated:
                taken = {e.pk for e in events}
                queued = queue.queued_among(self.workspace.pk, batch_ids or [])
                left = read_pending(self.workspace.pk, [i for i in queued if i not in taken])
                events = sorted([*events, *left], key=lambda e: e.pk)
            self.one_by_one(events)

    def sole_holder(self, p: Parsed) -> int | None:
        """The contact that alone holds every identifier of a plain event without notes."""
        if p.errors or not p.idents or not is_plain(p.event):
            return None
        return self._one_holder(p.idents)

    def pair_holder(self, user: str, anonymous: str) -> int | None:
        """The contact that alone holds this userId and anonymousId, if they are usable."""
        p = Parsed(None)
        _ident(p, K.USER_ID, user, "userId")
        _ident(p, K.ANONYMOUS_ID, anonymous, "anonymousId")
        return None if p.errors or not p.idents else self._one_holder(p.idents)

    def _one_holder(self, idents: list[Ident]) -> int | None:
        holders = {self.holder(i) for i in idents}
        return next(iter(holders)) if len(holders) == 1 and None not in holders else None

    def one_by_one(self, events: list[Event]) -> None:
        for event in events:
            p = parse_event(event)  # afresh: planning the batch added to the errors
            self.reset()
            try:
                with transaction.atomic():
                    self.load([p])
                    self.plan_event(p)
                    bulk.write(self.plan, self)
            except Exception as exc:
                log.exception("resolving event %s failed", event.pk)
                text = "\n".join([*p.errors, f"not processed: {exc}"])[:2000]
                queue.note_failure(self.workspace.pk, event.pk, text)

    def plan_event(self, p: Parsed) -> None:
        contact_id = self.resolve(p)
        self.plan.events.append((p, contact_id))
        if p.event.type == MessageType.TRACK and p.event.event in ORDER_EVENTS:
            self.plan.orders.append((p, contact_id))

    def resolve(self, p: Parsed) -> int | None:
        """The contact of one event, after creating, completing or merging contacts."""
        found = {i: h for i in p.idents if (h := self.holder(i)) is not None}
        if not found:  # nobody holds its ids yet: a new contact (as below, in fewer steps)
            unheld = [i for i in p.idents if i.attach]
            traits = p.traits
            profile = profile_from_traits(p) if traits else {}
            attrs = attributes_from_traits(p, self.schema) if traits else {}
            if not unheld:
                p.errors.append("no usable identifier: not attached to a contact")
                return None
            return self.create(p, unheld, profile, attrs)
        user = next((i for i in p.idents if i.kind == K.USER_ID and i.attach), None)
        ranked = sorted(found, key=lambda i: PRIORITY.index(i.kind))
        ranked_holders = list(dict.fromkeys(found[i] for i in ranked))

        # The anchor: the contact the event surely belongs to. A userId is authoritative.
        if user is not None and user in found:
            anchor = found[user]
        elif user is not None:
            anchor = next((h for h in ranked_holders if not self.uids(h)), None)
        else:
            anchor = ranked_holders[0] if ranked_holders else None

        group: list[int] = []
        conflicts: list[int] = []
        if anchor is not None:
            group = [anchor]
            group_uids = set(self.uids(anchor))
            if user is not None and user not in found:
                group_uids.add(user.hash)  # it will be attached to the group
            for h in ranked_holders:
                if h == anchor:
                    continue
                # never merge two contacts that each hold a different user id
                if self.uids(h) and group_uids:
                    conflicts.append(h)
                else:
                    group.append(h)
                    group_uids |= self.uids(h)
        else:
            conflicts = ranked_holders

        unheld = [i for i in p.idents if i.attach and i not in found]
        profile = profile_from_traits(p)
        attrs = attributes_from_traits(p, self.schema)

        if not group:
            if not unheld:
                p.errors.append("no usable identifier: not attached to a contact")
                return None
            survivor = self.create(p, unheld, profile, attrs)
        else:
            survivor = min(group)
            for other in sorted(group):
                if other != survivor:
                    self.merge(survivor, other)
            for ident in unheld:
                self.remember(ident, survivor)
                self.plan.ops.append(("attach", survivor, ident))
            if profile or attrs:
                self.plan.ops.append(("update", survivor, profile, attrs))

        for other in conflicts:
            self.conflict(p, survivor, other, [i for i in found if found[i] == other])
        return survivor

    def create(self, p: Parsed, idents: list[Ident], profile: dict, attrs: dict) -> int:
        temp = self.plan.create(_source(p.event), profile, attrs, idents)
        self.user_ids[temp] = set()
        for ident in idents:
            self.remember(ident, temp)
        return temp

    def merge(self, survivor: int, other: int) -> None:
        self.plan.ops.append(("merge", survivor, other))
        self.merged[other] = survivor
        self.uids(survivor).update(self.uids(other))

    def conflict(self, p: Parsed, resolved: int, other: int, contested: list[Ident]) -> None:
        """Two contacts with different user ids meet: no merge, a row on both timelines and
        a note on the event (the contact id is filled in when written)."""
        identities = [{"kind": i.kind, "value": i.masked} for i in contested]
        kinds = ", ".join(sorted({i.kind for i in contested}))
        p.conflicts.append((kinds, other))
        self.plan.ops.append(("conflict", resolved, other, identities, p.event.message_id))
