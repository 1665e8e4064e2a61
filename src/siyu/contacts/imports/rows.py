"""What importing contacts and orders share: a row's problem (column + reason, in English for
the API and in the job's language for people), parsing of typed cells, the error report and
the counts."""

import csv
import datetime
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils.translation import gettext

from siyu.contacts.imports.mapping import REPORT_ERROR, REPORT_ROW
from siyu.core.errors import SiyuError

ERRORS_KEPT = 20  # the first problems kept in the job's result (the API and the result page)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class RowProblem(Exception):
    """Why a row was not imported: the column (its header) and a message template."""

    def __init__(self, column: str, template: str, params: dict[str, Any] | None = None):
        self.column = column
        self.template = template
        self.params = params or {}
        self.line: int | str | None = None  # the row of an order's line the problem is in
        super().__init__(self.english)

    @classmethod
    def of(cls, column: str, exc: SiyuError) -> "RowProblem":
        """An error raised by an action, kept as its template (translated later)."""
        return cls(column, exc.template, exc.params)

    @property
    def english(self) -> str:
        text = self.template % self.params if self.params else self.template
        return f"row {self.line}: {text}" if self.line is not None else text

    def localized(self) -> str:
        text = gettext(self.template)
        text = text % self.params if self.params else text
        if self.line is not None:
            text = gettext("row %(row)s: %(problem)s") % {"row": self.line, "problem": text}
        return text


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
    """'2026-01-31', '2026/1/31', '2026.1.31', '2026年1月31日', '20260131', or an Excel date
    (a date-time at midnight, or a day number written as text)."""
    text = text.strip()
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    try:
        if match:
            return datetime.date(*(int(g) for g in match.groups()))
        if _EXCEL_SERIAL.match(text):
            return (_EXCEL_EPOCH + datetime.timedelta(days=int(float(text)))).date()
        if len(text) > 10 and text[10] in " T":  # a date-time at midnight from Excel
            return datetime.datetime.fromisoformat(text).date()
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
                    "message": problem.english,
                    "reason": reason,
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
