"""An .xlsx workbook checked before python-calamine reads it, so that no file can make the
reader allocate without bound (a single cell at XFD1048576 makes calamine reserve ~512 GiB
and abort the process) or read what was not checked.

The zip is read with Python's `zipfile` (each part's bytes counted as they are inflated, not
taken from the zip's directory), every part kept is parsed by expat as it streams (no DTD,
UTF-8 only), and the parts calamine needs are written again into a fresh zip: calamine reads
exactly the bytes that were checked. Each sheet read is scanned for its extent (the cells'
real positions, not the `<dimension>` element alone, which can lie or be absent), formulas
without a computed value, error values, merged ranges and hidden rows and columns.
"""

from __future__ import annotations

import functools
import io
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.parsers import expat

# A Darties sheet is ~50 rows x 25 columns (50 KB of XML); the benchmark's 1,000-city
# workbook is 1,001 x 25. These bounds are 5x to 100x that, and keep a read in bounded memory.
MAX_ROWS = 5_000  # per sheet, the header included
MAX_COLUMNS = 200  # per sheet (column GR)
MAX_CELLS = 1_000_000  # rows x columns of every sheet read, summed
MAX_PART_BYTES = 16 * 1024 * 1024  # one XML part, inflated
MAX_XML_BYTES = 64 * 1024 * 1024  # every part read, inflated
MAX_PARTS = 10_000  # zip members
CHUNK = 256 * 1024

WORKBOOK = "xl/workbook.xml"
WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"
# what calamine reads besides the sheets asked for (the rest of the zip is left out)
SUPPORT_PARTS = ("[Content_Types].xml", "_rels/.rels", "xl/sharedStrings.xml", "xl/styles.xml")

_CELL = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")


class XlsxError(ValueError):
    """Refused before reading: `where` is 'sheet S' or 'sheet S, row R, column C' or ''."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}" if where else reason)
        self.where, self.reason = where, reason


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_position(ref: str) -> tuple[int, int] | None:
    """'B7' -> (7, 1): the Excel row (1-based) and the column index (0-based)."""
    match = _CELL.match(ref)
    if not match:
        return None
    return int(match.group(2)), _column_index(match.group(1))


@functools.lru_cache(maxsize=1024)
def _column_index(letters: str) -> int:
    column = 0
    for letter in letters.upper():
        column = column * 26 + ord(letter) - 64
    return column - 1


@functools.lru_cache(maxsize=256)
def _local(name: str) -> str:
    """'{namespace}}c' -> 'c'."""
    return name.rpartition("}")[2]


@dataclass
class SheetScan:
    """What a sheet's XML holds, positions as (Excel row, 0-based column)."""

    name: str
    part: str
    state: str = "visible"  # visible | hidden | veryHidden
    rows: int = 0  # the last row holding a cell
    columns: int = 0  # the last column holding a cell (1-based count)
    cells: int = 0
    formulas_without_value: list[tuple[int, int]] = field(default_factory=list)
    error_values: list[tuple[int, int, str]] = field(default_factory=list)
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)  # r1, c1, r2, c2
    hidden_rows: list[int] = field(default_factory=list)
    hidden_columns: list[tuple[int, int]] = field(default_factory=list)  # first, last (0-based)


@dataclass
class CheckedWorkbook:
    body: bytes  # a fresh zip of the checked parts only
    sheet_names: list[str]  # every sheet the workbook lists, in order
    states: dict[str, str]  # sheet -> visible | hidden | veryHidden
    sheets: dict[str, SheetScan]  # the sheets asked for that exist


def check_xlsx(body: bytes, wanted: Sequence[str]) -> CheckedWorkbook:
    """The workbook's parts checked and copied; XlsxError names what is refused."""
    try:
        return _check(body, wanted)
    except XlsxError:
        raise
    # what zipfile and zlib raise on a damaged or unsupported zip (RuntimeError: encrypted;
    # NotImplementedError: a compression method; EOFError: cut short)
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
        OSError,
        ValueError,
        KeyError,
        UnicodeError,
    ) as error:
        kind = type(error).__name__
        reason = f"not an Excel workbook (damaged or unsupported zip: {kind}: {error})"
        raise XlsxError("", reason) from None


def _check(body: bytes, wanted: Sequence[str]) -> CheckedWorkbook:
    if not zipfile.is_zipfile(io.BytesIO(body)):
        raise XlsxError("", "not an Excel workbook (not a zip archive)")
    source = zipfile.ZipFile(io.BytesIO(body))
    infos = source.infolist()
    if len(infos) > MAX_PARTS:
        raise XlsxError("", f"{len(infos)} parts in the zip (at most {MAX_PARTS:,})")
    by_name: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.filename.lower() in by_name:
            raise XlsxError("", f"two parts named {info.filename!r} in the zip")
        by_name[info.filename.lower()] = info
    for required in (WORKBOOK, WORKBOOK_RELS):
        if required not in by_name:
            raise XlsxError("", f"not an Excel workbook (no {required} in the zip)")
    budget = _Budget()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target:
        workbook_xml = _copy(source, by_name[WORKBOOK], target, budget, None, keep=True)
        rels_xml = _copy(source, by_name[WORKBOOK_RELS], target, budget, None, keep=True)
        sheet_names, states, parts = _sheets(workbook_xml, rels_xml)
        for name in SUPPORT_PARTS:
            if name.lower() in by_name:
                _copy(source, by_name[name.lower()], target, budget, None)
        scans: dict[str, SheetScan] = {}
        for sheet in wanted:
            if sheet not in parts:
                continue
            info = by_name.get(parts[sheet].lower())
            if info is None:
                raise XlsxError(f"sheet {sheet}", f"its part {parts[sheet]} is not in the zip")
            scan = SheetScan(sheet, info.filename, states[sheet])
            _copy(source, info, target, budget, scan)
            scans[sheet] = scan
    return CheckedWorkbook(out.getvalue(), sheet_names, states, scans)


@dataclass
class _Budget:
    xml_bytes: int = 0
    cells: int = 0  # rows x columns of the sheets scanned


def _copy(
    source: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: zipfile.ZipFile,
    budget: _Budget,
    scan: SheetScan | None,
    keep: bool = False,
) -> bytes:
    """Inflate one part in chunks (counted, not trusted from the zip's directory), parse it
    as it streams, write it to `target`; its bytes returned when `keep`."""
    where = f"sheet {scan.name}" if scan else f"part {info.filename}"
    if info.file_size > MAX_PART_BYTES:
        raise XlsxError(where, _too_large(info.file_size))
    handler = _SheetHandler(scan, budget) if scan else None
    parser = _parser(where, handler)
    kept, size = [], 0
    with source.open(info) as reader, target.open(info.filename, "w") as writer:
        while chunk := reader.read(CHUNK):
            size += len(chunk)
            budget.xml_bytes += len(chunk)
            if size > MAX_PART_BYTES:
                raise XlsxError(where, _too_large(size))
            if budget.xml_bytes > MAX_XML_BYTES:
                raise XlsxError(
                    where, f"more than {MAX_XML_BYTES // 2**20} MB of XML in the workbook"
                )
            if size == len(chunk) and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
                raise XlsxError(where, "the XML is UTF-16 (an .xlsx part is UTF-8)")
            _feed(parser, chunk, where, final=False)
            writer.write(chunk)
            if keep:
                kept.append(chunk)
    _feed(parser, b"", where, final=True)
    if handler is not None:
        handler.finish()
    return b"".join(kept)


def _too_large(size: int) -> str:
    return f"{size:,} bytes of XML or more (at most {MAX_PART_BYTES // 2**20} MB per part)"


def _parser(where: str, handler: _SheetHandler | None):
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True

    def no_doctype(*_):
        raise XlsxError(where, "the XML declares a DTD (not allowed in an .xlsx part)")

    def utf8_only(version, encoding, standalone):
        del version, standalone
        if encoding and encoding.lower().replace("-", "") != "utf8":
            raise XlsxError(where, f"the XML is encoded {encoding} (an .xlsx part is UTF-8)")

    parser.StartDoctypeDeclHandler = no_doctype
    parser.EntityDeclHandler = no_doctype
    parser.XmlDeclHandler = utf8_only
    if handler is not None:
        parser.StartElementHandler = handler.start
        parser.EndElementHandler = handler.end
        parser.CharacterDataHandler = handler.text
    return parser


def _feed(parser, chunk: bytes, where: str, final: bool) -> None:
    try:
        parser.Parse(chunk, final)
    except expat.ExpatError as error:
        raise XlsxError(
            where,
            f"not well-formed XML ({expat.ErrorString(error.code)}, line {error.lineno},"
            f" column {error.offset})",
        ) from None


class _SheetHandler:
    """A sheet's XML as it streams: positions, formulas, values, merges, hidden rows."""

    def __init__(self, scan: SheetScan, budget: _Budget):
        self.scan, self.budget = scan, budget
        self.row = 0
        self.column = -1
        self.last = (0, -1)  # the previous cell, for order
        self.in_cell = False
        self.cell_type = ""
        self.has_formula = self.has_value = False
        self.value = ""
        self.in_value = False

    def start(self, name: str, attrs: dict) -> None:
        local = _local(name)
        if local == "c":
            self._cell(attrs)
        elif local == "row":
            self._row(attrs)
        elif local in ("v", "is"):
            self.has_value = True
            self.in_value = local == "v"
        elif local == "f":
            self.has_formula = True
        elif local == "mergeCell":
            self._merge(attrs.get("ref", ""))
        elif local == "col":
            if _true(attrs.get("hidden")):
                first, last = _int(attrs.get("min")), _int(attrs.get("max"))
                if first and last and first <= last:
                    self.scan.hidden_columns.append((first - 1, min(last, MAX_COLUMNS) - 1))
        elif local == "dimension":
            self._dimension(attrs.get("ref", ""))

    def end(self, name: str) -> None:
        local = _local(name)
        if local == "c":
            self._cell_end()
        elif local == "v":
            self.in_value = False

    def text(self, data: str) -> None:
        if self.in_value and len(self.value) < 64:
            self.value += data[:64]

    def _where(self, row: int, column: int | None = None) -> str:
        where = f"sheet {self.scan.name}, row {row}"
        return where if column is None else f"{where}, column {column_letter(column)}"

    def _row(self, attrs: dict) -> None:
        ref = attrs.get("r")
        row = _int(ref) if ref is not None else self.row + 1
        if not row or row <= self.row:
            raise XlsxError(
                self._where(self.row + 1), f"row number {ref!r} out of order or not a number"
            )
        if row > MAX_ROWS:
            raise XlsxError(self._where(row), f"the sheet goes beyond row {MAX_ROWS:,}")
        self.row, self.column = row, -1
        if _true(attrs.get("hidden")):
            self.scan.hidden_rows.append(row)

    def _cell(self, attrs: dict) -> None:
        ref = attrs.get("r")
        if ref is not None:
            position = cell_position(ref)
            if position is None:
                raise XlsxError(self._where(max(self.row, 1)), f"cell reference {ref!r}")
            row, column = position
            if row != self.row:
                raise XlsxError(self._where(row), f"cell {ref} outside its row {self.row}")
        else:
            row, column = self.row, self.column + 1
        if row < 1:
            raise XlsxError(self._where(1), "a cell outside any row")
        if column >= MAX_COLUMNS:
            raise XlsxError(
                self._where(row, column),
                f"the sheet goes beyond column {column_letter(MAX_COLUMNS - 1)}"
                f" ({MAX_COLUMNS} columns)",
            )
        if (row, column) <= self.last:
            raise XlsxError(self._where(row, column), "a cell twice or out of order")
        self.last = (row, column)
        self.column = column
        self.scan.rows = max(self.scan.rows, row)
        self.scan.columns = max(self.scan.columns, column + 1)
        self.scan.cells += 1
        self.cell_type = attrs.get("t", "n")
        self.has_formula = self.has_value = False
        self.value = ""

    def _cell_end(self) -> None:
        position = (self.row, self.column)
        # a formula whose value is missing or empty (an empty text result is a value)
        computed = self.has_value and (self.value or self.cell_type in ("str", "inlineStr"))
        if self.has_formula and not computed:
            self.scan.formulas_without_value.append(position)
        if self.cell_type == "e":
            self.scan.error_values.append((*position, self.value.strip() or "error"))

    def _merge(self, ref: str) -> None:
        first, _, last = ref.partition(":")
        start, end = cell_position(first), cell_position(last or first)
        if start is None or end is None:
            raise XlsxError(f"sheet {self.scan.name}", f"merged range {ref[:40]!r}")
        self.scan.merged.append((start[0], start[1], end[0], end[1]))

    def _dimension(self, ref: str) -> None:
        """The declared extent, refused beyond the bounds (calamine reserves memory for it)."""
        last = ref.rpartition(":")[2]
        position = cell_position(last)
        if position is None:
            raise XlsxError(f"sheet {self.scan.name}", f"dimension {ref[:40]!r} is not a range")
        row, column = position
        if row > MAX_ROWS or column >= MAX_COLUMNS:
            raise XlsxError(
                f"sheet {self.scan.name}",
                f"the sheet declares {row:,} rows x {column + 1:,} columns (dimension"
                f" {ref[:40]}; at most {MAX_ROWS:,} rows x {MAX_COLUMNS} columns)",
            )

    def finish(self) -> None:
        self.budget.cells += self.scan.rows * self.scan.columns
        if self.budget.cells > MAX_CELLS:
            raise XlsxError(
                f"sheet {self.scan.name}",
                f"the sheets read span more than {MAX_CELLS:,} cells (rows x columns)",
            )


def _true(value: str | None) -> bool:
    return value in ("1", "true")


def _int(text: str | None) -> int:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) <= 9 else 0


def _sheets(workbook_xml: bytes, rels_xml: bytes):
    """Sheet names in order, their state, and their part in the zip."""
    relations: dict[str, str] = {}
    sheets: list[tuple[str, str, str]] = []

    def relation(name, attrs):
        if name.rpartition("}")[2] == "Relationship" and "Id" in attrs:
            relations[attrs["Id"]] = attrs.get("Target", "")

    def sheet(name, attrs):
        if name.rpartition("}")[2] == "sheet":
            rid = next((v for k, v in attrs.items() if k.rpartition("}")[2] == "id"), "")
            sheets.append((attrs.get("name", ""), attrs.get("state", "visible"), rid))

    for xml, handler, where in (
        (rels_xml, relation, f"part {WORKBOOK_RELS}"),
        (workbook_xml, sheet, f"part {WORKBOOK}"),
    ):
        parser = _parser(where, None)
        parser.StartElementHandler = handler
        _feed(parser, xml, where, final=True)
    names = [name for name, _, _ in sheets]
    states = {name: state for name, state, _ in sheets}
    parts = {}
    for name, _, rid in sheets:
        target = relations.get(rid, "")
        parts[name] = target.lstrip("/") if target.startswith("/") else "xl/" + target
    return names, states, parts
