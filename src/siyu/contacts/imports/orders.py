"""Orders from rows. Consecutive rows with the same order ID are one order, one row per
product line (order-level cells may be repeated or left blank on the following rows, as
shop exports with merged cells do). Each order is written through `order_create`, which is
idempotent by the order ID: the same order again is "unchanged", the same ID with other
contents fails like the API's 409.

The customer is found by the phone, user ID or email of the order; a customer not in the
pool yet is created with them (and the customer name column), in the same savepoint as the
order, so a failing order leaves no contact behind. Existing contacts are not edited.
Only completed orders are imported: refunds go through the API or `Order Refunded` events."""

import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from siyu.contacts.actions import contact_create
from siyu.contacts.actions.bulk import ContactDraft, contacts_create_many
from siyu.contacts.actions.contact import IdentityInput
from siyu.contacts.imports.contacts import MASKED_KINDS, Ident, parse_identity
from siyu.contacts.imports.mapping import IDENTITY_KINDS, ITEM_FIELDS, fold
from siyu.contacts.imports.rows import (
    Counts,
    Report,
    RowProblem,
    check_cells,
    money_text,
    parse_datetime,
    unquote,
    whole_number,
)
from siyu.contacts.models import Contact, Identity, Source
from siyu.core.audit import Actor
from siyu.core.errors import SiyuError, ValidationError
from siyu.core.models import Workspace
from siyu.tracking import aggregates
from siyu.tracking.models import Order, OrderSource
from siyu.tracking.orders import order_create, parse_order

ORDER_SOURCE = OrderSource.IMPORT  # Order.source of imported orders
ORDER_LEVEL = (
    "external_id", "phone", "user_id", "email", "name", "total", "discount", "shipping", "tax",
    "currency", "placed_at", "channel", "status",
)  # fmt: skip
CUSTOMER_KEYS = ("phone", "user_id", "email")
MONEY = ("total", "discount", "shipping", "tax")
COMPLETED = {
    fold(s)
    for s in (
        "已完成", "完成", "交易成功", "交易完成", "已支付", "已付款", "支付成功", "已发货",
        "已签收", "已收货", "待发货", "待收货", "completed", "complete", "paid", "success",
        "succeeded", "shipped", "delivered", "fulfilled",
    )
}  # fmt: skip


@dataclass
class OrderGroup:
    rows: list[tuple[int, list[str]]]
    values: dict[str, str] = field(default_factory=dict)  # order-level field -> cell
    identities: list[Ident] = field(default_factory=list)
    data: Any = None  # OrderInput

    @property
    def first_row(self) -> int:
        return self.rows[0][0]


class OrderImporter:
    def __init__(self, workspace: Workspace, actor: Actor, names: list[str], mapping: list[str]):
        self.workspace = workspace
        self.actor = actor
        self.tz = zoneinfo.ZoneInfo(workspace.timezone)
        self.index = {f: i for i, f in enumerate(mapping) if f}
        self.names = names
        self.seen: dict[str, int] = {}  # order ID -> first row, in this file

    def column(self, key: str) -> str:
        return self.names[self.index[key]] if key in self.index else key

    def cell(self, cells: list[str], key: str) -> str:
        i = self.index.get(key)
        return unquote(cells[i].strip()) if i is not None else ""

    def batches(self, rows, size: int):
        """Groups of consecutive rows with the same order ID, about `size` rows a batch."""
        batch: list[list[tuple[int, list[str]]]] = []
        count = 0
        group: list[tuple[int, list[str]]] = []
        for row in rows:
            order_id = self.cell(row[1], "external_id")
            if group and (not order_id or order_id != self.cell(group[0][1], "external_id")):
                batch.append(group)
                count += len(group)
                group = []
                if count >= size:
                    yield batch
                    batch, count = [], 0
            group.append(row)
        if group:
            batch.append(group)
        if batch:
            yield batch

    # --- one order, no database writes -------------------------------------------------------

    def parse(self, rows: list[tuple[int, list[str]]]) -> OrderGroup:
        group = OrderGroup(rows)
        mapped = [(i, self.names[i]) for i in self.index.values()]
        for _row_no, cells in rows:
            check_cells(cells, mapped)
        for key in ORDER_LEVEL:
            if key not in self.index:
                continue
            first_row, value = None, ""
            for row_no, cells in rows:
                text = self.cell(cells, key)
                if not text:
                    continue
                if value and text != value:
                    raise RowProblem(
                        self.column(key),
                        "rows %(first)s and %(row)s have the same order ID but different "
                        "values here",
                        {"first": first_row, "row": row_no},
                    )
                first_row, value = first_row or row_no, text
            group.values[key] = value
        external_id = group.values.get("external_id", "")
        if not external_id:
            raise RowProblem(self.column("external_id"), "the order ID is empty")
        external_id = whole_number(external_id, self.column("external_id"))
        status = group.values.get("status", "")
        if status and fold(status) not in COMPLETED:
            raise RowProblem(
                self.column("status"),
                "only completed orders are imported; this one is %(status)s",
                {"status": status[:40]},
            )
        for key in CUSTOMER_KEYS:
            raw = group.values.get(key, "")
            if not raw:
                continue
            kind = IDENTITY_KINDS[key]
            if "*" in raw and kind in MASKED_KINDS:
                raise RowProblem(
                    self.column(key),
                    "%(value)s is masked; the full value is needed",
                    {"value": raw[:40]},
                    pii=kind,
                )
            group.identities.append(parse_identity(kind, raw, self.column(key)))
        if not group.identities:
            raise RowProblem("", "no phone, user ID or email: the order's customer cannot be found")
        payload: dict[str, Any] = {"external_id": external_id}
        for key in MONEY:
            if group.values.get(key):
                payload[key] = money_text(group.values[key])
        for key in ("currency", "channel"):
            if group.values.get(key):
                payload[key] = group.values[key]
        if group.values.get("placed_at"):
            payload["placed_at"] = parse_datetime(
                group.values["placed_at"], self.column("placed_at"), self.tz
            )
        products, lines = [], []
        for row_no, cells in rows:
            item = {k: self.cell(cells, k) for k in ITEM_FIELDS if k in self.index}
            if not any(item.values()):
                continue
            product = {
                "product_id": item.get("product_id", ""),
                "sku": item.get("sku", ""),
                "name": item.get("item_name", ""),
                "category": item.get("category", ""),
                "price": money_text(item["price"]) if item.get("price") else None,
                "quantity": item.get("quantity") or None,
            }
            products.append(product)
            lines.append(row_no)
        payload["products"] = products
        try:
            group.data = parse_order(payload, self.workspace)
        except ValidationError as exc:
            raise self._problem(exc, lines) from exc
        return group

    def _problem(self, exc: ValidationError, lines: list[int]) -> RowProblem:
        """The order parser's error, its field turned back into the file's column."""
        where = exc.field
        if where.startswith("products["):
            n, _, key = where[len("products[") :].partition("].")
            key = {"name": "item_name"}.get(key, key)
            row = lines[int(n)] if n.isdigit() and int(n) < len(lines) else "?"
            problem = RowProblem.of(self.column(key), exc)
            problem.line = row
            return problem
        return RowProblem.of(self.column(where), exc)

    # --- a batch -------------------------------------------------------------------------------

    def apply(
        self, batch: list[list[tuple[int, list[str]]]], counts: Counts, report: Report
    ) -> None:
        groups: list[OrderGroup] = []
        for rows in batch:
            counts.rows += len(rows)
            try:
                groups.append(self.parse(rows))
            except RowProblem as problem:
                self._fail(counts, report, rows, problem)
        hashes = sorted({i.hash for g in groups for i in g.identities})
        holders = {
            (kind, h): contact_id
            for kind, h, contact_id in Identity.objects.filter(
                workspace=self.workspace, app_id="", value_hash__in=hashes
            ).values_list("kind", "value_hash", "contact_id")
        }
        self._new_customers(groups, holders, counts)
        with aggregates.deferred() as touched:
            for group in groups:
                self._one(group, holders, counts, report)
        aggregates.recompute(self.workspace, touched)

    def _new_customers(self, groups: list[OrderGroup], holders: dict, counts: Counts) -> None:
        """Customers not in the pool yet, for orders whose ID is new, created with one INSERT
        per table (`contacts_create_many`); what is left (a clash, an order ID seen before)
        goes through `contact_create` with its order, one savepoint each."""
        seen = set(
            Order.objects.filter(
                workspace=self.workspace, external_id__in=[g.data.external_id for g in groups]
            ).values_list("external_id", flat=True)
        )
        drafts: list[tuple[ContactDraft, list[Ident]]] = []
        draft_of: dict[tuple[str, str], int] = {}
        for group in groups:
            if group.data.external_id in seen or any(i.key in holders for i in group.identities):
                continue
            seen.add(group.data.external_id)  # the ID again in this batch: order by order
            if any(i.key in draft_of for i in group.identities):
                continue  # a customer of an earlier order: found once that one is created
            for ident in group.identities:
                draft_of[ident.key] = len(drafts)
            draft = ContactDraft(
                profile={"name": group.values.get("name", "")[:120], "source": Source.IMPORT},
                identities=[IdentityInput(i.kind, i.value) for i in group.identities],
            )
            drafts.append((draft, group.identities))
        if not drafts:
            return
        try:
            with transaction.atomic():
                contacts = contacts_create_many(
                    workspace=self.workspace, actor=self.actor, drafts=[d for d, _ in drafts]
                )
        except (IntegrityError, SiyuError):
            return  # someone wrote one of these identities meanwhile: order by order then
        for contact, (_draft, identities) in zip(contacts, drafts, strict=True):
            counts.contacts_created += 1
            for ident in identities:
                holders[ident.key] = contact.pk

    def _one(self, group: OrderGroup, holders: dict, counts: Counts, report: Report) -> None:
        ids = sorted({holders[i.key] for i in group.identities if i.key in holders})
        external_id = group.data.external_id
        new_contact = None
        try:
            if len(ids) > 1:
                raise RowProblem(
                    "",
                    "the phone, user ID and email of this order belong to different contacts "
                    "(%(ids)s)",
                    {"ids": ", ".join(f"#{i}" for i in ids)},
                )
            with transaction.atomic():
                if ids:
                    contact = Contact(pk=ids[0], workspace_id=self.workspace.pk)
                else:
                    name = group.values.get("name", "")[:120]
                    new_contact = contact = contact_create(
                        workspace=self.workspace,
                        actor=self.actor,
                        profile={"name": name, "source": Source.IMPORT},
                        identities=[IdentityInput(i.kind, i.value) for i in group.identities],
                    )
                _order, created = order_create(
                    workspace=self.workspace,
                    actor=self.actor,
                    contact=contact,
                    data=group.data,
                    source=ORDER_SOURCE,
                )
        except RowProblem as problem:
            self._fail(counts, report, group.rows, problem)
            return
        except SiyuError as exc:
            first = self.seen.get(external_id)
            if exc.code == "order_exists" and first is not None:
                problem = RowProblem(
                    self.column("external_id"),
                    "order ID %(id)s is also at row %(row)s, with different contents",
                    {"id": external_id, "row": first},
                )
            else:
                field_name = (exc.details or {}).get("field", "")
                problem = RowProblem.of(self.column(field_name) if field_name else "", exc)
            self._fail(counts, report, group.rows, problem)
            return
        self.seen.setdefault(external_id, group.first_row)
        if new_contact is not None:
            counts.contacts_created += 1
            for ident in group.identities:
                holders[ident.key] = new_contact.pk
        if created:
            counts.created += 1
        else:
            counts.unchanged += 1

    def _fail(self, counts: Counts, report: Report, rows, problem: RowProblem) -> None:
        for row_no, cells in rows:
            counts.fail(report, row_no, cells, problem)
