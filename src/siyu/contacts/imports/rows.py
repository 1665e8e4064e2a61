"""What importing contacts and orders share: a row's problem (column + reason, in English for
the API and in the job's language for people), parsing of typed cells, the error report and
the counts."""

import csv
import datetime
import re
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.utils.translation import gettext

from siyu.contacts.imports.mapping import REPORT_ERROR, REPORT_ROW
from siyu.core.errors import SiyuError

ERRORS_KEPT = 20  # the first problems kept in the job's result (the API and the result page)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class RowProblem(Exception):
    """Why a row was not imported: the column (its header) and a message template.

    `pii` names the kind ("phone", "email") of the value the params quote: the error report
    repeats it as the uploader sent it, the job's result (kept in the database, shown to
    everyone who may follow the import) only masked."""

    def __init__(
        self,
        column: str,
        template: str,
        params: dict[str, Any] | None = None,
        *,
        pii: str = "",
    ):
        self.column = column
        self.template = template
        self.params = params or {}
        self.pii = pii
        self.line: int | str | None = None  # the row of an order's line the problem is in
        super().__init__(self.english)

    @classmethod
    def of(cls, column: str, exc: SiyuError, *, pii: str = "") -> "RowProblem":
        """An error raised by an action, kept as its template (translated later)."""
        return cls(column, exc.template, exc.params, pii=pii)

    def _params(self, masked: bool) -> dict[str, Any]:
        if not (masked and self.pii):
            return self.params
        return {
            k: mask_text(self.pii, v) if isinstance(v, str) else v for k, v in self.params.items()
        }

    def _english(self, masked: bool) -> str:
        params = self._params(masked)
        text = self.template % params if params else self.template
        return f"row {self.line}: {text}" if self.line is not None else text

    @property
    def english(self) -> str:
        return self._english(masked=False)

    @property
    def english_masked(self) -> str:
        return self._english(masked=True)

    def localized(self, *, masked: bool = False) -> str:
        params = self._params(masked)
        text = gettext(self.template)
        text = text % params if params else text
        if self.line is not None:
            text = gettext("row %(row)s: %(problem)s") % {"row": self.line, "problem": text}
        return text


def mask_text(kind: str, value: str) -> str:
    """A phone or email as a person typed it (maybe invalid), masked: '1380013800' ->
    '13******00', 'wang@@example.com' -> 'w***@@example.com'."""
    if kind == "email" and "@" in value[1:]:
        local, _, domain = value.partition("@")
        return local[:1] + "***@" + domain
    keep = min(3, len(value) // 4)
    return value[:keep] + "*" * (len(value) - 2 * keep) + (value[-keep:] if keep else "")


_SCIENTIFIC = re.compile(r"^\d(?:\.(\d+))?[eE]\+?(\d{1,2})$")
_WHOLE_FLOAT = re.compile(r"^(\d{5,})\.0+$")


def whole_number(text: str, column: str, pii: str = "", *, float_ok: bool = False) -> str:
    """An ID or phone as its digits, undoing what spreadsheets do to long numbers:
    '1.3800138E+10' is refused (Excel kept only the first digits), '1.3800138000E+10' (every
    digit shown) becomes '13800138000', and with `float_ok` '13800138000.0' (a number column
    saved by pandas or WPS) becomes '13800138000'. Anything else is returned as it is."""
    match = _SCIENTIFIC.match(text)
    if match:
        value = Decimal(text)
        digits = len(str(int(value)))
        shown = 1 + len(match.group(1) or "")
        if value == value.to_integral_value() and shown >= digits:
            return str(int(value))
        raise RowProblem(
            column,
            "%(value)s is a long number the spreadsheet shortened to scientific notation, so "
            "its last digits are lost; format the column as text, enter the numbers again and "
            "save",
            {"value": text[:40]},
            pii=pii,
        )
    if float_ok and (whole := _WHOLE_FLOAT.match(text)):
        return whole.group(1)
    return text


def check_cells(cells: list[str], columns: list[tuple[int, str]]) -> None:
    """RowProblem for a mapped cell holding a NUL character (a damaged file; PostgreSQL
    refuses it, and the whole batch with it)."""
    for index, column in columns:
        if "\x00" in cells[index]:
            raise RowProblem(column, "contains a NUL character; the file is damaged")


def unquote(value: str) -> str:
    """Undo the quote the export puts before text a spreadsheet would run as a formula."""
    if value.startswith("'") and value[1:2] and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


# --- typed cells -----------------------------------------------------------------------------

_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATETIME = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]+(\d{1,2})\s*[:：时]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2}(?:\.\d+)?))?\s*秒?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_EXCEL_SERIAL = re.compile(r"^\d{5}(\.\d+)?$")
_EXCEL_EPOCH = datetime.datetime(1899, 12, 30)


def parse_date(text: str, column: str) -> datetime.date:
    """'2026-01-31', '2026/1/31', '2026.1.31', '2026年1月31日', '20260131', or an Excel date:
    a date-time (its date; '2026-01-31 00:00:00' from an xlsx, the '2026/1/31 0:00' Excel
    writes into a CSV) or a day number written as text."""
    text = text.strip()
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    try:
        if match:
            return datetime.date(*(int(g) for g in match.groups()))
        if _EXCEL_SERIAL.match(text):
            return (_EXCEL_EPOCH + datetime.timedelta(days=int(float(text)))).date()
        if (stamp := _DATETIME.match(text)) and stamp.group(4) is not None:
            return datetime.date(*(int(g) for g in stamp.groups()[:3]))
    except ValueError:
        pass
    raise RowProblem(column, "not a date: %(value)s (write it as 2026-01-31)", {"value": text[:40]})


def parse_datetime(text: str, column: str, tz: zoneinfo.ZoneInfo) -> datetime.datetime:
    """A date-time in the workspace's time zone unless it names its offset: '2026-01-31
    14:05', '2026/1/31 14:05:09', '2026-01-31T14:05:00+08:00', '2026/1/31' (midnight), or an
    Excel date-time."""
    text = text.strip()
    match = _DATETIME.match(text)
    try:
        if match:
            y, mo, d, h, mi, s, offset = match.groups()
            seconds = float(s) if s else 0.0
            value = datetime.datetime(
                int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(seconds)
            )
            if offset:
                offset = "+00:00" if offset == "Z" else offset
                if ":" not in offset:
                    offset = offset[:3] + ":" + offset[3:]
                return datetime.datetime.fromisoformat(value.isoformat() + offset)
            return value.replace(tzinfo=tz)
        if _EXCEL_SERIAL.match(text):
            value = _EXCEL_EPOCH + datetime.timedelta(days=float(text))
            value = (value + datetime.timedelta(microseconds=500_000)).replace(microsecond=0)
            return value.replace(tzinfo=tz)
    except (ValueError, OverflowError):
        pass
    raise RowProblem(
        column,
        "not a date and time: %(value)s (write it as 2026-01-31 14:05)",
        {"value": text[:40]},
    )


def money_text(text: str) -> str:
    """'¥1,299.00' / '1299元' / '￥ 1299' -> '1299.00' for parse_money."""
    text = text.strip().replace(",", "").replace("，", "")
    for mark in ("¥", "￥", "元", "RMB", "CNY", "rmb"):
        text = text.replace(mark, "")
    return text.strip()


# --- the report and the counts ---------------------------------------------------------------


def _safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


class Report:
    """The rows that were not imported, as they were, with their row number and the reason:
    a CSV in UTF-8 with a BOM (Excel opens it as is). Opened at the first problem."""

    def __init__(self, path: Path, header: list[str]):
        self.path = path
        self.header = header
        self.file = None
        self.writer = None

    def add(self, row_no: int, cells: list[str], reason: str) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
            self.writer = csv.writer(self.file)
            self.writer.writerow([_safe(h) for h in self.header] + [REPORT_ROW, REPORT_ERROR])
        self.writer.writerow([_safe(c) for c in cells] + [row_no, _safe(reason)])

    @property
    def written(self) -> bool:
        return self.writer is not None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


@dataclass
class Counts:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0  # rows
    contacts_created: int = 0  # orders: customers that were not in the pool yet
    tags_created: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, report: Report, row_no: int, cells: list[str], problem: RowProblem) -> None:
        """The row goes to the report with the reason as it is (the report holds the row as
        it was sent anyway); the first problems go to the job's result with phones and
        emails masked."""
        self.failed += 1
        reason = problem.localized()
        shown = (
            gettext("%(column)s: %(reason)s") % {"column": problem.column, "reason": reason}
            if problem.column
            else reason
        )
        report.add(row_no, cells, shown)
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(
                {
                    "row": row_no,
                    "column": problem.column,
                    "message": problem.english_masked,
                    "reason": problem.localized(masked=True),
                }
            )

    def result(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "contacts_created": self.contacts_created,
            "tags_created": self.tags_created,
            "errors": self.errors,
        }
