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
# openpyxl streams the worksheets in read-only mode but reads every other part it uses whole
# into memory (the shared strings above all: one Python string each). A few kilobytes of
# deflated XML can unpack to gigabytes, so those parts have their own, much smaller caps.
_XLSX_PART_CAP = 16 * 1024 * 1024  # styles, workbook, relationships, theme, properties
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # what Excel, WPS and others write


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
        source = _csv_rows(self) if self.fmt == "csv" else _xlsx_rows(self.path, width)
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
        header_source = _xlsx_rows(path, None)  # the header row in full, however wide
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


def _first_bad_byte(path: Path, encoding: str) -> int | None:
    """The offset of the first byte that does not decode, or None when the file decodes."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    pos = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the chunk
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return pos - pending + exc.start
            if not chunk:
                return None
            pos += len(chunk)


def _line_of(path: Path, offset: int) -> int:
    line, pos = 1, 0
    with open(path, "rb") as f:
        while pos < offset and (chunk := f.read(min(_CHUNK, offset - pos))):
            line += chunk.count(b"\n")
            pos += len(chunk)
    return line


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
    bad = _first_bad_byte(path, "utf-8")
    if bad is None:
        return "utf-8"
    if _first_bad_byte(path, "gb18030") is None:
        return "gb18030"
    raise ImportFileError(
        "the text is neither UTF-8 nor GBK (line %(line)s is the first that is not UTF-8); "
        "save the sheet as CSV UTF-8 or .xlsx",
        params={"line": _line_of(path, bad)},
    )


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
    """Refuse an xlsx that would take far more memory or time to read than its size says (a
    zip bomb): the whole unpacked, the shared strings and every part read whole are capped."""
    from openpyxl.packaging.manifest import Manifest
    from openpyxl.packaging.relationship import get_dependents, get_rels_path
    from openpyxl.reader.excel import _find_workbook_part
    from openpyxl.xml.constants import ARC_CONTENT_TYPES, SHARED_STRINGS
    from openpyxl.xml.functions import fromstring

    limit = settings.SIYU_IMPORT_MAX_BYTES
    too_large = ImportFileError("the Excel file is too large once unpacked; save it as CSV")
    unreadable = ImportFileError("not a readable Excel (.xlsx) file")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            if sum(info.file_size for info in infos.values()) > limit * _XLSX_UNPACKED_FACTOR:
                raise too_large
            if any(info.compress_type not in _ZIP_METHODS for info in infos.values()):
                raise unreadable

            def small(name: str) -> str:
                if name not in infos:
                    raise unreadable
                if infos[name].file_size > _XLSX_PART_CAP:
                    raise too_large
                return name

            # the parts that say where everything is, found the way openpyxl finds them
            manifest = Manifest.from_tree(fromstring(archive.read(small(ARC_CONTENT_TYPES))))
            workbook = _find_workbook_part(manifest).PartName[1:]
            small(workbook)
            rels = get_dependents(archive, small(get_rels_path(workbook)))
            strings = manifest.find(SHARED_STRINGS)
            strings = strings.PartName[1:] if strings is not None else ""
            whole = {ARC_CONTENT_TYPES, workbook, get_rels_path(workbook), strings}
            streamed = {
                rel.target
                for rel in rels
                if rel.Type.endswith("/worksheet") and rel.target not in whole
            }
            for name, info in infos.items():
                if name in streamed:
                    continue
                cap = limit if name == strings else _XLSX_PART_CAP
                if info.file_size > cap:
                    raise too_large
    except ImportFileError:
        raise
    except Exception as exc:  # BadZipFile, broken XML, no workbook part, ...
        raise unreadable from exc


def _xlsx_rows(path: Path, width: int | None) -> Iterator[tuple[int, list[str]]]:
    """The first sheet's rows, each cut to `width` cells (the header's): a stray cell far to
    the right (XFD9) must not make every row 16,384 cells long."""
    from openpyxl import load_workbook

    _check_zip(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise ImportFileError("not a readable Excel (.xlsx) file") from exc
    try:
        if not book.worksheets:
            raise ImportFileError("the Excel file has no sheet")
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # some writers record a wrong size; read every row
        try:
            rows = sheet.iter_rows(max_col=width, values_only=True)
            for number, values in enumerate(rows, start=1):
                yield number, [cell_text(v) for v in values]
        except ImportFileError:
            raise
        except Exception as exc:
            raise ImportFileError("not a readable Excel (.xlsx) file") from exc
    finally:
        book.close()
