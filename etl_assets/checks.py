"""Checks shared by every domain.

Shadow checks run inside a load, on the rows about to be published (blocking: a failure means
nothing is published). Their results are reported as Dagster asset-check results by
`emit_load_result`. Post-publish checks are ordinary `@asset_check`s built in each domain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
)
from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.loading.loader import CheckOutcome, LoadResult, ShadowCheck
from etl_assets.loading.postgres_copy import LoadedFile

ROWS_MATCH_SOURCE = "rows_match_source"
NO_KEY_DRIFT = "no_source_key_drift"
SAMPLE = 10


def rows_match_source() -> ShadowCheck:
    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list[CheckOutcome]:
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
        return [
            CheckOutcome(
                ROWS_MATCH_SOURCE, passed, detail, metadata={"rows": table_rows, "records": records}
            )
        ]

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
        return [
            CheckOutcome(
                NO_KEY_DRIFT, not drifted, detail, metadata={"drifted_files": len(drifted)}
            )
        ]

    return check


def unique_not_null(column: str) -> ShadowCheck:
    name = f"{column}_unique_not_null"

    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list[CheckOutcome]:
        del files
        col = sql.Identifier(column)
        cur.execute(
            sql.SQL("select count(*) from {} as checked where {} is null").format(rows, col)
        )
        (nulls,) = cur.fetchone()
        cur.execute(
            sql.SQL(
                "select {col}, count(*) from {rows} as checked where {col} is not null"
                " group by {col} having count(*) > 1 order by count(*) desc, {col} limit {n}"
            ).format(col=col, rows=rows, n=sql.Literal(SAMPLE))
        )
        duplicates = cur.fetchall()
        passed = nulls == 0 and not duplicates
        detail = f"{nulls} null {column}; duplicated keys (up to {SAMPLE}): " + (
            ", ".join(f"{key} x{count}" for key, count in duplicates) or "none"
        )
        return [
            CheckOutcome(
                name, passed, detail, metadata={"nulls": nulls, "duplicated_keys": len(duplicates)}
            )
        ]

    return check


def combine(*checks: ShadowCheck) -> ShadowCheck:
    def check(cur: Cursor, rows: sql.Composable, files: Sequence[LoadedFile]) -> list[CheckOutcome]:
        return [outcome for c in checks for outcome in c(cur, rows, files)]

    return check


def blocking_spec(asset_key: AssetKey, name: str, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(name, asset=asset_key, blocking=True, description=description)


def emit_load_result(
    asset_key: AssetKey, result: LoadResult, extra_metadata: dict | None = None
) -> Iterator[AssetCheckResult | MaterializeResult]:
    """Check results first; then the materialization, or a Failure when a blocking check failed."""
    for outcome in result.checks:
        yield AssetCheckResult(
            asset_key=asset_key,
            check_name=outcome.name,
            passed=outcome.passed,
            severity=AssetCheckSeverity.ERROR if outcome.blocking else AssetCheckSeverity.WARN,
            description=outcome.detail,
            metadata=outcome.metadata,
        )
    if result.status == "rejected":
        failed = [f"{o.name}: {o.detail}" for o in result.checks if o.blocking and not o.passed]
        raise Failure(
            description=f"{asset_key.to_user_string()} not published; blocking checks failed: "
            + " | ".join(failed),
        )
    yield MaterializeResult(asset_key=asset_key, metadata=load_metadata(result, extra_metadata))


def load_metadata(result: LoadResult, extra: dict | None = None) -> dict:
    keys = [f.source.key for f in result.files]
    metadata: dict = {
        "status": result.status,
        "rows_published": result.rows_published,
        "source_records": result.records,
        "source_files": len(keys),
        "dagster/row_count": result.rows_published if result.status == "published" else None,
    }
    if keys:
        shown = keys[:50] + ([f"... {len(keys) - 50} more"] if len(keys) > 50 else [])
        metadata["source_keys"] = MetadataValue.md("\n".join(f"- `{k}`" for k in shown))
    if result.load_id and result.status == "published":
        metadata["load_id"] = result.load_id
    metadata.update(extra or {})
    return {k: v for k, v in metadata.items() if v is not None}
