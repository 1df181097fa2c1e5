"""The per-file ledger (`etl_audit.file_ledger`): which object version went into which table.

Rows for a published load are written on the publishing connection, inside its transaction,
so the ledger and the data it describes commit or vanish together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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


# An upload is a version *and* a landing: the same content landing again after its verdict
# was recorded is a new upload (A, B, then A again; a refused file re-uploaded unchanged once
# its contract allows it). Landing times are S3's (LastModified: a multipart upload's is when
# it began; a notification's event time: when it completed), verdict times ours: an upload
# that landed no later than a verdict of its version (plus this much clock skew) is the one
# that verdict judged.
CLOCK_SKEW = timedelta(seconds=1)


def recorded_uploads(
    cur: Cursor,
    objects: Iterable[SourceObject],
    target_table: str | None = None,
    status: str | None = None,
) -> set[SourceObject]:
    """Which of these uploads (a version *and* its landing: the same content landing again
    after its verdict is a new upload) the ledger has a verdict for: in `target_table` (or any
    table), with `status` (or any)."""
    objects = list(objects)
    found: set[SourceObject] = set()
    for start in range(0, len(objects), 1000):  # an IN list per 1,000 keys, on both dialects
        page = objects[start : start + 1000]
        cur.execute(
            sql.SQL(
                "select bucket, object_key, etag, recorded_at from {} where object_key in %s"
                " and target_table = coalesce(%s, target_table)"
                " and status = coalesce(%s, status)"
            ).format(LEDGER),
            (tuple({o.key for o in page}), target_table, status),
        )
        found |= _judged(page, cur.fetchall())
    return found


def _judged(objects: list[SourceObject], rows: list[tuple]) -> set[SourceObject]:
    """The objects a verdict among `rows` (bucket, key, etag, recorded_at) judged: of their
    version, recorded when or after they landed."""
    judged_at: dict[tuple[str, str, str], datetime] = {}
    for bucket, key, etag, recorded_at in rows:
        version = (bucket, key, etag)
        judged_at[version] = max(recorded_at, judged_at.get(version, recorded_at))
    return {o for o in objects if o.version in judged_at and _landed_by(o, judged_at[o.version])}


def _landed_by(source: SourceObject, judged_at: datetime) -> bool:
    landed = naive_utc(source.last_modified)
    return landed is None or landed <= judged_at + CLOCK_SKEW


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


NO_RANK: list[sql.Composable] = []


def file_history(
    cur: Cursor,
    target_table: str,
    landed_since: datetime | None = None,
    after: tuple | None = None,
    limit: int = 1000,
    rank_in_second: Sequence[sql.Composable] = NO_RANK,
) -> list[dict]:
    """What happened to each file version of a table, in landing order: by when it landed,
    then `rank_in_second` (expressions over `object_key`: how its domain orders files whose
    LastModified is the same whole second, which S3 does not), then key; one row per ledger
    entry. `after` is the `position` of the last row already seen."""
    position = [
        sql.SQL("last_modified"),
        *rank_in_second,
        sql.SQL("object_key"),
        sql.SQL("recorded_at"),
    ]
    clauses = [sql.SQL("target_table = %(t)s")]
    if landed_since is not None:
        clauses.append(sql.SQL("last_modified >= %(since)s"))
    if after is not None:
        clauses.append(_after(position))
    listed = sql.SQL(", ").join(position)
    cur.execute(
        sql.SQL(
            "select object_key, etag, size_bytes, last_modified, target_table, status, records,"
            " rows_loaded, error, run_id, recorded_at, {position} from {ledger} where {where}"
            " order by {position} limit %(limit)s"
        ).format(position=listed, ledger=LEDGER, where=sql.SQL(" and ").join(clauses)),
        {
            "t": target_table,
            "since": naive_utc(landed_since),
            **{f"a{i}": value for i, value in enumerate(after or ())},
            "limit": limit,
        },
    )
    fields = len(FILE_FIELDS)
    return [
        {**dict(zip(FILE_FIELDS, row[:fields], strict=True)), "position": tuple(row[fields:])}
        for row in cur.fetchall()
    ]


def _after(position: list[sql.Composable], first: int = 0) -> sql.Composable:
    """`position > (%(a0)s, %(a1)s, ...)` spelled out term by term (Redshift compares no row
    values)."""
    term, value = position[first], sql.Placeholder(f"a{first}")
    if first == len(position) - 1:
        return sql.SQL("{} > {}").format(term, value)
    return sql.SQL("({t} > {v} or ({t} = {v} and {rest}))").format(
        t=term, v=value, rest=_after(position, first + 1)
    )
