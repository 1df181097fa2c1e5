"""The per-file ledger (`etl_audit.file_ledger`): which object version went into which table.

Rows for a published load are written on the publishing connection, inside its transaction,
so the ledger and the data it describes commit or vanish together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor
from psycopg2.extras import execute_values

from etl_assets.loading.sql_files import DDL, read_sql, sql_folder

LEDGER = sql.Identifier("etl_audit", "file_ledger")
LEDGER_ROWS_PER_INSERT = 500
ERROR_BYTES = 4096  # the error column's width: bytes on Redshift
LOADED, REJECTED, SUPERSEDED = "loaded", "rejected", "superseded"


@dataclass(frozen=True)
class SourceObject:
    """One version of one S3 object: the unit of exactly-once loading."""

    bucket: str
    key: str
    etag: str
    size: int
    last_modified: datetime | None = None

    @property
    def version(self) -> tuple[str, str, str]:
        return (self.bucket, self.key, self.etag)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class LedgerEntry:
    source: SourceObject
    status: str
    records: int | None = None
    rows_loaded: int | None = None
    error: str | None = None


AUDIT_SCHEMA = "etl_audit"


def ensure_ledger(cur: Cursor) -> None:
    """Create the ledger table; the caller has created the `etl_audit` schema."""
    cur.execute(read_sql(sql_folder(__file__), "file_ledger", DDL))


def published_files(
    cur: Cursor, target_table: str, partition_key: str | None
) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(bucket, key, etag) -> (records, rows) of the load published now for this table/partition."""
    cur.execute(
        sql.SQL(
            "select bucket, object_key, etag, records, rows_loaded from {ledger}"
            " where target_table = %(t)s and coalesce(partition_key, '') = %(p)s"
            " and load_id = (select load_id from {ledger}"
            "  where target_table = %(t)s and coalesce(partition_key, '') = %(p)s"
            "  and status = %(s)s order by recorded_at desc limit 1)"
        ).format(ledger=LEDGER),
        {"t": target_table, "p": partition_key or "", "s": LOADED},
    )
    return {(b, k, e): (records, rows) for b, k, e, records, rows in cur.fetchall()}


def loaded_versions(
    cur: Cursor, target_table: str, objects: Iterable[SourceObject]
) -> set[tuple[str, str, str]]:
    """Which of these object versions were already loaded into the table (append, merge)."""
    return recorded_versions(cur, target_table, objects, LOADED)


def recorded_versions(
    cur: Cursor, target_table: str, objects: Iterable[SourceObject], status: str | None = None
) -> set[tuple[str, str, str]]:
    """Which of these object versions the ledger has a row for (with `status`, or any)."""
    keys = sorted({o.key for o in objects})
    if not keys:
        return set()
    cur.execute(
        sql.SQL(
            "select distinct bucket, object_key, etag from {} where target_table = %s"
            " and object_key in %s and status = coalesce(%s, status)"
        ).format(LEDGER),
        (target_table, tuple(keys), status),
    )
    return {(b, k, e) for b, k, e in cur.fetchall()}


def loaded_anywhere(cur: Cursor, bucket: str, keys: list[str]) -> set[tuple[str, str]]:
    """(key, etag) of these keys' versions loaded into any table."""
    found: set[tuple[str, str]] = set()
    for start in range(0, len(keys), 1000):  # an IN list per 1,000 keys, on both dialects
        cur.execute(
            sql.SQL(
                "select distinct object_key, etag from {} where bucket = %s and status = %s"
                " and object_key in %s"
            ).format(LEDGER),
            (bucket, LOADED, tuple(keys[start : start + 1000])),
        )
        found |= set(cur.fetchall())
    return found


def published_last_modified(cur: Cursor, target_table: str) -> datetime | None:
    """When the newest object version published into this table was last modified."""
    cur.execute(
        sql.SQL("select max(last_modified) from {} where target_table = %s and status = %s").format(
            LEDGER
        ),
        (target_table, LOADED),
    )
    return cur.fetchone()[0]


def record(
    cur: Cursor,
    entries: Iterable[LedgerEntry],
    *,
    load_id: str,
    target_table: str,
    partition_key: str | None,
    run_id: str | None,
) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (
            load_id,
            e.source.bucket,
            e.source.key,
            e.source.etag,
            e.source.size,
            naive_utc(e.source.last_modified),
            target_table,
            partition_key,
            e.status,
            e.records,
            e.rows_loaded,
            fit_bytes(e.error, ERROR_BYTES),
            run_id,
            now,
        )
        for e in entries
    ]
    if not rows:
        return
    statement = (
        'insert into "etl_audit"."file_ledger" (load_id, bucket, object_key, etag, size_bytes,'
        " last_modified, target_table, partition_key, status, records, rows_loaded, error,"
        " run_id, recorded_at) values %s"
    )
    # multi-row INSERTs, not one statement per file (15,000 for the full song data set):
    # https://docs.aws.amazon.com/redshift/latest/dg/c_best-practices-multi-row-inserts.html
    # A page stays far below Redshift's 16 MB statement limit (error text is cut at 4 KB).
    execute_values(cur, statement, rows, page_size=LEDGER_ROWS_PER_INSERT)


def fit_bytes(text: str | None, limit: int) -> str | None:
    """`text` cut to at most `limit` bytes of UTF-8, never inside a character, marked '…'
    where it was cut."""
    if not text:
        return None
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode("utf-8", "ignore") + "…"


def naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


FILE_FIELDS = (
    "key",
    "etag",
    "size",
    "landed_at",
    "target_table",
    "status",
    "records",
    "rows",
    "error",
    "run_id",
    "processed_at",
)


def file_history(
    cur: Cursor,
    target_table: str,
    landed_since: datetime | None = None,
    after: tuple[datetime, datetime, str] | None = None,
    limit: int = 1000,
) -> list[dict]:
    """What happened to each file version of a table, oldest landing first: one row per
    ledger entry. `after` is the (landed_at, processed_at, key) of the last row already seen."""
    clauses = [sql.SQL("target_table = %(t)s")]
    if landed_since is not None:
        clauses.append(sql.SQL("last_modified >= %(since)s"))
    if after is not None:
        clauses.append(
            sql.SQL(
                "(last_modified > %(a0)s or (last_modified = %(a0)s and (recorded_at > %(a1)s"
                " or (recorded_at = %(a1)s and object_key > %(a2)s))))"
            )
        )
    cur.execute(
        sql.SQL(
            "select object_key, etag, size_bytes, last_modified, target_table, status, records,"
            " rows_loaded, error, run_id, recorded_at from {} where {}"
            " order by last_modified, recorded_at, object_key limit %(limit)s"
        ).format(LEDGER, sql.SQL(" and ").join(clauses)),
        {
            "t": target_table,
            "since": naive_utc(landed_since),
            "a0": after[0] if after else None,
            "a1": after[1] if after else None,
            "a2": after[2] if after else None,
            "limit": limit,
        },
    )
    return [dict(zip(FILE_FIELDS, row, strict=True)) for row in cur.fetchall()]
