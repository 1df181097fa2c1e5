"""Hostile workbooks, built from a good generated one: cells far away, huge sheet XML, raw
XML edits, byte-level corruptions. Shared by the tests, the fuzz test and the measurements:

    python -m etl_assets_tests.defs.darties.hostile write CASE FILE   # prints its name
    python -m etl_assets_tests.defs.darties.hostile read FILE NAME
        # {"refused": "...", "seconds": s, "peak_mb": m, ...}, or {"loaded": true, ...}
"""

from __future__ import annotations

import io
import json
import re
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import openpyxl

from etl_assets.defs.darties.sample_data import city_names, workbook_sheets, write_workbook
from etl_assets_tests.peak_memory import peak_rss_mb

CITIES = city_names(12)


def good_workbook(kind: str = "monthly", seed: int = 7, cities: list[str] = CITIES) -> bytes:
    with TemporaryDirectory(prefix="darties-hostile-") as folder:
        path = write_workbook(Path(folder) / "w.xlsx", workbook_sheets(kind, cities, seed))
        return path.read_bytes()


def edited(body: bytes, edit: Callable[[openpyxl.Workbook], None]) -> bytes:
    """The workbook opened by openpyxl, changed, saved (openpyxl computes no formulas)."""
    book = openpyxl.load_workbook(io.BytesIO(body))
    edit(book)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_cell(body: bytes, sheet: str, ref: str, value) -> bytes:
    def edit(book):
        book[sheet][ref] = value

    return edited(body, edit)


def sheet_part(body: bytes, sheet: str) -> str:
    """The zip member holding a sheet's XML (by workbook.xml and its rels)."""
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
        rels = archive.read("xl/_rels/workbook.xml.rels").decode()
    match = re.search(rf'<sheet [^>]*name="{re.escape(sheet)}"[^>]*r:id="([^"]+)"', workbook)
    assert match, sheet
    target = re.search(rf'Id="{match.group(1)}"[^>]*Target="([^"]+)"', rels) or re.search(
        rf'Target="([^"]+)"[^>]*Id="{match.group(1)}"', rels
    )
    assert target, match.group(1)
    path = target.group(1)
    return path.lstrip("/") if path.startswith("/") else "xl/" + path


def with_parts(body: bytes, change: Callable[[str, bytes], bytes | None]) -> bytes:
    """The zip rewritten, each member through `change(name, data)` (None drops it)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(body)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = change(info.filename, source.read(info))
            if data is not None:
                target.writestr(info.filename, data)
    return out.getvalue()


def with_sheet_xml(body: bytes, sheet: str, change: Callable[[bytes], bytes]) -> bytes:
    part = sheet_part(body, sheet)
    return with_parts(body, lambda name, data: change(data) if name == part else data)


def padded_sheet_xml(body: bytes, sheet: str = "V_Fours", megabytes: int = 200) -> bytes:
    padding = b" " * (megabytes * 1024 * 1024)
    return with_sheet_xml(
        body, sheet, lambda xml: xml.replace(b"<sheetData>", padding + b"<sheetData>", 1)
    )


def with_raw_cell(body: bytes, sheet: str, ref: str, cell_xml: str) -> bytes:
    """The cell `ref` (which must exist) replaced by the raw `cell_xml`."""

    def change(xml: bytes) -> bytes:
        pattern = rb'<c r="' + ref.encode() + rb'"[^>]*?(?:/>|>.*?</c>)'
        assert re.search(pattern, xml), ref
        return re.sub(pattern, cell_xml.encode(), xml, count=1)

    return with_sheet_xml(body, sheet, change)


def number_cell(ref: str, text: str) -> str:
    return f'<c r="{ref}"><v>{text}</v></c>'


def merged(body: bytes, sheet: str, span: str) -> bytes:
    def edit(book):
        book[sheet].merge_cells(span)

    return edited(body, edit)


def far_cell(ref: str) -> bytes:
    return with_cell(good_workbook(), "V_Fours", ref, 1)


CASES: dict[str, Callable[[], tuple[str, bytes]]] = {  # case -> (file name, body)
    "XFD1048576": lambda: ("Mars_2021.xlsx", far_cell("XFD1048576")),
    "Z200000": lambda: ("Mars_2021.xlsx", far_cell("Z200000")),
    "200MB_sheet_xml": lambda: ("Mars_2021.xlsx", padded_sheet_xml(good_workbook())),
}


def read(path: Path, name: str) -> dict:
    """Read one workbook file as the converter does: the outcome, seconds and peak RSS."""
    from etl_assets.defs.darties.workbooks import WorkbookError, read_workbook

    body = path.read_bytes()
    started = time.perf_counter()
    try:
        read_workbook(body, name)
        outcome: dict = {"loaded": True}
    except WorkbookError as error:
        outcome = {"refused": str(error)}
    outcome.update(
        seconds=round(time.perf_counter() - started, 2),
        peak_mb=round(peak_rss_mb()),
        file_bytes=len(body),
    )
    return outcome


if __name__ == "__main__":
    if sys.argv[1] == "write":  # write CASE FILE
        name, body = CASES[sys.argv[2]]()
        Path(sys.argv[3]).write_bytes(body)
        print(name)
    else:  # read FILE NAME
        print(json.dumps(read(Path(sys.argv[2]), sys.argv[3])))
