"""The inputs of the CLV models (clv.py) from transactions: a customer's frequency, recency,
age T and mean repeat spend, from a CSV file (`siyu clv fit --csv`) or from a workspace's
orders (one SQL statement).

The conventions are Fader & Hardie's (and the `lifetimes` package's), so that the CDNOW
summary they published comes out exactly (tests/segments/test_clv.py):

- time is counted in whole days; all of one customer's purchases on one day are one
  purchase, their amounts summed;
- a customer is born at their first purchase;
- frequency = the number of purchase days after the first; recency t_x = last purchase day
  minus first purchase day; T = `until` minus first purchase day (so a purchase on `until`
  itself counts, and a customer whose first purchase is on `until` has T = 0);
- purchases after `until` are ignored; customers whose first purchase is after it do not
  exist yet;
- monetary = the mean amount of the repeat purchase days (the first purchase is left out:
  it is often different in kind, e.g. a trial or a welcome offer), 0 without a repeat;
- unit "days", or "weeks" (days / 7).
"""

from __future__ import annotations

import csv
import datetime
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
from django.db import connection

from siyu.contacts.imports.reading import detect_delimiter, detect_encoding
from siyu.contacts.imports.rows import RowProblem, money_text, parse_date
from siyu.core.errors import SiyuError
from siyu.core.models import Workspace
from siyu.tracking.models import Order, OrderStatus

UNITS: dict[str, float] = {"days": 1.0, "weeks": 7.0}
EPOCH = datetime.date(1970, 1, 1)
# Orders left out of the model: a fully refunded order is a purchase that did not happen.
# Partly refunded orders count with what the customer kept (total - refunded); an order
# with nothing kept (0 or less) is left out like a fully refunded one. OrderStatus has no
# "cancelled"; a cancelled status would belong here too.
EXCLUDED_ORDER_STATUSES: tuple[str, ...] = (OrderStatus.REFUNDED,)
_FETCH = 50_000  # rows per fetch when streaming the per-contact aggregates


class TransactionFileError(SiyuError):
    """A transaction CSV that cannot be read, or one of its cells (the message names the row
    and the column)."""

    status = 422
    code = "invalid_file"


@dataclass
class Summary:
    """One row per customer, as the models take them (see the module docstring)."""

    customer: np.ndarray  # contact ids (int64) or the CSV's customer ids (str)
    frequency: np.ndarray  # float64, like the others
    recency: np.ndarray
    T: np.ndarray
    monetary: np.ndarray
    unit: str
    until: datetime.date

    def __len__(self) -> int:
        return len(self.customer)

    @property
    def repeat_customers(self) -> int:
        return int(np.count_nonzero(self.frequency > 0))


@dataclass
class Transactions:
    """Transactions read from a file: one entry per row."""

    customer: np.ndarray  # str
    day: np.ndarray  # int64: days since 1970-01-01
    amount: np.ndarray  # float64


def day_number(day: datetime.date) -> int:
    """Days since 1970-01-01, the integer time axis of this module."""
    return (day - EPOCH).days


def _check_unit(unit: str) -> float:
    if unit not in UNITS:
        raise ValueError(f"unknown time unit {unit!r} (one of {', '.join(UNITS)})")
    return UNITS[unit]


def summary_from_aggregates(
    customer: np.ndarray,
    first_day: np.ndarray,
    last_day: np.ndarray,
    days: np.ndarray,
    repeat_total: np.ndarray,
    *,
    until: datetime.date,
    unit: str = "days",
) -> Summary:
    """A Summary from per-customer aggregates over purchase days up to `until`: first and
    last purchase day (day numbers), the number of distinct purchase days, and the total
    amount of the days after the first."""
    scale = _check_unit(unit)
    first = np.asarray(first_day, dtype=np.int64)
    frequency = np.asarray(days, dtype=np.float64) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        monetary = np.where(
            frequency > 0, np.asarray(repeat_total, dtype=np.float64) / frequency, 0.0
        )
    return Summary(
        customer=np.asarray(customer),
        frequency=frequency,
        recency=(np.asarray(last_day, dtype=np.int64) - first) / scale,
        T=(day_number(until) - first) / scale,
        monetary=monetary,
        unit=unit,
        until=until,
    )


def summarise(
    customer: Sequence[Any] | np.ndarray,
    day: Sequence[int] | np.ndarray,
    amount: Sequence[float] | np.ndarray,
    *,
    until: datetime.date,
    unit: str = "days",
) -> Summary:
    """The summary of raw transactions (customer id, day number, amount), vectorised: sort
    by (customer, day), sum each (customer, day) into one purchase, then reduce per
    customer."""
    _check_unit(unit)
    customer = np.asarray(customer)
    day = np.asarray(day, dtype=np.int64)
    amount = np.asarray(amount, dtype=np.float64)
    if not (len(customer) == len(day) == len(amount)):
        raise ValueError("customer, day and amount differ in length")
    keep = day <= day_number(until)
    ids, code = np.unique(customer[keep], return_inverse=True)
    day, amount = day[keep], amount[keep]
    order = np.lexsort((day, code))
    code, day, amount = code[order], day[order], amount[order]
    # one purchase per (customer, day): where either changes, a new one starts
    new_purchase = np.ones(len(code), dtype=bool)
    new_purchase[1:] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new_purchase)
    p_code, p_day = code[starts], day[starts]
    p_amount = np.add.reduceat(amount, starts) if len(starts) else amount[:0]
    # per customer: its purchases are a contiguous, day-ordered run
    first_of = np.ones(len(p_code), dtype=bool)
    first_of[1:] = p_code[1:] != p_code[:-1]
    c_start = np.flatnonzero(first_of)
    c_end = np.append(c_start[1:], len(p_code))[: len(c_start)] - 1  # [] when no customer
    n_days = c_end - c_start + 1
    totals = np.add.reduceat(p_amount, c_start) if len(c_start) else p_amount[:0]
    return summary_from_aggregates(
        ids,
        p_day[c_start],
        p_day[c_end],
        n_days,
        totals - p_amount[c_start],
        until=until,
        unit=unit,
    )


# --- CSV -----------------------------------------------------------------------------------


def _column(header: list[str], name: str, option: str) -> int:
    """The index of the column `name` (exact, else ignoring case)."""
    stripped = [h.strip() for h in header]
    if name in stripped:
        return stripped.index(name)
    lowered = [h.lower() for h in stripped]
    if name.lower() in lowered:
        return lowered.index(name.lower())
    raise TransactionFileError(
        "the file has no column %(name)r (%(option)s); its columns are: %(columns)s",
        params={"name": name, "option": option, "columns": ", ".join(stripped)},
    )


def _cell_error(row: int, column: str, problem: RowProblem) -> TransactionFileError:
    return TransactionFileError(
        "row %(row)s, column %(column)s: %(problem)s",
        params={"row": row, "column": column, "problem": problem.english},
    )


def _amount(text: str, column: str) -> float:
    """A decimal amount ('29.33', '¥1,299.00', '1299元'), not negative."""
    cleaned = money_text(text)
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise RowProblem(column, "not an amount: %(value)s", {"value": text[:40]})
    if value < 0:
        raise RowProblem(column, "must not be negative: %(value)s", {"value": text[:40]})
    return float(value)


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of the file, the header being row 1, as a spreadsheet numbers
    them. UTF-8 (with or without a byte-order mark) or GBK/GB18030, comma, tab or
    semicolon separated: found as the contact import finds them."""
    encoding = detect_encoding(path)
    delimiter = detect_delimiter(path, encoding)
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise TransactionFileError(
                    "row %(row)s cannot be read: %(error)s",
                    params={"row": number + 1, "error": str(exc)},
                ) from exc
            number += 1
            yield number, cells


def read_transactions_csv(
    path: str | Path, *, customer: str, date: str, amount: str
) -> Transactions:
    """The transactions in a CSV file with a header row, by column name. Dates: YYYYMMDD,
    YYYY-MM-DD, YYYY/MM/DD or an ISO date-time (its date as written); amounts: decimals.
    Raises TransactionFileError naming the row and the column of the first bad cell."""
    path = Path(path)
    if not path.is_file():
        raise TransactionFileError("no such file: %(path)s", params={"path": str(path)})
    if path.stat().st_size == 0:
        raise TransactionFileError("the file is empty")
    rows = _rows(path)
    _, header = next(rows, (0, []))
    if not any(h.strip() for h in header):
        raise TransactionFileError("the first row must be the header (the column names)")
    columns = [
        (_column(header, name, option), name)
        for name, option in ((customer, "--customer"), (date, "--date"), (amount, "--amount"))
    ]
    width = max(index for index, _ in columns) + 1
    (c_at, c_name), (d_at, d_name), (a_at, a_name) = columns
    customers: list[str] = []
    days: list[int] = []
    amounts: list[float] = []
    seen_dates: dict[str, int] = {}  # dates repeat a lot: parse each text once
    for number, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        cells = cells + [""] * (width - len(cells))
        try:
            who = cells[c_at].strip()
            if not who:
                raise RowProblem(c_name, "the customer id is empty")
            when = cells[d_at].strip()
            day = seen_dates.get(when)
            if day is None:
                if not when:
                    raise RowProblem(d_name, "the date is empty")
                day = seen_dates[when] = day_number(parse_date(when, d_name))
            value = _amount(cells[a_at], a_name)
        except RowProblem as problem:
            raise _cell_error(number, problem.column, problem) from None
        customers.append(who)
        days.append(day)
        amounts.append(value)
    if not customers:
        raise TransactionFileError("the file has a header but no transactions")
    return Transactions(
        customer=np.array(customers),
        day=np.array(days, dtype=np.int64),
        amount=np.array(amounts, dtype=np.float64),
    )


def parse_until(text: str) -> datetime.date:
    """A command-line date (the formats a CSV date may have); ValueError when it is none."""
    try:
        return parse_date(text, "until")
    except RowProblem as problem:
        raise ValueError(problem.english) from None


# --- a workspace's orders ------------------------------------------------------------------


def local_day_end(until: datetime.date, tz: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The instant `until` ends in the time zone: midnight that starts the next day."""
    return datetime.datetime.combine(until + datetime.timedelta(days=1), datetime.time(), tz)


def _day_number_sql(tzname: str) -> tuple[str, tuple[Any, ...]]:
    """SQL for an order's calendar day in `tzname` as a day number (since 1970-01-01), with
    its parameters. Django's own date cast handles the time zone on both databases (PG:
    AT TIME ZONE; SQLite: a Python function Django registers)."""
    day_sql, params = connection.ops.datetime_cast_date_sql("o.placed_at", (), tzname)
    if connection.vendor == "postgresql":
        return f"({day_sql} - DATE '1970-01-01')", tuple(params)
    # julianday('1970-01-01') = 2440587.5 (midnight)
    return f"CAST(julianday({day_sql}) - 2440587.5 AS INTEGER)", tuple(params)


def workspace_summary(
    workspace_id: int, until: datetime.date | datetime.datetime | None = None
) -> Summary:
    """The summary of a workspace's orders up to the end of the day `until` (the workspace's
    time zone; a date-time means its local day; default: today), in days.

    Orders counted: those with a contact, not fully refunded (EXCLUDED_ORDER_STATUSES), with
    something kept (total_fen - refunded_fen > 0), counted at what was kept. Days are
    calendar days in the workspace's time zone. One statement groups the orders by contact
    and day, then by contact (first day, last day, number of days, total of the days after
    the first: a window function numbers each contact's days); its rows stream into numpy
    arrays: no Python object per contact beyond the fetched tuples."""
    workspace = Workspace.objects.only("timezone").get(pk=workspace_id)
    tz = zoneinfo.ZoneInfo(workspace.timezone or "Asia/Shanghai")
    if until is None:
        until = datetime.datetime.now(tz).date()
    elif isinstance(until, datetime.datetime):
        until = until.astimezone(tz).date()
    day_sql, day_params = _day_number_sql(tz.key)
    excluded = ", ".join(["%s"] * len(EXCLUDED_ORDER_STATUSES))
    sql = (
        "SELECT contact_id, MIN(day), MAX(day), COUNT(*), "
        "CAST(SUM(CASE WHEN nth > 1 THEN amount ELSE 0 END) AS BIGINT) FROM ("
        " SELECT contact_id, day, amount, "
        " ROW_NUMBER() OVER (PARTITION BY contact_id ORDER BY day) AS nth FROM ("
        "  SELECT contact_id, day, SUM(kept) AS amount FROM ("
        f"   SELECT o.contact_id AS contact_id, {day_sql} AS day, "
        "    o.total_fen - o.refunded_fen AS kept"
        f"   FROM {Order._meta.db_table} o"
        "    WHERE o.workspace_id = %s AND o.contact_id IS NOT NULL"
        f"    AND o.status NOT IN ({excluded}) AND o.total_fen - o.refunded_fen > 0"
        "    AND o.placed_at < %s"
        "  ) orders GROUP BY contact_id, day"
        " ) days"
        ") numbered GROUP BY contact_id"
    )
    params = [
        *day_params,
        int(workspace_id),
        *EXCLUDED_ORDER_STATUSES,
        connection.ops.adapt_datetimefield_value(local_day_end(until, tz)),
    ]
    chunks = []
    # a server-side cursor on PostgreSQL (rows arrive as they are fetched), a plain one on
    # SQLite
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(_FETCH):
            chunks.append(np.array(rows, dtype=np.int64))
    table = np.concatenate(chunks) if chunks else np.zeros((0, 5), dtype=np.int64)
    return summary_from_aggregates(
        table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4], until=until
    )
