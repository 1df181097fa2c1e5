"""Darties workbooks read into long rows: one per store city, month and product family, with
the objective and actual of units, turnover and margin; and the `darties` sheet's store rows.

Every refusal names the workbook, the sheet, the Excel row and the column: analysts fix the
workbook, not the loader.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import pandas as pd
from python_calamine import CalamineWorkbook

from etl_assets.defs.darties.xlsx import (
    CheckedWorkbook,
    SheetScan,
    XlsxError,
    check_xlsx,
    column_letter,
)

FAMILIES = ("Fours", "Hifi", "Magneto")
INDICATORS = {"V": "units", "CA": "turnover", "MB": "margin"}  # sheet prefix -> measure
MEASURE_SHEETS = tuple(f"{i}_{f}" for i in INDICATORS for f in FAMILIES)
STORES_SHEET = "darties"
MONTHS = (
    "janvier",
    "fevrier",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "aout",
    "septembre",
    "octobre",
    "novembre",
    "decembre",
)
# the `darties` sheet's columns -> the stores table's
STORE_COLUMNS = {
    "Villes": "store_city",
    "Enseignes": "brand",
    "Publicité": "advertising",
    "REGION": "region",
    "Emplacemen": "location",
    "Nb_Caisses": "cash_registers",
    "Population": "population",
    "Taux_Ouvri": "blue_collar_rate",
    "Taux_Cadre": "white_collar_rate",
    "Taux_Inact": "inactive_rate",
    "Moins_25an": "under_25_rate",
    "Les_25_35a": "from_25_to_35_rate",
    "Plus_35ans": "over_35_rate",
}
STORE_TEXT = ("store_city", "brand", "region", "location")
STORE_WHOLE = ("cash_registers", "population")
MEASURES = tuple(f"{m}_{kind}" for m in INDICATORS.values() for kind in ("objective", "actual"))
SALES_COLUMNS = ("store_city", "month_start", "family", *MEASURES)

KIND_RANK = {"monthly": 1, "histo": 2, "budget": 3}  # precedence for a month: lowest wins
YEARS = (1900, 2100)  # a workbook's year, inclusive
# whole numbers: what the column's type holds (integer), or what a double holds exactly
WHOLE_LIMITS = {"cash_registers": 2**31 - 1}
MAX_WHOLE = 2**53 - 1
MAX_AMOUNT = 1e15  # turnover, margin, rates: their sums stay finite in any warehouse
MAX_STRAY = 100  # stray cells named (the others counted)
MAX_TEXT_BYTES = 64  # the text columns are varchar(64) (bytes on Redshift)
_DECIMAL = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


class WorkbookError(ValueError):
    """A workbook refused: `where` is 'sheet S, row R, column C' as far as known."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}" if where else reason)
        self.where, self.reason = where, reason


def plain(text: str) -> str:
    """Lower case without accents: 'Février' -> 'fevrier', 'Août' -> 'aout'."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@dataclass(frozen=True)
class WorkbookName:
    """What a workbook's file name says: its kind and the months it covers."""

    kind: str  # monthly | histo | budget
    year: int
    month: int | None = None  # 1..12 for a monthly workbook

    @property
    def months(self) -> list[date]:
        if self.month is not None:
            return [date(self.year, self.month, 1)]
        return [date(self.year, m, 1) for m in range(1, 13)]

    @property
    def rank(self) -> int:
        return KIND_RANK[self.kind]


_YEARLY = re.compile(r"^(\d{4})_(histo|budget)\.xlsx$", re.IGNORECASE)
_MONTHLY = re.compile(r"^([^\W\d_]+)_(\d{4})\.xlsx$", re.IGNORECASE)


def parse_name(file_name: str) -> WorkbookName:
    """`YYYY_HISTO.xlsx`, `YYYY_BUDGET.xlsx` or `<French month>_YYYY.xlsx`: the name and
    the extension in any case, the month with or without accents, a year from 1900 to
    2100."""
    yearly = _YEARLY.match(file_name)
    if yearly:
        return WorkbookName(yearly.group(2).lower(), _year(yearly.group(1)))
    monthly = _MONTHLY.match(file_name)
    if monthly:
        month = plain(monthly.group(1))
        if month not in MONTHS:
            raise WorkbookError(
                "file name",
                f"{monthly.group(1)!r} is not a French month name (janvier ... decembre)",
            )
        return WorkbookName("monthly", _year(monthly.group(2)), MONTHS.index(month) + 1)
    raise WorkbookError(
        "file name",
        f"{file_name!r} is not YYYY_HISTO.xlsx, YYYY_BUDGET.xlsx or <French month>_YYYY.xlsx",
    )


def _year(digits: str) -> int:
    year = int(digits)
    if not YEARS[0] <= year <= YEARS[1]:
        raise WorkbookError("file name", f"year {digits} is not from {YEARS[0]} to {YEARS[1]}")
    return year


@dataclass
class Workbook:
    """A workbook read and checked: its sales rows, its store rows, and per measure sheet and
    column the sum read from the sheet (for the reconciliation after the load)."""

    name: WorkbookName
    sales: pd.DataFrame  # SALES_COLUMNS
    stores: pd.DataFrame  # STORE_COLUMNS' values
    sheet_sums: dict[tuple[str, str], float] = field(default_factory=dict)  # (family, measure)
    engine: str = "calamine"
    stray_cells: list[str] = field(default_factory=list)  # content outside the table, ignored
    notes: list[str] = field(default_factory=list)  # sheets not read, hidden rows and columns

    @property
    def cells(self) -> int:
        return int(self.sales.shape[0]) * 6 + int(self.stores.size)


def read_workbook(body: bytes, file_name: str) -> Workbook:
    """Read and check a workbook; WorkbookError names the sheet, row and column refused.
    The zip and every sheet's XML are checked and bounded (`xlsx.check_xlsx`) before
    python-calamine reads anything."""
    name = parse_name(file_name)
    expected = (STORES_SHEET, *MEASURE_SHEETS)
    try:
        checked = check_xlsx(body, expected)
    except XlsxError as error:
        raise WorkbookError(error.where, error.reason) from None
    missing = [s for s in expected if s not in checked.sheets]
    if missing:
        raise WorkbookError(
            f"sheet {missing[0]}",
            f"missing (expected sheets {STORES_SHEET}, {', '.join(MEASURE_SHEETS)};"
            f" found {', '.join(checked.sheet_names) or 'none'})",
        )
    sheets = _read_sheets(checked)
    stray: list[str] = []
    notes = _notes(checked, sheets)
    stores = _stores(sheets[STORES_SHEET], stray)
    known = set(stores["store_city"])
    long_sheets, sums = [], {}
    for sheet in MEASURE_SHEETS:
        indicator, family = sheet.split("_")
        measure = INDICATORS[indicator]
        values = _measure_sheet(sheets[sheet], sheet, name, measure, known, stray)
        for kind in ("objective", "actual"):
            total = values[kind].sum(min_count=1)
            sums[(family, f"{measure}_{kind}")] = 0.0 if pd.isna(total) else float(total)
        values["family"] = family
        long_sheets.append(values.rename(columns=lambda c, m=measure: _measure_column(c, m)))
    sales = _join_families(long_sheets)
    return Workbook(name, sales, stores, sums, "calamine", stray, notes)


def _read_sheets(checked: CheckedWorkbook) -> dict[str, pd.DataFrame]:
    """The checked sheets read by python-calamine, cell values as they are (no conversion:
    a boolean stays a boolean, the text 'inf' stays text), each as a frame whose first row
    is the header; a formula without a computed value, an error value or a merged range
    inside the table refused."""
    sheets = {}
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(checked.body))
    except BaseException as error:
        raise _calamine_error("", error) from None
    for sheet, scan in checked.sheets.items():
        try:
            rows = book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
        except BaseException as error:
            raise _calamine_error(f"sheet {sheet}", error) from None
        if len(rows) > scan.rows or (rows and len(rows[0]) > scan.columns):
            raise WorkbookError(f"sheet {sheet}", "read larger than its XML (refused)")
        sheets[sheet] = _frame(rows, scan)
    return sheets


def _calamine_error(where: str, error: BaseException) -> WorkbookError:
    """calamine's errors, and a Rust panic (pyo3's PanicException is a BaseException)."""
    if isinstance(error, KeyboardInterrupt | SystemExit | MemoryError):
        raise error
    return WorkbookError(where, f"python-calamine cannot read it ({type(error).__name__})")


def _frame(rows: list[list], scan: SheetScan) -> pd.DataFrame:
    """Row 1 is the header (pandas' names: `Unnamed: N` for an empty one, `X.1` for a
    second `X`); every other row a row of the frame, whose index i is Excel row i + 2."""
    width = max((len(r) for r in rows), default=0)
    header = (rows[0] if rows else []) + [""] * (width - len(rows[0]) if rows else 0)
    names, seen = [], {}
    for index, value in enumerate(header):
        if value == "" or value is None:
            label = f"Unnamed: {index}"
        elif isinstance(value, float) and value.is_integer():
            label = str(int(value))
        else:
            label = str(value)
        if label in seen:
            seen[label] += 1
            label = f"{label}.{seen[label]}"
        else:
            seen[label] = 0
        names.append(label)
    data = [[None if v == "" else v for v in r] + [None] * (width - len(r)) for r in rows[1:]]
    frame = pd.DataFrame(data, columns=names, dtype=object)
    _refuse_unread_cells(frame, scan)
    return frame


def _column_name(frame: pd.DataFrame, column: int) -> str:
    if column < len(frame.columns) and not str(frame.columns[column]).startswith("Unnamed: "):
        return str(frame.columns[column])
    return column_letter(column)


def _refuse_unread_cells(frame: pd.DataFrame, scan: SheetScan) -> None:
    """What calamine would read as empty, or as one value where the sheet shows several."""
    sheet = scan.name
    for row, column in scan.formulas_without_value[:1]:
        raise WorkbookError(
            f"sheet {sheet}, row {row}, column {_column_name(frame, column)}",
            f"a formula without a computed value in {column_letter(column)}{row} (the"
            " workbook was saved by a program that does not calculate: open and save it in"
            " Excel, or write the values)",
        )
    for row, column, value in scan.error_values[:1]:
        raise WorkbookError(
            f"sheet {sheet}, row {row}, column {_column_name(frame, column)}",
            f"error value {value} in {column_letter(column)}{row}",
        )
    named = {i for i, c in enumerate(frame.columns) if not str(c).startswith("Unnamed: ")}
    for first_row, first, last_row, last in scan.merged:
        if named & set(range(first, last + 1)):
            span = f"{column_letter(first)}{first_row}:{column_letter(last)}{last_row}"
            raise WorkbookError(
                f"sheet {sheet}, row {first_row}, column {_column_name(frame, first)}",
                f"merged cells {span} inside the table (only the first cell holds a value;"
                " the others would read as empty): unmerge them",
            )


def _notes(checked: CheckedWorkbook, sheets: dict[str, pd.DataFrame]) -> list[str]:
    """What the load does not say otherwise: sheets not read, hidden sheets, rows and
    columns (all read), merged cells outside the table."""
    notes = [
        f"sheet {name!r} ignored (not one of the ten sheets read)"
        for name in checked.sheet_names
        if name not in checked.sheets
    ]
    for sheet, scan in checked.sheets.items():
        if scan.state != "visible":
            notes.append(f"sheet {sheet} is {scan.state} (read all the same)")
        if scan.hidden_rows:
            shown = ", ".join(str(r) for r in scan.hidden_rows[:10])
            more = f" and {len(scan.hidden_rows) - 10} more" if len(scan.hidden_rows) > 10 else ""
            notes.append(f"sheet {sheet}: hidden rows {shown}{more} (read all the same)")
        for first, last in scan.hidden_columns:
            if first >= scan.columns:
                continue
            columns = ", ".join(
                _column_name(sheets[sheet], c)
                for c in range(first, min(last, scan.columns - 1) + 1)
            )
            notes.append(f"sheet {sheet}: hidden columns {columns} (read all the same)")
        for first_row, first, last_row, last in scan.merged:
            span = f"{column_letter(first)}{first_row}:{column_letter(last)}{last_row}"
            notes.append(f"sheet {sheet}: merged cells {span} outside the table (ignored)")
    return notes


def _known_columns(
    frame: pd.DataFrame, sheet: str, expected: list[str], stray: list[str]
) -> pd.DataFrame:
    """The expected columns. A column without a header (`Unnamed: N`) is not part of the
    table: it goes, and whatever it holds is noted in `stray` (the real CA_Magneto sheet has
    empty ones and one '&'). A column with a header that is not expected is refused, as is
    an expected one missing."""
    keep = []
    for column in frame.columns:
        name = str(column)
        if name in expected:
            keep.append(column)
            continue
        filled = frame[column].dropna()
        if name.startswith("Unnamed: "):
            room = max(0, MAX_STRAY - len(stray))
            stray += [
                f"sheet {sheet}, row {_row(i)}, column {name}: {_shown(v)} ignored (no header)"
                for i, v in filled.iloc[:room].items()
            ]
            if len(filled) > room:
                stray.append(f"sheet {sheet}, column {name}: {len(filled) - room} more ignored")
            continue
        row = _row(filled.index[0]) if not filled.empty else 1
        raise WorkbookError(
            f"sheet {sheet}, row {row}, column {name}",
            f"unexpected column (expected {', '.join(expected)})",
        )
    absent = [c for c in expected if c not in frame.columns]
    if absent:
        raise WorkbookError(f"sheet {sheet}, row 1, column {absent[0]}", "missing column")
    return frame[keep]


def _row(index) -> int:
    """The Excel row of a DataFrame row: the header is row 1."""
    return int(index) + 2


def _cities(frame: pd.DataFrame, sheet: str) -> pd.Series:
    cities = frame["Villes"]
    for index, value in cities.items():
        if not isinstance(value, str) or not value.strip():
            raise WorkbookError(f"sheet {sheet}, row {_row(index)}, column Villes", "no city")
        _text(value.strip(), sheet, index, "Villes")
    stripped = cities.str.strip()
    twice = stripped[stripped.duplicated(keep=False)]
    if not twice.empty:
        rows = ", ".join(str(_row(i)) for i in twice.index)
        raise WorkbookError(
            f"sheet {sheet}, row {_row(twice.index[-1])}, column Villes",
            f"city {twice.iloc[0]!r} appears twice (rows {rows})",
        )
    return stripped


def _text(value: str, sheet: str, index, column: str) -> str:
    """Text as loaded: no control characters or lone surrogates, at most 64 bytes."""
    where = f"sheet {sheet}, row {_row(index)}, column {column}"
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise WorkbookError(where, f"the text holds a control character (U+{ord(char):04X})")
    size = len(value.encode())
    if size > MAX_TEXT_BYTES:
        raise WorkbookError(where, f"the text is {size} bytes long (at most {MAX_TEXT_BYTES})")
    return value


def _numbers(
    frame: pd.DataFrame, sheet: str, column: str, whole: bool, limit: float | None = None
) -> pd.Series:
    """The column as numbers (empty cells NULL). Refused: text that is not a decimal number,
    a boolean, a date, an infinity or NaN, a fraction where `whole` (whole numbers stored as
    floats, as in the real files, are accepted), a number beyond +-`limit` (by default
    2**53 - 1 for whole numbers, 1e15 for amounts)."""
    limit = limit or (MAX_WHOLE if whole else MAX_AMOUNT)
    numbers = []
    for index, value in frame[column].items():
        number, reason = _number(value)
        if reason is None and number is not None:
            if whole and not number.is_integer():
                reason = f"{number!r} is not a whole number of units"
            elif abs(number) > limit:
                reason = f"{number:g} is out of range (at most {limit:,.0f} either way)"
        if reason is not None:
            raise WorkbookError(f"sheet {sheet}, row {_row(index)}, column {column}", reason)
        numbers.append(number)
    series = pd.Series(numbers, index=frame.index, dtype="float64")
    return series.astype("Int64") if whole else series


def _number(value) -> tuple[float | None, str | None]:
    """A cell as a finite float, or why not."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return None, f"{'TRUE' if value else 'FALSE'} is a boolean, not a number"
    if isinstance(value, datetime | date | time | timedelta):
        return None, f"{value} is a date or a time, not a number"
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and _DECIMAL.match(value.strip()):
        number = float(value.strip())
    else:
        return None, f"{_shown(value)} is not a number"
    if not math.isfinite(number):
        return None, f"{_shown(value)} is not a finite number"
    return number, None


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _stores(frame: pd.DataFrame, stray: list[str]) -> pd.DataFrame:
    frame = _known_columns(frame, STORES_SHEET, list(STORE_COLUMNS), stray)
    frame = frame.dropna(how="all")
    stores = pd.DataFrame({"store_city": _cities(frame, STORES_SHEET)})
    for source, column in STORE_COLUMNS.items():
        if column == "store_city":
            continue
        if column in STORE_TEXT:
            text = frame[source].astype("string").str.strip()
            for index, value in text.dropna().items():
                _text(value, STORES_SHEET, index, source)
            stores[column] = text
        else:
            limit = WHOLE_LIMITS.get(column)
            stores[column] = _numbers(
                frame, STORES_SHEET, source, column in STORE_WHOLE, limit=limit
            )
    return stores.reset_index(drop=True)


def _measure_sheet(
    frame: pd.DataFrame,
    sheet: str,
    name: WorkbookName,
    measure: str,
    known: set[str],
    stray: list[str],
) -> pd.DataFrame:
    """One measure sheet as long rows: store_city, month_start, objective, actual."""
    columns = _month_columns(frame, sheet, name)
    expected = ["Villes", *(c for pair in columns for c in pair)]
    frame = _known_columns(frame, sheet, expected, stray)
    frame = frame.dropna(how="all")
    cities = _cities(frame, sheet)
    unknown = cities[~cities.isin(known)]
    if not unknown.empty:
        raise WorkbookError(
            f"sheet {sheet}, row {_row(unknown.index[0])}, column Villes",
            f"city {unknown.iloc[0]!r} is not in the {STORES_SHEET} sheet",
        )
    whole = measure == "units"
    parts = []
    for month, (objective, actual) in zip(name.months, columns, strict=True):
        parts.append(
            pd.DataFrame(
                {
                    "store_city": cities,
                    "month_start": month,
                    "objective": _numbers(frame, sheet, objective, whole),
                    "actual": _numbers(frame, sheet, actual, whole),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _month_columns(frame: pd.DataFrame, sheet: str, name: WorkbookName) -> list[tuple[str, str]]:
    """(objective, actual) column names per month, as the sheet spells them."""
    if name.month is not None:
        return [("O_mois", "R_mois")]
    by_plain = {plain(str(c)): str(c) for c in frame.columns}
    pairs = []
    for month in MONTHS:
        pair = []
        for prefix in ("o", "r"):
            found = by_plain.get(f"{prefix}_{month}")
            if found is None:
                raise WorkbookError(
                    f"sheet {sheet}, row 1, column {prefix.upper()}_{month.capitalize()}",
                    "missing column",
                )
            pair.append(found)
        pairs.append((pair[0], pair[1]))
    return pairs


def _measure_column(column: str, measure: str) -> str:
    return f"{measure}_{column}" if column in ("objective", "actual") else column


def _join_families(long_sheets: list[pd.DataFrame]) -> pd.DataFrame:
    """Units, turnover and margin of one family side by side: one row per city, month and
    family (a city missing from one of a family's sheets has NULL measures there)."""
    keys = ["store_city", "month_start", "family"]
    families = []
    for family in FAMILIES:
        frames = [f for f in long_sheets if (f["family"] == family).all()]
        joined = frames[0]
        for other in frames[1:]:
            joined = joined.merge(other, on=keys, how="outer")
        families.append(joined)
    sales = pd.concat(families, ignore_index=True)
    return sales[list(SALES_COLUMNS)].sort_values(keys, ignore_index=True)
