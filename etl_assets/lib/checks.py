"""Checks generated from a table's declaration; every check name comes from here.

Shadow checks run inside a load, on the rows about to be published; they are blocking: a
failure means nothing is published. Reference checks read published tables after the publish
(the referenced table may be built later in the same run) as ordinary asset checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    asset_check,
)
from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.loading.dialect import checked_identifier, table_ref
from etl_assets.loading.loader import CheckOutcome, ShadowCheck, WrittenRows
from etl_assets.loading.postgres_copy import LoadedFile
from etl_assets.loading.tables import WARN, Reference, TableSpec
from etl_assets.resources.warehouse import WarehouseResource

SAMPLE = 10


class CheckNames:
    """The one place check names are made."""

    ROWS_MATCH_SOURCE = "rows_match_source"
    NO_KEY_DRIFT = "no_source_key_drift"

    @staticmethod
    def unique_not_null(columns: Sequence[str]) -> str:
        return "_".join(columns) + "_unique_not_null"

    @staticmethod
    def not_null(columns: Sequence[str]) -> str:
        return "_".join(columns) + "_not_null" if len(columns) == 1 else "required_columns_not_null"

    @staticmethod
    def references(reference: Reference) -> str:
        return "references_" + reference.to_table.split(".")[-1]


def asset_key(table: TableSpec) -> AssetKey:
    """Asset key = [schema, table]."""
    return AssetKey([table.schema, table.name])


# ---- shadow checks (blocking, before publish) -------------------------------------------


class NamedCheck(NamedTuple):
    """A check on the rows before publish: its name, what it asserts, the check. One that is
    not `blocking` reports (WARN) and never stops the publish."""

    name: str
    description: str
    check: ShadowCheck
    blocking: bool = True


def shadow_checks(
    table: TableSpec, *, from_source: bool, key_drift: bool = False
) -> list[NamedCheck]:
    """Every blocking check the declaration asks for."""
    found: list[NamedCheck] = []
    if from_source:
        found.append(
            NamedCheck(
                CheckNames.ROWS_MATCH_SOURCE,
                "Rows loaded equal the records in the source files (before publish).",
                rows_match_source(),
            )
        )
    if key_drift:
        found.append(
            NamedCheck(
                CheckNames.NO_KEY_DRIFT,
                "Every record carries exactly the expected JSON keys (before publish).",
                no_key_drift(),
            )
        )
    if table.key:
        found.append(
            NamedCheck(
                CheckNames.unique_not_null(table.key),
                f"{', '.join(table.key)} is unique and never null (before publish).",
                unique_not_null(*table.key),
            )
        )
    if table.not_null:
        found.append(
            NamedCheck(
                CheckNames.not_null(table.not_null),
                f"{', '.join(table.not_null)} never null (before publish).",
                not_null(*table.not_null),
            )
        )
    return found


def blocking_specs(table: TableSpec, checks: Sequence[NamedCheck]) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            c.name, asset=asset_key(table), blocking=c.blocking, description=c.description
        )
        for c in checks
    ]


def combine(*checks: ShadowCheck) -> ShadowCheck:
    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list[CheckOutcome]:
        return [outcome for c in checks for outcome in c(cur, rows, files)]

    return check


def rows_match_source() -> ShadowCheck:
    """The records read from the files (counted on the way to the warehouse) equal the rows
    the warehouse wrote: as its COPY reported them for a fresh load, counted in the published
    table when nothing new was loaded."""

    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list[CheckOutcome]:
        if isinstance(rows, WrittenRows):
            table_rows = rows.written
        else:
            cur.execute(sql.SQL("select count(*) from {} as checked").format(rows))
            (table_rows,) = cur.fetchone()
        records = sum(f.records for f in files)
        passed = table_rows == records
        detail = f"{table_rows} rows, {records} records in {len(files)} source files"
        if not passed:
            off = [
                f"{f.source.key}: {f.records} records, {f.rows} rows"
                for f in files
                if f.records != f.rows
            ][:SAMPLE]
            detail += "; files off: " + "; ".join(off) if off else ""
        metadata = {"rows": table_rows, "records": records}
        return [CheckOutcome(CheckNames.ROWS_MATCH_SOURCE, passed, detail, metadata=metadata)]

    return check


def no_key_drift() -> ShadowCheck:
    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list[CheckOutcome]:
        del cur, rows
        drifted = [f for f in files if f.missing_keys or f.unknown_keys]
        problems = [
            f"{f.source.key}: missing {list(f.missing_keys)}, unknown {list(f.unknown_keys)}"
            for f in drifted[:SAMPLE]
        ]
        detail = (
            "; ".join(problems)
            if drifted
            else f"{len(files)} files carry exactly the expected keys"
        )
        metadata = {"drifted_files": len(drifted)}
        return [CheckOutcome(CheckNames.NO_KEY_DRIFT, not drifted, detail, metadata=metadata)]

    return check


def unique_not_null(*columns: str) -> ShadowCheck:
    name = CheckNames.unique_not_null(columns)

    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list[CheckOutcome]:
        del files
        cols = sql.SQL(", ").join(checked_identifier(c) for c in columns)
        any_null = sql.SQL(" or ").join(
            sql.SQL("{} is null").format(checked_identifier(c)) for c in columns
        )
        cur.execute(sql.SQL("select count(*) from {} as checked where {}").format(rows, any_null))
        (nulls,) = cur.fetchone()
        cur.execute(
            sql.SQL(
                "select {cols}, count(*) from {rows} as checked where not ({any_null})"
                " group by {cols} having count(*) > 1 order by count(*) desc, {cols} limit {n}"
            ).format(cols=cols, rows=rows, any_null=any_null, n=sql.Literal(SAMPLE))
        )
        duplicates = cur.fetchall()
        passed = nulls == 0 and not duplicates
        shown = ", ".join(f"{_key_text(row[:-1])} x{row[-1]}" for row in duplicates)
        detail = f"{nulls} rows with a null key; duplicated keys (up to {SAMPLE}): " + (
            shown or "none"
        )
        metadata = {"null_keys": nulls, "duplicated_keys": len(duplicates)}
        return [CheckOutcome(name, passed, detail, metadata=metadata)]

    return check


def not_null(*columns: str) -> ShadowCheck:
    name = CheckNames.not_null(columns)

    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list[CheckOutcome]:
        del files
        counts = sql.SQL(", ").join(
            sql.SQL("sum(case when {} is null then 1 else 0 end)").format(checked_identifier(c))
            for c in columns
        )
        cur.execute(sql.SQL("select {} from {} as checked").format(counts, rows))
        nulls = {c: int(n or 0) for c, n in zip(columns, cur.fetchone(), strict=True)}
        bad = {c: n for c, n in nulls.items() if n}
        detail = ", ".join(f"{c}: {n} nulls" for c, n in bad.items()) or "no nulls"
        return [CheckOutcome(name, not bad, detail, metadata={"null_values": sum(bad.values())})]

    return check


def _key_text(values: Sequence) -> str:
    return str(values[0]) if len(values) == 1 else "(" + ", ".join(map(str, values)) + ")"


# ---- reference checks (after publish) ---------------------------------------------------


def reference_checks(table: TableSpec) -> list[AssetChecksDefinition]:
    """One asset check per referenced table: every non-null value of the referencing columns
    exists there; a failure lists the unknown values with how many rows carry each."""
    return [_reference_check(table, reference) for reference in table.references]


def _reference_check(table: TableSpec, reference: Reference) -> AssetChecksDefinition:
    to_schema, to_table = reference.to_table.split(".")
    severity = AssetCheckSeverity.WARN if reference.severity == WARN else AssetCheckSeverity.ERROR
    columns = ", ".join(reference.columns)

    @asset_check(
        asset=asset_key(table),
        name=CheckNames.references(reference),
        additional_deps=[AssetKey([to_schema, to_table])],
        description=f"Every {columns} is found in {reference.to_table} ({reference.to_column})"
        + (" (WARN: lists unknown values)" if severity == AssetCheckSeverity.WARN else "."),
        blocking=False,
    )
    def _check(warehouse: WarehouseResource) -> AssetCheckResult:
        unknown = warehouse.query(_unknown_values(table, reference))
        listed = ", ".join(f"{col}={value} ({n} rows)" for col, value, n in unknown[:SAMPLE])
        more = f" and more (showing {SAMPLE})" if len(unknown) > SAMPLE else ""
        return AssetCheckResult(
            passed=not unknown,
            severity=severity,
            description=f"not in {reference.to_table}: {listed}{more}"
            if unknown
            else f"every {columns} found in {reference.to_table}",
            metadata={"unknown_values_shown": min(len(unknown), SAMPLE)},
        )

    return _check


def _unknown_values(table: TableSpec, reference: Reference) -> sql.Composable:
    """Per referencing column: value, rows; the most frequent first (one row more than shown)."""
    to_schema, to_table = reference.to_table.split(".")
    parts = [
        sql.SQL(
            "select {name} as column_name, cast(r.{col} as varchar(256)) as value, count(*) as n"
            " from {table} as r left join {to} as t on t.{to_col} = r.{col}"
            " where r.{col} is not null and t.{to_col} is null group by 1, 2"
        ).format(
            name=sql.Literal(column),
            col=checked_identifier(column),
            table=table.ref,
            to=table_ref(to_schema, to_table),
            to_col=checked_identifier(reference.to_column),
        )
        for column in reference.columns
    ]
    return sql.SQL("{} order by 3 desc, 1, 2 limit {}").format(
        sql.SQL(" union all ").join(parts), sql.Literal(SAMPLE + 1)
    )
