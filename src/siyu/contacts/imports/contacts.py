"""Contacts from rows: each row is checked on its own, matched to a contact by its identities
(phone, email, user ID, unionid, external_userid) and written through the contact actions,
one savepoint per row, so a bad row leaves nothing behind.

- no contact has any of the row's identities: the contact is created (source "import" unless
  the file says otherwise), with its identities, tags, attributes and owner;
- one contact has them: what the row says and the contact lacks is written — non-empty cells
  overwrite profile fields and attributes, missing identities and tags are added, the owner
  is reassigned; empty cells never clear anything, and the source is only filled when blank;
  a row that would change nothing writes nothing (no timeline, no audit row);
- two contacts have them: the row fails (merge them first).

Reads are batched: one identity lookup and one contact load per batch of rows."""

import re
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import override

from siyu.accounts.models import Membership
from siyu.contacts.actions import (
    contact_assign,
    contact_create,
    contact_update,
    contacts_tag,
    identity_add,
    tag_create,
    tag_group_create,
)
from siyu.contacts.actions.bulk import ContactDraft, contacts_create_many
from siyu.contacts.actions.contact import MAX_LENGTHS, IdentityInput
from siyu.contacts.actions.identity import identity_hash
from siyu.contacts.attributes import coerce_value
from siyu.contacts.imports.mapping import ATTR, IDENTITY_KINDS, fold
from siyu.contacts.imports.rows import (
    Counts,
    Report,
    RowProblem,
    check_cells,
    parse_date,
    unquote,
    whole_number,
)
from siyu.contacts.models import (
    AttributeDefinition,
    AttributeType,
    Contact,
    ContactTag,
    Gender,
    Identity,
    IdentityKind,
    Source,
    Tag,
    TagGroup,
)
from siyu.contacts.normalize import normalize_identity
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError, ValidationError
from siyu.core.models import Workspace

IMPORT_TAG_GROUP = "导入标签"  # where tags named in a file but not defined yet are created
TAG_SPLIT = re.compile(r"[、,，;；|｜\n]+")
GENDERS = {
    **dict.fromkeys(("男", "男性", "先生", "m", "male", "man", "1"), Gender.MALE),
    **dict.fromkeys(("女", "女性", "女士", "f", "female", "woman", "2"), Gender.FEMALE),
    **dict.fromkeys(("未知", "保密", "unknown", "u", "0", "-"), Gender.UNKNOWN),
}
MASKED_KINDS = (IdentityKind.PHONE, IdentityKind.EMAIL)


@dataclass
class Ident:
    kind: str
    value: str
    hash: str
    column: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.hash)


def parse_identity(kind: str, raw: str, column: str) -> Ident:
    """A cell as an identity, or RowProblem (phones and emails quoted as PII). Long numbers a
    spreadsheet wrote in scientific notation are refused (their digits are lost) rather than
    imported as another person's ID; a phone read from a number column ('13800138000.0')
    is taken as its digits."""
    pii = kind if kind in MASKED_KINDS else ""
    text = (
        raw
        if kind == IdentityKind.EMAIL
        else whole_number(raw, column, pii, float_ok=kind == IdentityKind.PHONE)
    )
    try:
        value = normalize_identity(kind, text, column)
    except ValidationError as exc:
        raise RowProblem.of(column, exc, pii=pii) from exc
    return Ident(kind, value, identity_hash(kind, value), column)


@dataclass
class ContactRow:
    row_no: int
    cells: list[str]
    profile: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    identities: list[Ident] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)  # (column, tag text)
    owner_id: int | None = None


@dataclass
class Known:
    """A matched contact and what it already has."""

    contact: Contact
    keys: set[tuple[str, str]]
    tag_ids: set[int]


def _source_labels() -> dict[str, str]:
    """Folded code / Chinese label / English label -> source code."""
    out: dict[str, str] = {}
    for code, label in Source.choices:
        out[fold(code)] = code
        for lang in ("zh-hans", "en"):
            with override(lang):
                out.setdefault(fold(str(label)), code)
    return out


class ContactImporter:
    def __init__(self, workspace: Workspace, actor: Actor, names: list[str], mapping: list[str]):
        self.workspace = workspace
        self.actor = actor
        self.columns = [(i, f, names[i]) for i, f in enumerate(mapping) if f]
        self.attrs = {d.key: d for d in AttributeDefinition.objects.filter(workspace=workspace)}
        self.sources = _source_labels()
        self.today = timezone.localdate()
        self.staff_by_email: dict[str, int] = {}
        self.staff_by_name: dict[str, set[int]] = {}
        for m in Membership.objects.filter(
            workspace=workspace, staff__is_active=True
        ).select_related("staff"):
            self.staff_by_email[m.staff.email.lower()] = m.staff.pk
            for name in {m.staff.name.strip(), m.staff.display_name.strip()} - {""}:
                self.staff_by_name.setdefault(name, set()).add(m.staff.pk)
        self.groups: dict[str, TagGroup] = {
            g.name: g for g in TagGroup.objects.filter(workspace=workspace)
        }
        self.tags: dict[str, list[Tag]] = {}
        for tag in Tag.objects.filter(workspace=workspace).select_related("group"):
            self.tags.setdefault(tag.name, []).append(tag)

    # --- one row, no database writes ---------------------------------------------------------

    def parse(self, row_no: int, cells: list[str]) -> ContactRow:
        row = ContactRow(row_no, cells)
        check_cells(cells, [(index, column) for index, _key, column in self.columns])
        for index, key, column in self.columns:
            raw = unquote(cells[index].strip())
            if not raw:
                continue
            if key in IDENTITY_KINDS:
                kind = IDENTITY_KINDS[key]
                if kind in MASKED_KINDS and "*" in raw:
                    raise RowProblem(
                        column,
                        "%(value)s is masked; export with full phones and emails to import "
                        "the file again",
                        {"value": raw[:40]},
                        pii=kind,
                    )
                row.identities.append(parse_identity(kind, raw, column))
            elif key == "gender":
                gender = GENDERS.get(fold(raw)) or (raw if raw in Gender.values else None)
                if gender is None:
                    raise RowProblem(
                        column, "%(value)s is not a gender (男, 女 or 未知)", {"value": raw[:40]}
                    )
                if gender != Gender.UNKNOWN:  # unknown never overwrites what is known
                    row.profile["gender"] = gender
            elif key == "birthday":
                birthday = parse_date(raw, column)
                if birthday > self.today:
                    raise RowProblem(column, "is in the future")
                row.profile["birthday"] = birthday
            elif key in ("name", "province", "city", "source"):
                value = self.sources.get(fold(raw), raw) if key == "source" else raw
                if len(value) > MAX_LENGTHS[key]:
                    raise RowProblem(
                        column, "longer than %(max)s characters", {"max": MAX_LENGTHS[key]}
                    )
                row.profile[key] = value
            elif key == "owner":
                row.owner_id = self._owner(raw, column)
            elif key == "tags":
                for text in TAG_SPLIT.split(raw):
                    if text.strip() and (column, text.strip()) not in row.tags:
                        row.tags.append((column, text.strip()))
            elif key.startswith(ATTR):
                definition = self.attrs.get(key[len(ATTR) :])
                if definition is None:
                    raise RowProblem(column, "the custom attribute was deleted")
                if definition.type == AttributeType.DATE:  # '2026/1/31', an Excel day number
                    raw = parse_date(raw, column).isoformat()
                try:
                    row.attributes[definition.key] = coerce_value(definition, raw, column)
                except ValidationError as exc:
                    raise RowProblem.of(column, exc) from exc
        if not row.identities:
            raise RowProblem(
                "",
                "no phone, email, user ID, unionid or external_userid: the contact could not be "
                "recognised when the file is imported again",
            )
        return row

    def _owner(self, raw: str, column: str) -> int:
        by_email = self.staff_by_email.get(raw.lower())
        if by_email:
            return by_email
        ids = self.staff_by_name.get(raw, set())
        if len(ids) == 1:
            return next(iter(ids))
        if len(ids) > 1:
            raise RowProblem(
                column, "several staff members are called %(name)s; use the email", {"name": raw}
            )
        raise RowProblem(
            column, "%(name)s is not a staff member of this workspace", {"name": raw[:60]}
        )

    # --- a batch -------------------------------------------------------------------------------

    def apply(self, batch: list[tuple[int, list[str]]], counts: Counts, report: Report) -> None:
        """Import a batch: new contacts with one INSERT per table, the others one by one."""
        rows: list[ContactRow] = []
        for row_no, cells in batch:
            counts.rows += 1
            try:
                rows.append(self.parse(row_no, cells))
            except RowProblem as problem:
                counts.fail(report, row_no, cells, problem)
        state = _Batch(self._holders({i.hash for r in rows for i in r.identities}))
        state.known = self._load(set(state.holders.values()))
        creates: list[ContactRow] = []
        later: list[ContactRow] = []  # rows naming a contact another row of the batch creates
        for row in rows:
            ids = state.matches(row)
            new = sorted({state.new[i.key] for i in row.identities if i.key in state.new})
            if ids and new:
                problem = RowProblem(
                    "",
                    "the identities in this row belong to contact %(ids)s and to the contact "
                    "created from row %(row)s; merge them first",
                    {"ids": ", ".join(f"#{i}" for i in ids), "row": new[0]},
                )
                counts.fail(report, row.row_no, row.cells, problem)
            elif len(new) > 1:
                problem = RowProblem(
                    "",
                    "the identities in this row belong to the contacts created from rows %(rows)s",
                    {"rows": ", ".join(map(str, new))},
                )
                counts.fail(report, row.row_no, row.cells, problem)
            elif new:
                later.append(row)
                for ident in row.identities:  # it will add these to that contact
                    state.new[ident.key] = new[0]
            elif ids:
                self._one(row, state, counts, report)
            else:
                creates.append(row)
                for ident in row.identities:
                    state.new[ident.key] = row.row_no
        self._create_many(creates, state, counts, report)
        for row in later:
            self._one(row, state, counts, report)

    def _one(self, row: ContactRow, state: "_Batch", counts: Counts, report: Report) -> None:
        """One row on its own: create, update or leave the contact; a savepoint for writes."""
        ids = state.matches(row)
        pending: list = []
        try:
            if len(ids) > 1:
                raise _different([f"#{i}" for i in ids])
            if ids and ids[0] not in state.known:
                raise RowProblem(
                    "",
                    "contact #%(id)s was deleted meanwhile; import the file again",
                    {"id": ids[0]},
                )
            plan = self._plan(state.known[ids[0]], row) if ids else None
            if ids and plan is None:
                counts.unchanged += 1
                return
            with transaction.atomic():
                if ids:
                    self._update(state.known[ids[0]], row, plan, pending)
                else:
                    created = self._create(row, pending)
        except RowProblem as problem:
            counts.fail(report, row.row_no, row.cells, problem)
            return
        except SiyuError as exc:
            counts.fail(report, row.row_no, row.cells, RowProblem.of(self._column(exc, row), exc))
            return
        for remember in pending:  # the caches follow the database once the row is in
            counts.tags_created += remember()
        if ids:
            counts.updated += 1
            for ident in row.identities:
                state.holders[ident.key] = ids[0]
        else:
            state.add(created)
            counts.created += 1

    def _create_many(
        self, rows: list[ContactRow], state: "_Batch", counts: Counts, report: Report
    ) -> None:
        drafts, ready = [], []
        for row in rows:
            pending: list = []
            try:
                tag_ids, missing = self._known_tags(row)
                if missing:  # tags to create first, in the row's own savepoint
                    with transaction.atomic():
                        tag_ids = self._tag_ids(row, pending)
            except RowProblem as problem:
                counts.fail(report, row.row_no, row.cells, problem)
                continue
            for remember in pending:
                counts.tags_created += remember()
            profile = dict(row.profile)
            profile.setdefault("source", Source.IMPORT)
            drafts.append(
                ContactDraft(
                    profile=profile,
                    attributes=row.attributes,
                    identities=[IdentityInput(i.kind, i.value) for i in row.identities],
                    tag_ids=tag_ids,
                    owner_id=row.owner_id,
                )
            )
            ready.append(row)
        try:
            with transaction.atomic():
                contacts = contacts_create_many(
                    workspace=self.workspace, actor=self.actor, drafts=drafts
                )
        except (IntegrityError, SiyuError):
            # Someone else wrote one of these identities meanwhile: row by row, so that only
            # the rows concerned fail, each saying which contact has it now.
            for row in ready:
                self._one(row, state, counts, report)
            return
        for row, draft, contact in zip(ready, drafts, contacts, strict=True):
            state.add(Known(contact, {i.key for i in row.identities}, set(draft.tag_ids)))
            counts.created += 1

    def _holders(self, hashes: set[str]) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        found = Identity.objects.filter(
            workspace=self.workspace, app_id="", value_hash__in=sorted(hashes)
        ).values_list("kind", "value_hash", "contact_id")
        for kind, value_hash, contact_id in found:
            out[(kind, value_hash)] = contact_id
        return out

    def _load(self, ids: set[int]) -> dict[int, Known]:
        """The matched contacts with their identities and tags: three queries a batch."""
        ids = sorted(ids)
        known = {
            c.pk: Known(c, set(), set())
            for c in Contact.objects.filter(workspace=self.workspace, pk__in=ids)
        }
        identities = Identity.objects.filter(
            workspace=self.workspace, contact_id__in=ids, app_id=""
        ).values_list("contact_id", "kind", "value_hash")
        for contact_id, kind, value_hash in identities:
            if contact_id in known:
                known[contact_id].keys.add((kind, value_hash))
        links = ContactTag.objects.filter(workspace=self.workspace, contact_id__in=ids)
        for contact_id, tag_id in links.values_list("contact_id", "tag_id"):
            if contact_id in known:
                known[contact_id].tag_ids.add(tag_id)
        return known

    def _column(self, exc: SiyuError, row: ContactRow) -> str:
        field_name = (exc.details or {}).get("field", "")
        for ident in row.identities:
            if field_name in (ident.kind, ident.column):
                return ident.column
        return ""

    def _create(self, row: ContactRow, pending: list) -> Known:
        tag_ids = self._tag_ids(row, pending)
        profile = dict(row.profile)
        profile.setdefault("source", Source.IMPORT)
        contact = contact_create(
            workspace=self.workspace,
            actor=self.actor,
            profile=profile,
            attributes=row.attributes,
            identities=[IdentityInput(i.kind, i.value) for i in row.identities],
            tag_ids=tag_ids,
            owner_id=row.owner_id,
        )
        return Known(contact, {i.key for i in row.identities}, set(tag_ids))

    def _plan(self, known: Known, row: ContactRow) -> dict | None:
        """What the row would change on the contact; None when nothing (no write at all)."""
        contact = known.contact
        profile = {k: v for k, v in row.profile.items() if getattr(contact, k) != v}
        if "source" in profile and contact.source:
            del profile["source"]  # where a contact was first met is not rewritten
        attributes = {k: v for k, v in row.attributes.items() if contact.attributes.get(k) != v}
        identities = list({i.key: i for i in row.identities if i.key not in known.keys}.values())
        tag_ids, missing = self._known_tags(row)
        tag_ids = [t for t in tag_ids if t not in known.tag_ids]
        reassign = row.owner_id is not None and row.owner_id != contact.owner_id
        if not (profile or attributes or identities or tag_ids or missing or reassign):
            return None
        return {
            "profile": profile,
            "attributes": attributes,
            "identities": identities,
            "reassign": reassign,
        }

    def _update(self, known: Known, row: ContactRow, plan: dict, pending: list) -> None:
        contact = known.contact
        tag_ids = [t for t in self._tag_ids(row, pending) if t not in known.tag_ids]
        if plan["profile"] or plan["attributes"]:
            contact = contact_update(
                workspace=self.workspace,
                actor=self.actor,
                contact=contact,
                profile=plan["profile"],
                attributes=plan["attributes"],
            )
        for ident in plan["identities"]:
            identity_add(
                workspace=self.workspace,
                actor=self.actor,
                contact=contact,
                kind=ident.kind,
                value=ident.value,
            )
        if tag_ids:
            contacts_tag(
                workspace=self.workspace, actor=self.actor, contact_ids=[contact.pk], add=tag_ids
            )
        if plan["reassign"]:
            contact = contact_assign(
                workspace=self.workspace, actor=self.actor, contact=contact, owner_id=row.owner_id
            )

        def remember() -> int:
            known.contact = contact
            known.keys.update(i.key for i in plan["identities"])
            known.tag_ids.update(tag_ids)
            return 0

        pending.append(remember)

    # --- tags ------------------------------------------------------------------------------------

    def _split_tag(self, text: str) -> tuple[str, str]:
        """'组:标签' -> ('组', '标签') when the group exists; else ('', text)."""
        for sep in (":", "："):
            head, found, tail = text.partition(sep)
            if found and head.strip() in self.groups and tail.strip():
                return head.strip(), tail.strip()
        return "", text

    def _known_tags(self, row: ContactRow) -> tuple[list[int], bool]:
        """The ids of the row's tags that exist, and whether some do not exist yet (no
        writes). Raises RowProblem for a name in several groups."""
        ids: list[int] = []
        missing = False
        for column, text in row.tags:
            group_name, name = self._split_tag(text)
            candidates = [
                t for t in self.tags.get(name, []) if not group_name or t.group.name == group_name
            ]
            if len(candidates) > 1:
                raise RowProblem(
                    column,
                    "tag %(name)s is in several groups (%(groups)s); write it as group:tag",
                    {"name": name, "groups": "、".join(t.group.name for t in candidates)},
                )
            if candidates:
                ids.append(candidates[0].pk)
            else:
                missing = True
        return ids, missing

    def _tag_ids(self, row: ContactRow, pending: list) -> list[int]:
        """The ids of the row's tags; a tag not defined yet is created (in the tag group the
        text names as `group:tag`, else in 导入标签). Runs inside the row's savepoint; what
        it creates joins the caches only once the row is written (`pending`)."""
        out: list[int] = []
        new_groups: dict[str, TagGroup] = {}
        new_tags: dict[tuple[str, str], Tag] = {}
        for column, text in row.tags:
            group_name, name = self._split_tag(text)
            candidates = [
                t for t in self.tags.get(name, []) if not group_name or t.group.name == group_name
            ]
            if len(candidates) > 1:
                raise RowProblem(
                    column,
                    "tag %(name)s is in several groups (%(groups)s); write it as group:tag",
                    {"name": name, "groups": "、".join(t.group.name for t in candidates)},
                )
            group_name = group_name or IMPORT_TAG_GROUP
            tag = candidates[0] if candidates else new_tags.get((group_name, name))
            if tag is None:
                group = self.groups.get(group_name) or new_groups.get(group_name)
                try:
                    if group is None:
                        group = tag_group_create(
                            workspace=self.workspace, actor=self.actor, name=group_name
                        )
                        new_groups[group_name] = group
                    tag = tag_create(
                        workspace=self.workspace, actor=self.actor, group=group, name=name
                    )
                except SiyuError as exc:
                    raise RowProblem.of(column, exc) from exc
                new_tags[(group_name, name)] = tag
            if tag.pk not in out:
                out.append(tag.pk)

        def remember() -> int:
            self.groups.update(new_groups)
            for tag in new_tags.values():
                self.tags.setdefault(tag.name, []).append(tag)
            return len(new_tags)

        if new_tags:
            pending.append(remember)
        return out


def _different(labels: list[str]) -> RowProblem:
    return RowProblem(
        "",
        "the identities in this row belong to different contacts (%(ids)s); merge them first",
        {"ids": ", ".join(labels)},
    )


class _Batch:
    """What a batch knows: which contact holds each identity (from the database and from
    the rows written so far) and the matched contacts; `new` are identities of contacts the
    batch is about to create, by the row creating them."""

    def __init__(self, holders: dict[tuple[str, str], int]):
        self.holders = holders
        self.known: dict[int, Known] = {}
        self.new: dict[tuple[str, str], int] = {}

    def matches(self, row: ContactRow) -> list[int]:
        return sorted({self.holders[i.key] for i in row.identities if i.key in self.holders})

    def add(self, known: Known) -> None:
        self.known[known.contact.pk] = known
        for key in known.keys:
            self.holders[key] = known.contact.pk
