"""Load S3 objects into a table: shadow table, checks, atomic publish, ledger — one transaction.

    create temp shadow (like target)  ->  fill it from the objects (dialect-specific)
    ->  run the blocking checks on it  ->  delete the target's rows (all, or one partition)
    ->  insert the shadow's rows  ->  ledger rows  ->  commit

Readers see the old rows until the commit and the new rows after it. Nothing here TRUNCATEs:
on Redshift TRUNCATE commits on its own and would publish an empty table mid-load.
A connection lost anywhere before the commit leaves the published table and ledger untouched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.loading import ledger
from etl_assets.loading.formats import FileFormat
from etl_assets.loading.ledger import LedgerEntry, SourceObject
from etl_assets.loading.postgres_copy import LoadedFile, LoadError, fill_from_objects
from etl_assets.resources.dialect import redshift_copy, table_ref
from etl_assets.resources.warehouse import WarehouseResource


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check evaluated on the shadow table, before publish."""

    name: str
    passed: bool
    detail: str
    blocking: bool = True
    metadata: dict = field(default_factory=dict)


# (cursor, relation holding the rows to check, files they came from) -> outcomes
ShadowCheck = Callable[[Cursor, sql.Composable, Sequence[LoadedFile]], list[CheckOutcome]]


@dataclass(frozen=True)
class LoadTarget:
    """Where a load publishes: a whole table, or the rows of one partition window."""

    schema: str
    table: str
    partition_key: str | None = None
    partition_filter: sql.Composable | None = None  # rows of the partition, e.g. ts range
    # The table holds one snapshot: a version older than the published one never replaces it.
    snapshot: bool = False
    # Publish a whole-table replace by renaming the loaded table into place instead of copying
    # its rows again; `dependents` (view DDL) are re-run in the same transaction, because
    # PostgreSQL views follow a table's identity, not its name (Redshift's late-binding views
    # follow the name).
    swap: bool = False
    dependents: tuple[sql.Composable, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def ref(self) -> sql.Identifier:
        return table_ref(self.schema, self.table)

    def published_rows(self) -> sql.Composable:
        """The published rows of this target, as a relation checks can read like the shadow."""
        if self.partition_filter is None:
            return self.ref
        return sql.SQL("(select * from {} where {})").format(self.ref, self.partition_filter)

    @property
    def shadow(self) -> sql.Identifier:
        if self.swap:  # a real table beside the target, renamed into place at publish
            return table_ref(self.schema, f"{self.table}__next")
        return sql.Identifier(f"{self.table}__shadow")


@dataclass
class LoadResult:
    status: str  # published | up_to_date | rejected | superseded
    load_id: str
    files: list[LoadedFile]
    checks: list[CheckOutcome]
    rows_published: int = 0

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)


class ObjectLoader:
    """Loads a set of object versions into one target, exactly once per version set."""

    def __init__(self, warehouse: WarehouseResource, s3_client, run_id: str | None = None):
        self.warehouse = warehouse
        self.s3 = s3_client
        self.run_id = run_id

    def load(
        self,
        target: LoadTarget,
        objects: Sequence[SourceObject],
        file_format: FileFormat,
        checks: ShadowCheck | None = None,
        superseded: Sequence[SourceObject] = (),
    ) -> LoadResult:
        """`superseded`: versions this load makes obsolete unloaded (recorded as such)."""
        load_id = str(uuid.uuid4())
        with self.warehouse.get_connection() as conn, conn.cursor() as cur:
            self._serialize(cur, target)
            if target.snapshot and self._older_than_published(cur, target, objects):
                self._record(
                    cur, [LedgerEntry(o, ledger.SUPERSEDED) for o in objects], target, load_id
                )
                conn.commit()
                return LoadResult("superseded", load_id, [], [])
            current = ledger.published_files(cur, target.name, target.partition_key)
            if current and set(current) == {o.version for o in objects}:
                files = [LoadedFile(o, *current[o.version]) for o in objects]
                outcomes = checks(cur, target.published_rows(), files) if checks else []
                return LoadResult("up_to_date", load_id, files, outcomes)
            create_shadow(cur, target)
            try:
                files = self._fill(cur, target, objects, file_format, load_id)
            except LoadError as error:
                conn.rollback()
                self._record_rejection(target, objects, error, load_id)
                raise
            outcomes = checks(cur, target.shadow, files) if checks else []
            if any(o.blocking and not o.passed for o in outcomes):
                conn.rollback()
                self._record_failed_checks(target, files, outcomes, load_id)
                return LoadResult("rejected", load_id, files, outcomes)
            rows = publish(cur, target)
            entries = [LedgerEntry(f.source, ledger.LOADED, f.records, f.rows) for f in files]
            entries += [LedgerEntry(o, ledger.SUPERSEDED) for o in superseded]
            self._record(cur, entries, target, load_id)
            conn.commit()
        return LoadResult("published", load_id, files, outcomes, rows)

    def _serialize(self, cur: Cursor, target: LoadTarget) -> None:
        """One load per table at a time. Redshift's serializable isolation already refuses a
        second concurrent publish; PostgreSQL gets a transaction-scoped advisory lock (readers
        are never blocked)."""
        if not self.warehouse.is_redshift:
            cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (target.name,))

    def _older_than_published(
        self, cur: Cursor, target: LoadTarget, objects: Sequence[SourceObject]
    ) -> bool:
        published = ledger.published_last_modified(cur, target.name)
        newest = max((o.last_modified for o in objects if o.last_modified), default=None)
        if published is None or newest is None:
            return False
        return ledger.naive_utc(newest) < published

    def _record(
        self, cur: Cursor, entries: list[LedgerEntry], target: LoadTarget, load_id: str
    ) -> None:
        ledger.record(
            cur,
            entries,
            load_id=load_id,
            target_table=target.name,
            partition_key=target.partition_key,
            run_id=self.run_id,
        )

    def _fill(
        self,
        cur: Cursor,
        target: LoadTarget,
        objects: Sequence[SourceObject],
        file_format: FileFormat,
        load_id: str,
    ) -> list[LoadedFile]:
        if not objects:
            return []
        if self.warehouse.is_redshift:
            return self._fill_redshift(cur, target, objects, file_format, load_id)
        return fill_from_objects(cur, self.s3, target.shadow, objects, file_format)

    def _fill_redshift(
        self,
        cur: Cursor,
        target: LoadTarget,
        objects: Sequence[SourceObject],
        file_format: FileFormat,
        load_id: str,
    ) -> list[LoadedFile]:
        """Redshift pulls the objects itself, in parallel, from a manifest of exact keys."""
        bucket = objects[0].bucket
        manifest_key = f"_manifests/{target.schema}/{target.table}/{load_id}.manifest"
        manifest = {"entries": [{"url": o.url, "mandatory": True} for o in objects]}
        self.s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())
        cur.execute(
            redshift_copy(
                target.shadow,
                f"s3://{bucket}/{manifest_key}",
                file_format,
                bucket,
                self.warehouse.iam_role,
                self.warehouse.region,
            )
        )
        cur.execute(
            "select trim(filename), sum(lines_scanned) from stl_load_commits"
            " where query = pg_last_copy_id() group by 1"
        )
        scanned = dict(cur.fetchall())
        return [LoadedFile(o, scanned.get(o.url, 0), scanned.get(o.url, 0)) for o in objects]

    def _record_rejection(
        self, target: LoadTarget, objects: Sequence[SourceObject], error: LoadError, load_id: str
    ) -> None:
        rejected = next((o for o in objects if o.key == error.key), None)
        if rejected is None:
            return
        entry = LedgerEntry(rejected, ledger.REJECTED, error=str(error))
        self._record_alone([entry], target, load_id)

    def _record_failed_checks(
        self,
        target: LoadTarget,
        files: Sequence[LoadedFile],
        outcomes: Sequence[CheckOutcome],
        load_id: str,
    ) -> None:
        reason = "; ".join(f"{o.name}: {o.detail}" for o in outcomes if o.blocking and not o.passed)
        entries = [
            LedgerEntry(
                f.source, ledger.REJECTED, f.records, None, f"blocking check failed: {reason}"
            )
            for f in files
        ]
        self._record_alone(entries, target, load_id)

    def _record_alone(self, entries: list[LedgerEntry], target: LoadTarget, load_id: str) -> None:
        with self.warehouse.get_connection() as conn, conn.cursor() as cur:
            self._record(cur, entries, target, load_id)
            conn.commit()


def create_shadow(cur: Cursor, target: LoadTarget) -> None:
    """An empty copy of the target's structure (Redshift keeps DIST/SORT keys): session-private,
    or for a swap a table beside the target, created in this uncommitted transaction."""
    kind = sql.SQL("table" if target.swap else "temp table")
    cur.execute(sql.SQL("create {} {} (like {})").format(kind, target.shadow, target.ref))


def publish(cur: Cursor, target: LoadTarget) -> int:
    """Replace the target's rows (or one partition's) with the shadow's; caller commits."""
    if target.swap:
        return _publish_by_rename(cur, target)
    delete = sql.SQL("delete from {}").format(target.ref)
    if target.partition_filter is not None:
        delete = sql.SQL("{} where {}").format(delete, target.partition_filter)
    cur.execute(delete)
    cur.execute(sql.SQL("insert into {} select * from {}").format(target.ref, target.shadow))
    rows = cur.rowcount
    cur.execute(sql.SQL("drop table {}").format(target.shadow))
    return rows


def _publish_by_rename(cur: Cursor, target: LoadTarget) -> int:
    cur.execute(sql.SQL("select count(*) from {}").format(target.shadow))
    (rows,) = cur.fetchone()
    old = sql.Identifier(f"{target.table}__old")
    cur.execute(sql.SQL("alter table {} rename to {}").format(target.ref, old))
    cur.execute(
        sql.SQL("alter table {} rename to {}").format(target.shadow, sql.Identifier(target.table))
    )
    for statement in target.dependents:
        cur.execute(statement)
    cur.execute(sql.SQL("drop table {}").format(table_ref(target.schema, f"{target.table}__old")))
    return rows


def rebuild_table(
    warehouse: WarehouseResource,
    target: LoadTarget,
    select: sql.Composable,
    checks: ShadowCheck | None = None,
) -> LoadResult:
    """Rebuild a derived table from a SELECT with the same shadow/check/publish discipline."""
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        create_shadow(cur, target)
        cur.execute(sql.SQL("insert into {} {}").format(target.shadow, select))
        outcomes = checks(cur, target.shadow, []) if checks else []
        if any(o.blocking and not o.passed for o in outcomes):
            conn.rollback()
            return LoadResult("rejected", "", [], outcomes)
        rows = publish(cur, target)
        conn.commit()
    return LoadResult("published", "", [], outcomes, rows)
