"""Seeded hostile workbooks for the fuzz test, and the child process that reads them:

    python -m etl_assets_tests.defs.darties.fuzz SEED CASES DIR

writes case i to DIR/<i>/<file name> and prints one JSON line per case: the outcome of
`read_workbook` (loaded, with its sales rows, compared with openpyxl's reading of the same
file; or refused, with where and why), or `crash` with the traceback of any other exception.
A crash of the process itself shows as its exit status.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import openpyxl

from etl_assets.defs.darties.workbooks import MEASURE_SHEETS, WorkbookError, read_workbook
from etl_assets_tests.defs.darties import hostile

NAME = "Mars_2021.xlsx"
CELLS = [f"{c}{r}" for c in "BC" for r in range(2, 14)]  # objective / actual of 12 cities
NUMBERS = [
    "inf",
    "-inf",
    "NaN",
    "1e20",
    "9.3e18",
    "-1e300",
    "1e308",
    "9007199254740993",
    "1e-320",
    "-0",
    "2.5",
    "12",
    "",
    "0x1F",
    "1_000",
    "1e999",
]
TEXTS = ["inf", "NaN", " 12 ", "١٢", "1,5", "TRUE", "", "#N/A", "x" * 300, "_x0000_", "é\u200b"]
NAMES = [
    "0000_HISTO.xlsx",
    "9999_BUDGET.xlsx",
    "Mars_2021.XLSX",
    "MARS_2021.xlsx",
    "Mars_21.xlsx",
    "Mars_2021.xlsx.xlsx",
    "Mars_2021.xls",
    "Marz_2021.xlsx",
    "Mars_١٢٣٤.xlsx",
    "2021_HISTO.xlsx",
]
# where a refusal says it is: the file (zip level), its name, a sheet, a row, a column
WHERE = re.compile(r"^(|file name|part \S+|sheet [^,]+(, row \d+(, column .+)?)?)$")

Mutation = Callable[[random.Random, bytes], tuple[str, bytes]]


def _sheet(rng: random.Random) -> str:
    return rng.choice(MEASURE_SHEETS)


def truncated(rng, body):
    return NAME, body[: rng.randrange(len(body))]


def garbage(rng, body):
    data = bytearray(body)
    for _ in range(rng.randint(1, 40)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return NAME, bytes(data)


def bad_sheet_xml(rng, body):
    def change(xml: bytes) -> bytes:
        at = rng.randrange(len(xml))
        return rng.choice([xml[:at], xml[:at] + b"<<&\x00" + xml[at:], xml[:at] + b"\xff\xfe"])

    return NAME, hostile.with_sheet_xml(body, _sheet(rng), change)


def huge_dimension(rng, body):
    ref = rng.choice(["XFD1048576", "Z200000", "GS2", "A5001", "C13", "A1"])
    far = rng.choice([None, "Z6000", "GR4999", "XFD1"])
    sheet = _sheet(rng)
    if far:
        body = hostile.with_cell(body, sheet, far, 1)
    return NAME, hostile.with_sheet_xml(
        body,
        sheet,
        lambda xml: re.sub(rb'<dimension ref="[^"]*"', f'<dimension ref="A1:{ref}"'.encode(), xml),
    )


def extreme_number(rng, body):
    ref = rng.choice(CELLS)
    return NAME, hostile.with_raw_cell(
        body, _sheet(rng), ref, hostile.number_cell(ref, rng.choice(NUMBERS))
    )


def text_in_number(rng, body):
    ref = rng.choice(CELLS)
    text = rng.choice(TEXTS)
    cell = f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'
    return NAME, hostile.with_raw_cell(body, _sheet(rng), ref, cell)


def boolean(rng, body):
    ref = rng.choice(CELLS)
    cell = f'<c r="{ref}" t="b"><v>{rng.choice("01")}</v></c>'
    return NAME, hostile.with_raw_cell(body, _sheet(rng), ref, cell)


def formula(rng, body):
    ref = rng.choice(CELLS)
    return NAME, hostile.with_cell(body, _sheet(rng), ref, f"=B{rng.randint(2, 13)}*2")


def merged(rng, body):
    first = rng.randint(2, 13)
    span = rng.choice([f"B{first}:C{first}", f"A{first}:A{first + 1}", "F2:G3", "B1:C1"])
    return NAME, hostile.merged(body, _sheet(rng), span)


def control_characters(rng, body):
    row = rng.randint(2, 13)
    escape = rng.choice(["_x0001_", "_x001F_", "_xD800_", "\u0085", "\u2028"])
    cell = f'<c r="A{row}" t="inlineStr"><is><t>Ville{escape}</t></is></c>'
    return NAME, hostile.with_raw_cell(body, rng.choice(["darties", _sheet(rng)]), f"A{row}", cell)


def not_utf8(rng, body):
    def change(xml: bytes) -> bytes:
        if rng.random() < 0.5:
            return xml.replace(b"Ville_0003", "Ville_é".encode("latin-1"), 1)
        return b'<?xml version="1.0" encoding="ISO-8859-1"?>' + xml.split(b"?>", 1)[-1]

    return NAME, hostile.with_sheet_xml(body, rng.choice(["darties", _sheet(rng)]), change)


def file_name(rng, body):
    return rng.choice(NAMES), body


def harmless(rng, body):
    """Loads: an extra sheet, a hidden row, a number as text, content beside the table."""

    def edit(book):
        choice = rng.randrange(4)
        if choice == 0:
            book.copy_worksheet(book["V_Fours"]).title = "V_Fours (2)"
        elif choice == 1:
            book[_sheet(rng)].row_dimensions[rng.randint(2, 13)].hidden = True
        elif choice == 2:
            book[_sheet(rng)][rng.choice(CELLS)] = str(rng.randint(0, 99))
        else:
            book[_sheet(rng)][f"F{rng.randint(2, 13)}"] = "note"

    return NAME, hostile.edited(body, edit)


MUTATIONS: dict[str, Mutation] = {
    f.__name__: f
    for f in (
        truncated,
        garbage,
        bad_sheet_xml,
        huge_dimension,
        extreme_number,
        text_in_number,
        boolean,
        formula,
        merged,
        control_characters,
        not_utf8,
        file_name,
        harmless,
    )
}


# the order mutations combine in: openpyxl edits, raw cell edits, broken XML, broken bytes
ORDER = [
    "file_name",
    "harmless",
    "formula",
    "merged",
    "huge_dimension",
    "extreme_number",
    "text_in_number",
    "boolean",
    "control_characters",
    "not_utf8",
    "bad_sheet_xml",
    "truncated",
    "garbage",
]


def case(seed: int, index: int, base: bytes) -> tuple[str, str, bytes]:
    """Case `index` of `seed`: (mutations applied, file name, body); the first cases go
    through every mutation once, then one to three at random."""
    rng = random.Random(f"{seed}:{index}")
    kinds = list(MUTATIONS)
    chosen = [kinds[index]] if index < len(kinds) else rng.sample(kinds, rng.randint(1, 3))
    chosen.sort(key=ORDER.index)
    name, body = NAME, base
    for kind in chosen:
        renamed, body = MUTATIONS[kind](rng, body)
        name = renamed if renamed != NAME else name
    return "+".join(chosen), name, body


def oracle(body: bytes, workbook) -> str:
    """Compare the loaded measures with openpyxl's reading of the same file: 'equal',
    'unavailable' (openpyxl cannot read it) or what differs."""
    try:
        book = openpyxl.load_workbook(io.BytesIO(body), data_only=True)
    except Exception:  # openpyxl's own errors on a file calamine read: no second opinion
        return "unavailable"
    sales = workbook.sales
    for sheet in MEASURE_SHEETS:
        indicator, family = sheet.split("_")
        measure = {"V": "units", "CA": "turnover", "MB": "margin"}[indicator]
        rows = list(book[sheet].iter_rows(values_only=True))
        header = [str(h) if h is not None else "" for h in rows[0]]
        for row in rows[1:]:
            city = row[0]
            if not isinstance(city, str) or not city.strip():
                continue
            mine = sales[(sales.store_city == city.strip()) & (sales.family == family)]
            for kind, column in (("objective", "O_mois"), ("actual", "R_mois")):
                expected = row[header.index(column)]
                expected = float(expected) if expected not in (None, "") else None
                got = mine[f"{measure}_{kind}"].iloc[0]
                got = None if got is None or got is math.nan or str(got) in ("<NA>", "nan") else got
                if (expected is None) != (got is None) or (
                    expected is not None and float(got) != expected
                ):
                    return f"{sheet} {city} {column}: loaded {got!r}, openpyxl reads {expected!r}"
    return "equal"


def main(seed: int, count: int, folder: Path) -> None:
    base = hostile.good_workbook()
    for index in range(count):
        kinds, name, body = case(seed, index, base)
        path = folder / f"{index:04d}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        line: dict = {"case": index, "kinds": kinds, "name": name}
        print(json.dumps({**line, "started": True}), flush=True)
        try:
            workbook = read_workbook(body, name)
            line.update(outcome="loaded", sales_rows=len(workbook.sales))
            line["oracle"] = oracle(body, workbook)
        except WorkbookError as error:
            line.update(outcome="refused", where=error.where, reason=error.reason)
        except Exception:  # anything but a refusal is a failure of the test
            line.update(outcome="crash", traceback=traceback.format_exc())
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
