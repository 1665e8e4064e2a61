"""An uploaded spreadsheet as a table: the header (row 1) and the data rows as text cells.

CSV: the encoding is found from a byte-order mark (UTF-8, UTF-16), else the file must decode
as strict UTF-8, else as GB18030 (a superset of GBK and GB2312, what Excel on a Chinese
Windows writes); the delimiter (comma, tab or semicolon) from the header line. XLSX: the
first sheet, read in streaming mode; numbers, dates and booleans become text the same way a
person would type them. Rows are numbered as a spreadsheet shows them (the header is row 1);
fully empty rows are skipped but keep their number."""

import codecs
import csv
import datetime
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from siyu.core.errors import SiyuError

MAX_COLUMNS = 500
DELIMITERS = (",", "\t", ";")
_CHUNK = 1 << 20
_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls (and .et / .doc) container
_XLSX_UNPACKED_FACTOR = 20  # refuse an xlsx that unpacks to more than 20x the size cap


class ImportFileError(SiyuError):
    """The file as a whole cannot be read. Names the field `file`."""

    status = 422
    code = "invalid_file"

    def __init__(self, message: str, params: dict[str, Any] | None = None):
        super().__init__(message, params=params, details={"field": "file"})


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: how a spreadsheet names a column."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@dataclass
class Table:
    path: Path
    fmt: str  # "csv" or "xlsx"
    header: list[str]
    encoding: str = ""
    delimiter: str = ""
    # columns whose header cell is empty are named by their letter ("F")
    names: list[str] = field(default_factory=list)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells) for every non-empty data row, cells padded or cut to the
        header's width."""
        width = len(self.header)
        source = _csv_rows(self) if self.fmt == "csv" else _xlsx_rows(self.path)
        max_rows = settings.SIYU_IMPORT_MAX_ROWS
        for number, cells in source:
            if number == 1:
                continue
            if number - 1 > max_rows:
                raise ImportFileError(
                    "the file has more than %(max)s rows; split it into smaller files",
                    params={"max": max_rows},
                )
            if not any(cells):
                continue
            if len(cells) < width:
                cells = cells + [""] * (width - len(cells))
            yield number, cells[:width]

    def count(self) -> int:
        return sum(1 for _ in self.rows())

    def preview(self, n: int = 10) -> list[tuple[int, list[str]]]:
        out = []
        for row in self.rows():
            out.append(row)
            if len(out) >= n:
                break
        return out


def sniff_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_XLSX_MAGIC):
        return "xlsx"
    if head.startswith(_OLE_MAGIC):
        raise ImportFileError(
            "old Excel files (.xls) cannot be read; save the sheet as .xlsx or CSV UTF-8"
        )
    return "csv"


def open_table(path: Path) -> Table:
    """The table in the file, or ImportFileError saying why it cannot be read."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise ImportFileError("the file is empty")
    fmt = sniff_format(path)
    if fmt == "xlsx":
        table = Table(path=path, fmt="xlsx", header=[])
        header_source = _xlsx_rows(path)
    else:
        encoding = detect_encoding(path)
        table = Table(
            path=path,
            fmt="csv",
            header=[],
            encoding=encoding,
            delimiter=detect_delimiter(path, encoding),
        )
        header_source = _csv_rows(table)
    try:
        number, header = next(iter(header_source), (0, []))
    finally:
        close = getattr(header_source, "close", None)
        if close:
            close()
    if number != 1 or not any(header):
        raise ImportFileError("the first row must be the header (the column names); it is empty")
    while header and not header[-1]:
        header.pop()
    if len(header) > MAX_COLUMNS:
        raise ImportFileError("more than %(max)s columns", params={"max": MAX_COLUMNS})
    table.header = header
    table.names = [h or column_letter(i) for i, h in enumerate(header)]
    return table


# --- CSV -------------------------------------------------------------------------------------


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(_CHUNK)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode text": tab separated, with a BOM
    if b"\x00" in head:
        raise ImportFileError(
            "this is not a text (CSV) or Excel (.xlsx) file; save the sheet as CSV UTF-8 or .xlsx"
        )
    for encoding in ("utf-8", "gb18030"):
        if _decodes(path, encoding):
            return encoding
    raise ImportFileError("the text is neither UTF-8 nor GBK; save the sheet as CSV UTF-8 or .xlsx")


def detect_delimiter(path: Path, encoding: str) -> str:
    """The separator used most in the header line (outside quotes); comma when none is."""
    with open(path, encoding=encoding, newline="") as f:
        line = f.readline(_CHUNK)
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(table: Table) -> Iterator[tuple[int, list[str]]]:
    with open(table.path, encoding=table.encoding, newline="") as f:
        reader = csv.reader(f, delimiter=table.delimiter)
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFileError(
                    "row %(row)s cannot be read: %(error)s",
                    params={"row": number + 1, "error": str(exc)},
                ) from exc
            number += 1
            yield number, [c.strip() for c in cells]


# --- XLSX ------------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """An Excel cell value as the text a person would have typed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, datetime.datetime):
        # Excel stores times as fractions of a day: 14:05 may come back as 14:04:59.999999
        value = (value + datetime.timedelta(microseconds=500_000)).replace(microsecond=0)
        if (value.hour, value.minute, value.second) == (0, 0, 0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return value.strftime("%H:%M:%S")
    return str(value).strip()


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            names = set(archive.namelist())
    except zipfile.BadZipFile as exc:
        raise ImportFileError("not a readable Excel (.xlsx) file") from exc
    if unpacked > settings.SIYU_IMPORT_MAX_BYTES * _XLSX_UNPACKED_FACTOR:
        raise ImportFileError("the Excel file is too large once unpacked; save it as CSV")
    if "xl/workbook.xml" not in names:
        raise ImportFileError("not a readable Excel (.xlsx) file")


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    _check_zip(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise ImportFileError("not a readable Excel (.xlsx) file") from exc
    try:
        if not book.worksheets:
            raise ImportFileError("the Excel file has no sheet")
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # some writers record a wrong size; read every row
        try:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, [cell_text(v) for v in values]
        except ImportFileError:
            raise
        except Exception as exc:
            raise ImportFileError("not a readable Excel (.xlsx) file") from exc
    finally:
        book.close()
