"""Darties' own checks on the rows before publish (the declared keys and references are
generated from `tables.py`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.defs.darties import tables as t
from etl_assets.defs.darties.converters import Workbooks
from etl_assets.defs.darties.workbooks import MEASURES
from etl_assets.lib.checks import SAMPLE, NamedCheck, reference_checks
from etl_assets.loading.loader import CheckOutcome
from etl_assets.loading.postgres_copy import LoadedFile

SHEET_SUMS = "sheet_sums_match"
BUDGET_ACTUALS = "budget_actuals_null"
STRAY_CELLS = "no_stray_cells"
HIDDEN_OR_EXTRA = "no_hidden_or_extra_content"
UNITS_NOT_NEGATIVE = "units_not_negative"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def sheet_sums_match(workbooks: Workbooks) -> NamedCheck:
    """For every workbook loaded, sheet (measure x family) and objective/actual column: the
    sum of the rows about to be published equals the sum pandas read from the sheet."""

    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list:
        sums = sql.SQL(", ").join(sql.SQL("sum({})").format(sql.Identifier(m)) for m in MEASURES)
        off, compared = [], 0
        for file in files:
            read = workbooks.sheet_sums(file.source.version)
            if read is None:  # nothing converted now: this version was checked when loaded
                continue
            cur.execute(
                sql.SQL(
                    "select family, {} from {} as checked where source_key = %s group by family"
                ).format(sums, rows),
                (file.source.key,),
            )
            for family, *values in cur.fetchall():
                for measure, value in zip(MEASURES, values, strict=True):
                    compared += 1
                    expected = read.get((family, measure), 0.0)
                    if not _close(float(value or 0), expected):
                        off.append(f"{file.source.key} {family} {measure}: {value} != {expected}")
        detail = (
            "; ".join(off[:SAMPLE])
            if off
            else f"{compared} sheet sums equal to the workbook's (read by pandas)"
        )
        return [CheckOutcome(SHEET_SUMS, not off, detail, metadata={"sums_compared": compared})]

    return NamedCheck(
        SHEET_SUMS,
        "For every workbook sheet and objective/actual column, the sum about to be published "
        "equals the sum read from the sheet at conversion (before publish).",
        check,
    )


def budget_actuals_null() -> NamedCheck:
    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list:
        del files
        filled = sql.SQL(" or ").join(
            sql.SQL("{} is not null").format(sql.Identifier(m))
            for m in MEASURES
            if m.endswith("_actual")
        )
        cur.execute(
            sql.SQL(
                "select count(*) from {} as checked where source_kind = 'budget' and ({})"
            ).format(rows, filled)
        )
        (count,) = cur.fetchone()
        detail = f"{count} budget rows carry an actual" if count else "budget actuals are NULL"
        return [CheckOutcome(BUDGET_ACTUALS, count == 0, detail)]

    return NamedCheck(
        BUDGET_ACTUALS,
        "Actuals of budget months are NULL, never 0 (before publish).",
        check,
    )


def no_stray_cells(workbooks: Workbooks) -> NamedCheck:
    """WARN: content in columns without a header, which the conversion ignored."""

    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list:
        del cur, rows
        stray = [cell for f in files for cell in workbooks.stray_cells(f.source.version)]
        detail = "; ".join(stray[:SAMPLE]) if stray else "nothing outside the sheets' tables"
        return [
            CheckOutcome(
                STRAY_CELLS, not stray, detail, blocking=False, metadata={"cells": len(stray)}
            )
        ]

    return NamedCheck(
        STRAY_CELLS,
        "WARN: cells outside a sheet's table (in a column without a header) were ignored.",
        check,
        blocking=False,
    )


def no_hidden_or_extra_content(workbooks: Workbooks) -> NamedCheck:
    """WARN: sheets beyond the ten (not read), hidden sheets, rows and columns (read all the
    same), merged cells outside the table."""

    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list:
        del cur, rows
        notes = [
            f"{f.source.key}: {note}" for f in files for note in workbooks.notes(f.source.version)
        ]
        detail = "; ".join(notes[:SAMPLE]) if notes else "no extra sheet, nothing hidden"
        return [
            CheckOutcome(
                HIDDEN_OR_EXTRA,
                not notes,
                detail,
                blocking=False,
                metadata={"notes": len(notes)},
            )
        ]

    return NamedCheck(
        HIDDEN_OR_EXTRA,
        "WARN: a workbook has sheets besides the ten read (ignored), or hidden sheets, rows or "
        "columns (read all the same), or merged cells outside the table.",
        check,
        blocking=False,
    )


def units_not_negative() -> NamedCheck:
    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list:
        del files
        cur.execute(
            sql.SQL(
                "select store_city, month_start, family from {} as checked"
                " where units_objective < 0 or units_actual < 0"
                " order by 1, 2, 3 limit {}"
            ).format(rows, sql.Literal(SAMPLE + 1))
        )
        negative = cur.fetchall()
        shown = ", ".join(f"{c} {m} {f}" for c, m, f in negative[:SAMPLE])
        detail = f"negative units: {shown}" if negative else "no negative units"
        return [CheckOutcome(UNITS_NOT_NEGATIVE, not negative, detail, blocking=False)]

    return NamedCheck(
        UNITS_NOT_NEGATIVE,
        "WARN: units sold and their objectives are never negative.",
        check,
        blocking=False,
    )


sales_references = reference_checks(t.SALES)
