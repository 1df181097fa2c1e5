"""Darties workbooks read into long rows: one per store city, month and product family, with
the objective and actual of units, turnover and margin; and the `darties` sheet's store rows.

Every refusal names the workbook, the sheet, the Excel row and the column: analysts fix the
workbook, not the loader.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

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
_MONTHLY = re.compile(r"^([^\W\d_]+)_(\d{4})\.xlsx$")


def parse_name(file_name: str) -> WorkbookName:
    """`YYYY_HISTO.xlsx`, `YYYY_BUDGET.xlsx` or `<French month>_YYYY.xlsx` (any case, with
    or without accents)."""
    yearly = _YEARLY.match(file_name)
    if yearly:
        return WorkbookName(yearly.group(2).lower(), int(yearly.group(1)))
    monthly = _MONTHLY.match(file_name)
    if monthly:
        month = plain(monthly.group(1))
        if month not in MONTHS:
            raise WorkbookError(
                "file name",
                f"{monthly.group(1)!r} is not a French month name (janvier ... decembre)",
            )
        return WorkbookName("monthly", int(monthly.group(2)), MONTHS.index(month) + 1)
    raise WorkbookError(
        "file name",
        f"{file_name!r} is not YYYY_HISTO.xlsx, YYYY_BUDGET.xlsx or <French month>_YYYY.xlsx",
    )


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

    @property
    def cells(self) -> int:
        return int(self.sales.shape[0]) * 6 + int(self.stores.size)


def read_workbook(body: bytes, file_name: str) -> Workbook:
    """Read and check a workbook; WorkbookError names the sheet, row and column refused."""
    name = parse_name(file_name)
    sheets, engine = _read_sheets(body)
    missing = [s for s in (STORES_SHEET, *MEASURE_SHEETS) if s not in sheets]
    if missing:
        raise WorkbookError(
            f"sheet {missing[0]}",
            f"missing (expected sheets {STORES_SHEET}, {', '.join(MEASURE_SHEETS)};"
            f" found {', '.join(sheets) or 'none'})",
        )
    stray: list[str] = []
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
    return Workbook(name, sales, stores, sums, engine, stray)


def _read_sheets(body: bytes) -> tuple[dict[str, pd.DataFrame], str]:
    """Every sheet, read with python-calamine, or openpyxl where calamine cannot."""
    errors = []
    for engine in ("calamine", "openpyxl"):
        try:
            # only an empty cell is missing: pandas' default would also read text such as
            # 'n/a', 'NA' or '-' as NULL, silently
            sheets = pd.read_excel(
                io.BytesIO(body),
                sheet_name=None,
                engine=engine,
                keep_default_na=False,
                na_values=[""],
            )
            return sheets, engine
        except ImportError as error:
            errors.append(f"{engine}: {error}")
        except Exception as error:  # each engine has its own errors for a file it cannot read
            errors.append(f"{engine}: {type(error).__name__}: {error}")
    raise WorkbookError("", "not an Excel workbook (" + "; ".join(errors) + ")")


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
            stray += [
                f"sheet {sheet}, row {_row(i)}, column {name}: {v!r} ignored (no header)"
                for i, v in filled.items()
            ]
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
    stripped = cities.str.strip()
    twice = stripped[stripped.duplicated(keep=False)]
    if not twice.empty:
        rows = ", ".join(str(_row(i)) for i in twice.index)
        raise WorkbookError(
            f"sheet {sheet}, row {_row(twice.index[-1])}, column Villes",
            f"city {twice.iloc[0]!r} appears twice (rows {rows})",
        )
    return stripped


def _numbers(frame: pd.DataFrame, sheet: str, column: str, whole: bool) -> pd.Series:
    """The column as numbers (empty cells NULL); text refused, and fractions where `whole`
    (whole numbers stored as floats, as in the real files, are accepted)."""
    values = frame[column]
    numeric = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numeric.isna()
    if bad.any():
        index = bad.idxmax()
        raise WorkbookError(
            f"sheet {sheet}, row {_row(index)}, column {column}",
            f"{values[index]!r} is not a number",
        )
    if whole:
        fractional = numeric.notna() & (numeric != numeric.round())
        if fractional.any():
            index = fractional.idxmax()
            raise WorkbookError(
                f"sheet {sheet}, row {_row(index)}, column {column}",
                f"{float(numeric[index])!r} is not a whole number of units",
            )
        return numeric.astype("Int64")
    return numeric.astype("float64")


def _stores(frame: pd.DataFrame, stray: list[str]) -> pd.DataFrame:
    frame = _known_columns(frame, STORES_SHEET, list(STORE_COLUMNS), stray)
    frame = frame.dropna(how="all")
    stores = pd.DataFrame({"store_city": _cities(frame, STORES_SHEET)})
    for source, column in STORE_COLUMNS.items():
        if column == "store_city":
            continue
        if column in STORE_TEXT:
            stores[column] = frame[source].astype("string").str.strip()
        else:
            stores[column] = _numbers(frame, STORES_SHEET, source, column in STORE_WHOLE)
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
