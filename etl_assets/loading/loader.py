"""Load S3 objects into a table: shadow table, checks, atomic publish, ledger — one transaction.

    lock the target for writers  ->  stage: delete the target's rows (whole-table replace)
    or create a temp shadow (like target)  ->  fill it from the objects (dialect-specific)
    ->  run the blocking checks on it  ->  publish (a shadow: delete the rows the mode
    replaces, insert the shadow's)  ->  ledger rows  ->  commit

Readers see the old rows until the commit and the new rows after it. Nothing here TRUNCATEs:
on Redshift TRUNCATE commits on its own and would publish an empty table mid-load.
A connection lost anywhere before the commit leaves the published table and ledger untouched.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.loading import ledger
from etl_assets.loading.dialect import checked_identifier, serialize, table_ref
from etl_assets.loading.formats import FileFormat
from etl_assets.loading.ledger import LedgerEntry, SourceObject
from etl_assets.loading.postgres_copy import LoadedFile, LoadError, fill_from_objects
from etl_assets.loading.progress import Report
from etl_assets.loading.publish import (
    INCREMENTAL,
    Append,
    MergeByKey,
    Published,
    PublishMode,
    Replace,
    ReplacePartition,
    Snapshot,
    clear_for_in_place,
    fills_in_place,
    keys_already_published,
    publish,
    rows_written_here,
    shadow_name,
)
from etl_assets.loading.redshift_copy import CopyAccess, fill_from_s3
from etl_assets.loading.retry import retry_serialization
from etl_assets.loading.tables import relation_as_on_redshift
from etl_assets.resources.warehouse import WarehouseResource

log = logging.getLogger(__name__)


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


class WrittenRows(sql.Composed):
    """The relation of rows a load just wrote, with their number as PostgreSQL's COPY reported
    it: a check can reconcile with `written` instead of scanning the relation (for an append
    in place that scan reads the whole table, however small the file)."""

    def __init__(self, relation: sql.Composable, written: int):
        super().__init__([relation])
        self.written = written


@dataclass(frozen=True)
class LoadTarget:
    """The table a load publishes into, and how (see `etl_assets.loading.publish`)."""

    schema: str
    table: str
    mode: PublishMode = field(default_factory=Replace)

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def ref(self) -> sql.Identifier:
        return table_ref(self.schema, self.table)

    @property
    def partition_key(self) -> str | None:
        return self.mode.key if isinstance(self.mode, ReplacePartition) else None

    def published_rows(self) -> sql.Composable:
        """The published rows of this target, as a relation checks can read like the shadow."""
        if isinstance(self.mode, ReplacePartition):
            return sql.SQL("(select * from {} where {})").format(self.ref, self.mode.rows)
        if isinstance(self.mode, INCREMENTAL):  # nothing new: an empty load
            return sql.SQL("(select * from {} where 1 = 0)").format(self.ref)
        return self.ref

    @property
    def shadow(self) -> sql.Identifier:
        return shadow_name(self.schema, self.table)


class Converter(Protocol):
    """Rewrites an object the warehouse cannot COPY as it is (a JSON array, an Excel workbook)
    into one it can, beside it in the bucket; the ledger keeps the original's version."""

    def applies_to(self, dialect: str) -> bool: ...

    def convert(self, s3_client: Any, source: SourceObject) -> SourceObject: ...


@dataclass(frozen=True)
class LoadStep:
    """One load inside a transaction that may hold several (see `ObjectLoader.load_together`)."""

    target: LoadTarget
    objects: Sequence[SourceObject]
    file_format: FileFormat
    checks: ShadowCheck | None = None
    converter: Converter | None = None
    # several files whose blocking checks fail together are not all refused: the caller tries
    # them one by one (each file gets its own verdict)
    split_on_rejection: bool = False


# (cursor, objects) -> those of them that already have a verdict and must not be applied again;
# asked under the target's write lock, so two runs of the same files apply them once
AlreadyRecorded = Callable[[Cursor, str, Sequence[SourceObject]], set[SourceObject]]


@dataclass
class LoadResult:
    status: str  # published | up_to_date | rejected | superseded
    load_id: str
    files: list[LoadedFile]
    checks: list[CheckOutcome]
    rows_published: int = 0
    rows_deleted: int = 0  # rows the publish marked deleted (for VACUUM's rule)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)


class StepRejected(Exception):
    """A step's blocking checks failed: the transaction was rolled back, the step's files are
    recorded as rejected. `index` is the step's position in `load_together`."""

    def __init__(self, result: LoadResult, index: int = 0, split: bool = False):
        super().__init__("blocking checks failed")
        self.result = result
        self.index = index
        self.split = split  # not recorded: try the step's files one by one


class ObjectLoader:
    """Loads a set of object versions into one target, exactly once per version set."""

    def __init__(
        self,
        warehouse: WarehouseResource,
        s3_client,
        run_id: str | None = None,
        report: Report | None = None,
        already_recorded: AlreadyRecorded | None = None,
        record_refusals: bool = True,
    ):
        """`report`: told how far large files have streamed (a run's log).
        `already_recorded`: which objects have a verdict already (asked under the target's lock
        before a load and before a refusal is recorded: each gets one verdict); by default a
        load skips the versions it has published."""
        self.warehouse = warehouse
        self.s3 = s3_client
        self.run_id = run_id
        self.report = report
        self.already_recorded = already_recorded
        # False: a refused load records nothing (its caller tries the files again in parts)
        self.record_refusals = record_refusals

    def quiet(self) -> ObjectLoader:
        """This loader, recording no refusal: for a load its caller tries again in parts."""
        return ObjectLoader(
            self.warehouse, self.s3, self.run_id, self.report, self.already_recorded, False
        )

    def load(
        self,
        target: LoadTarget,
        objects: Sequence[SourceObject],
        file_format: FileFormat,
        checks: ShadowCheck | None = None,
        superseded: Sequence[SourceObject] = (),
        converter: Converter | None = None,
        force: bool = False,
    ) -> LoadResult:
        """`superseded`: versions this load makes obsolete unloaded (recorded as such).
        `force`: load the objects even if the ledger has them loaded (a deliberate replay).
        A transaction the warehouse cancels for serializability is retried whole."""
        result = retry_serialization(
            lambda: self._load_once(
                target, objects, file_format, checks, superseded, converter, force
            ),
            f"load into {target.name}",
        )
        if result.status == "published":
            after_publish(self.warehouse, [(target, result)])
        return result

    def _load_once(
        self,
        target: LoadTarget,
        objects: Sequence[SourceObject],
        file_format: FileFormat,
        checks: ShadowCheck | None,
        superseded: Sequence[SourceObject],
        converter: Converter | None,
        force: bool,
    ) -> LoadResult:
        load_id = str(uuid.uuid4())
        with self.warehouse.get_connection() as conn, conn.cursor() as cur:
            serialize(cur, self.warehouse.dialect, target.name)
            if isinstance(target.mode, Snapshot) and self._older_than_published(
                cur, target, objects
            ):
                self._record(
                    cur, [LedgerEntry(o, ledger.SUPERSEDED) for o in objects], target, load_id
                )
                conn.commit()
                return LoadResult("superseded", load_id, [], [])
            pending = list(objects) if force else self._not_yet_published(cur, target, objects)
            if pending is None:
                return self._up_to_date(cur, target, objects, checks, load_id)
            step = LoadStep(target, pending, file_format, checks, converter)
            try:
                result = self._publish_step(conn, cur, step, load_id, first_write=True)
            except StepRejected as rejected:
                return rejected.result
            entries = [LedgerEntry(o, ledger.SUPERSEDED) for o in superseded]
            self._record(cur, entries, target, load_id)
            conn.commit()
        return result

    def load_together(self, steps: Sequence[LoadStep], force: bool = False) -> list[LoadResult]:
        """Publish several loads in ONE transaction, in order (e.g. one table's append, then
        truncate, then upsert files): readers see none of them until all are published.
        A step whose versions are all loaded already (appends, merges) is `up_to_date`.
        A refused file raises `LoadError` and blocking checks failing raise `StepRejected`,
        after the rollback and the ledger row: nothing of any step is published, and the
        caller may retry the others."""
        names = ", ".join(sorted({step.target.name for step in steps}))
        results = retry_serialization(
            lambda: self._load_together_once(steps, force), f"load into {names}"
        )
        published = [
            (s.target, r) for s, r in zip(steps, results, strict=True) if r.status == "published"
        ]
        after_publish(self.warehouse, published)
        return results

    def _load_together_once(self, steps: Sequence[LoadStep], force: bool) -> list[LoadResult]:
        results: list[LoadResult] = []
        written: set[str] = set()
        with self.warehouse.get_connection() as conn, conn.cursor() as cur:
            for name in sorted({step.target.name for step in steps}):
                serialize(cur, self.warehouse.dialect, name)
            for index, step in enumerate(steps):
                load_id = str(uuid.uuid4())
                pending = self._pending(cur, step, force)
                if pending is None:
                    results.append(LoadResult("up_to_date", load_id, [], []))
                    continue
                first_write = step.target.name not in written
                written.add(step.target.name)
                try:
                    results.append(
                        self._publish_step(
                            conn, cur, replace(step, objects=pending), load_id, first_write
                        )
                    )
                except StepRejected as rejected:
                    rejected.index = index
                    raise
            conn.commit()
        return results

    def _pending(self, cur: Cursor, step: LoadStep, force: bool) -> list[SourceObject] | None:
        if self.already_recorded is not None:
            done = self.already_recorded(cur, step.target.name, step.objects)
            return [o for o in step.objects if o not in done] or None
        if force:
            return list(step.objects)
        return self._not_yet_published(cur, step.target, step.objects)

    def _publish_step(
        self, conn, cur: Cursor, step: LoadStep, load_id: str, first_write: bool
    ) -> LoadResult:
        """Stage, fill, check and publish one step with its ledger rows, in the caller's
        transaction. On a refused file or failing blocking checks: roll back, record why."""
        target, dialect = step.target, self.warehouse.dialect
        staging = prepare_staging(cur, target, dialect, in_place_append=first_write)
        try:
            files, written = self._fill(
                conn,
                cur,
                target,
                staging.fill,
                step.objects,
                step.file_format,
                load_id,
                step.converter,
            )
            if isinstance(target.mode, ReplacePartition):
                _refuse_rows_outside(cur, staging.fill, target.mode, step.objects)
        except LoadError as error:
            conn.rollback()
            if self.record_refusals:
                self._record_rejection(target, step.objects, error, load_id)
            raise
        checked = WrittenRows(staging.checked, written)
        outcomes = step.checks(cur, checked, files) if step.checks else []
        outcomes += _keys_free(cur, target, staging)
        if any(o.blocking and not o.passed for o in outcomes):
            conn.rollback()
            result = LoadResult("rejected", load_id, files, outcomes)
            if not self.record_refusals or (step.split_on_rejection and len(step.objects) > 1):
                raise StepRejected(result, split=True)
            self._record_failed_checks(target, files, outcomes, load_id)
            raise StepRejected(result)
        done = finish_publish(cur, target, staging, sum(f.rows for f in files))
        entries = [LedgerEntry(f.source, ledger.LOADED, f.records, f.rows) for f in files]
        self._record(cur, entries, target, load_id)
        return LoadResult("published", load_id, files, outcomes, done.rows, done.deleted)

    def _not_yet_published(
        self, cur: Cursor, target: LoadTarget, objects: Sequence[SourceObject]
    ) -> list[SourceObject] | None:
        """The objects to load now; None when exactly these versions are already published."""
        if isinstance(target.mode, INCREMENTAL):
            done = ledger.loaded_versions(cur, target.name, objects)
            pending = [o for o in objects if o.version not in done]
            return pending or None
        current = ledger.published_files(cur, target.name, target.partition_key)
        if current and set(current) == {o.version for o in objects}:
            return None
        return list(objects)

    def _up_to_date(
        self,
        cur: Cursor,
        target: LoadTarget,
        objects: Sequence[SourceObject],
        checks: ShadowCheck | None,
        load_id: str,
    ) -> LoadResult:
        """Nothing to load: the checks re-run on what is published (an empty load when the
        mode appends)."""
        files: list[LoadedFile] = []
        if not isinstance(target.mode, INCREMENTAL):
            current = ledger.published_files(cur, target.name, target.partition_key)
            files = [LoadedFile(o, *current[o.version]) for o in objects]
        outcomes = checks(cur, target.published_rows(), files) if checks else []
        return LoadResult("up_to_date", load_id, files, outcomes)

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
        conn,
        cur: Cursor,
        target: LoadTarget,
        staging: sql.Identifier,
        objects: Sequence[SourceObject],
        file_format: FileFormat,
        load_id: str,
        converter: Converter | None,
    ) -> tuple[list[LoadedFile], int]:
        """Fill the shadow from the objects (converted first where the converter applies);
        files and refusals are reported under the original object's key and version. Also
        returns the rows COPY reported writing (PostgreSQL: per file; Redshift: per COPY)."""
        originals = {o.key: o for o in objects}
        if converter is not None and converter.applies_to(self.warehouse.dialect):
            loadable = [converter.convert(self.s3, o) for o in objects]
            originals = {c.key: o for c, o in zip(loadable, objects, strict=True)}
        else:
            loadable = list(objects)
        try:
            if self.warehouse.is_redshift:
                access = CopyAccess(self.warehouse.iam_role, self.warehouse.region)
                load = (f"{target.schema}/{target.table}", load_id)
                files, written = fill_from_s3(
                    conn, cur, self.s3, staging, loadable, file_format, load, access
                )
            else:
                files = fill_from_objects(cur, self.s3, staging, loadable, file_format, self.report)
                written = sum(f.rows for f in files)
        except LoadError as error:
            original = originals.get(error.key)
            if original is None or original.key == error.key:
                raise
            raise LoadError(
                original.key, error.line, f"{error.reason} (in {error.key})", error.column
            ) from error
        return [replace(f, source=originals[f.source.key]) for f in files], written

    def _record_rejection(
        self, target: LoadTarget, objects: Sequence[SourceObject], error: LoadError, load_id: str
    ) -> None:
        rejected = [o for o in objects if o.key == error.key]
        if rejected:
            entries = [LedgerEntry(rejected[0], ledger.REJECTED, error=str(error))]
        else:  # not one file's fault (its JSONPaths file, ...): every file says why
            entries = [
                LedgerEntry(o, ledger.REJECTED, error=f"{o.key}: not loaded: {error}")
                for o in objects
            ]
        self._record_alone(entries, target, load_id)

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
                f.source,
                ledger.REJECTED,
                f.records,
                None,
                f"{f.source.key}: blocking check failed: {reason}",
            )
            for f in files
        ]
        self._record_alone(entries, target, load_id)

    def record_refusal(self, target: LoadTarget, source: SourceObject, reason: str) -> None:
        """A file refused before any load (its route, its contract, its header): the ledger
        records it as rejected with the reason."""
        self.record_verdict(target, source, ledger.REJECTED, reason)

    def record_verdict(
        self, target: LoadTarget, source: SourceObject, status: str, reason: str
    ) -> None:
        """A verdict reached without a load (rejected, superseded), with its reason."""
        entry = LedgerEntry(source, status, error=reason)
        self._record_alone([entry], target, str(uuid.uuid4()))

    def _record_alone(self, entries: list[LedgerEntry], target: LoadTarget, load_id: str) -> None:
        with self.warehouse.get_connection() as conn, conn.cursor() as cur:
            if self.already_recorded is not None:
                serialize(cur, self.warehouse.dialect, target.name)
                done = self.already_recorded(cur, target.name, [e.source for e in entries])
                entries = [e for e in entries if e.source not in done]
            self._record(cur, entries, target, load_id)
            conn.commit()


# VACUUM DELETE ONLY after a publish only when it pays: at least this many rows marked deleted
# and more than VACUUM_DELETED_SHARE of the table's rows (its default threshold, 95 %
# undeleted, makes it do nothing below 5 %)
VACUUM_MIN_DELETED_ROWS = 1_000_000
VACUUM_DELETED_SHARE = 0.05


def after_publish(
    warehouse: WarehouseResource, published: Sequence[tuple[LoadTarget, LoadResult]]
) -> None:
    """Redshift, once the publish has committed: statistics for the planner (COPY runs with
    STATUPDATE OFF, and a whole-table delete leaves the old ones), and, where it pays, the
    space of the rows a publish deleted. `ANALYZE ... PREDICATE COLUMNS` analyzes the columns
    queries filter, join and group on (all of them until any was queried:
    https://docs.aws.amazon.com/redshift/latest/dg/r_ANALYZE.html); `VACUUM DELETE ONLY`
    cannot run inside a transaction block
    (https://docs.aws.amazon.com/redshift/latest/dg/r_VACUUM_command.html), so both run on a
    connection of their own in autocommit. The data is published whatever they do: a failure
    (a VACUUM already running on the cluster) is logged, not raised. PostgreSQL's autovacuum
    does both on its own."""
    if not warehouse.is_redshift or not published:
        return
    churn: dict[str, tuple[LoadTarget, int, int]] = {}
    for target, result in published:
        _, rows, deleted = churn.get(target.name, (target, 0, 0))
        churn[target.name] = (target, rows + result.rows_published, deleted + result.rows_deleted)
    try:
        with warehouse.get_connection() as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                for target, rows, deleted in churn.values():
                    _housekeep(cur, target, rows, deleted)
    except psycopg2.Error as error:  # could not even connect: the next load will do it
        log.warning("statistics not refreshed after publish: %s", error)


def _housekeep(cur: Cursor, target: LoadTarget, rows: int, deleted: int) -> None:
    try:
        cur.execute(sql.SQL("analyze {} predicate columns").format(target.ref))
        if vacuum_pays(cur, target, rows, deleted):
            cur.execute(sql.SQL("vacuum delete only {}").format(target.ref))
    except psycopg2.Error as error:
        log.warning("housekeeping of %s after publish: %s", target.name, error)


def vacuum_pays(cur: Cursor, target: LoadTarget, rows: int, deleted: int) -> bool:
    """Whether a `VACUUM DELETE ONLY` after this publish is worth its cost. Redshift runs a
    VACUUM DELETE in the background by itself, scheduled by the number of deleted rows
    (https://docs.aws.amazon.com/redshift/latest/dg/t_Reclaiming_storage_space202.html#automatic-table-delete);
    only one VACUUM runs on a cluster at a time, a vacuum that finds nothing to do still costs
    its discovery, and by default it reclaims only down to 5 % of rows marked deleted
    (https://docs.aws.amazon.com/redshift/latest/dg/r_VACUUM_command.html, usage notes and
    TO threshold PERCENT). So: never after an append (deletes nothing) or a publish that
    deleted fewer than VACUUM_MIN_DELETED_ROWS rows (a small merge, a small table: the
    automatic one reclaims it); after a whole-table replace, when the deleted rows are more
    than VACUUM_DELETED_SHARE of the old and new rows; after a partition replace or a merge,
    when they are more than that share of the rows the table now holds (counted then)."""
    if deleted < VACUUM_MIN_DELETED_ROWS:
        return False
    if isinstance(target.mode, Replace | Snapshot):
        remaining = rows
    else:
        cur.execute(sql.SQL("select count(*) from {}").format(target.ref))
        remaining = int(cur.fetchone()[0])
    return deleted > VACUUM_DELETED_SHARE * (deleted + remaining)


KEYS_FREE = "key_not_published_yet"


def _keys_free(cur: Cursor, target: LoadTarget, staging: Staging) -> list[CheckOutcome]:
    """A keyed append through a shadow: no row may repeat a key the table holds (in place, the
    table's primary key refuses it during COPY; a shadow has none, and Redshift enforces none)."""
    if staging.in_place or not isinstance(target.mode, Append) or not target.mode.key:
        return []
    taken = keys_already_published(cur, target.ref, staging.fill, target.mode.key)
    detail = f"{taken} row(s) repeat a key ({', '.join(target.mode.key)}) already in {target.name}"
    return [CheckOutcome(KEYS_FREE, taken == 0, detail if taken else "no key already published")]


def _refuse_rows_outside(
    cur: Cursor, staged: sql.Identifier, mode: ReplacePartition, objects: Sequence[SourceObject]
) -> None:
    """A partition load publishes only rows of its partition: a row outside it (a daily log's
    event stamped the next day, a NULL time) would not be deleted by the next load of the same
    files, and every reload would add it again."""
    # CASE counts a NULL predicate as outside, in both dialects (Redshift allows IS TRUE only
    # on a Boolean column: https://docs.aws.amazon.com/redshift/latest/dg/r_Boolean_type.html)
    cur.execute(
        sql.SQL("select sum(case when {} then 0 else 1 end) from {}").format(mode.rows, staged)
    )
    outside = cur.fetchone()[0] or 0
    if outside:
        keys = ", ".join(o.key for o in objects[:5]) + (" ..." if len(objects) > 5 else "")
        raise LoadError(
            keys,
            None,
            f"{outside} row(s) fall outside the partition ({mode.rows.as_string(cur)});"
            " a reload would not replace them",
            place=f"partition {mode.key}",
        )


@dataclass(frozen=True)
class Staging:
    """Where a load writes its rows (`fill`), the relation its checks read (`checked`), and
    whether that is the target itself (`in_place`)."""

    fill: sql.Identifier
    checked: sql.Composable
    in_place: bool
    deleted: int = 0  # rows of the target deleted to fill it in place


def prepare_staging(
    cur: Cursor, target: LoadTarget, dialect: str, in_place_append: bool = True
) -> Staging:
    """Where the load's rows go before publish: the target itself for a whole-table replace
    (emptied in this transaction) and a PostgreSQL append; otherwise an empty session-private
    copy of its structure (Redshift keeps its DIST and SORT keys), dropped at publish or with a
    rollback. `in_place_append=False`: the transaction already wrote to the target, so the
    rows this append adds could not be told apart from those (checks read them by `xmin`)."""
    in_place = fills_in_place(target.mode, dialect)
    if isinstance(target.mode, Append):
        in_place = in_place and in_place_append
    if in_place:
        deleted = 0
        if not isinstance(target.mode, Append):
            deleted = clear_for_in_place(cur, target.schema, target.table)
        return Staging(target.ref, rows_written_here(target.ref, target.mode), True, deleted)
    cur.execute(shadow_statement(target))
    if dialect != "redshift":
        relation_as_on_redshift(cur, target.shadow)
        _required_where_named(cur, target)
    return Staging(target.shadow, target.shadow, False)


def _required_where_named(cur: Cursor, target: LoadTarget) -> None:
    """PostgreSQL: a merge of some columns gets a shadow without the target's NOT NULLs; each
    column the file names keeps its own, so COPY refuses an empty one with its line."""
    mode = target.mode
    if not isinstance(mode, MergeByKey) or not mode.columns:
        return
    cur.execute(
        "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0"
        " and attnotnull and not attisdropped",
        (target.ref.as_string(cur),),
    )
    required = {name for (name,) in cur.fetchall()} & set(mode.columns)
    for column in sorted(required):
        cur.execute(
            sql.SQL("alter table {} alter column {} set not null").format(
                target.shadow, checked_identifier(column)
            )
        )


def shadow_statement(target: LoadTarget) -> sql.Composed:
    """An empty session-private copy of the target's structure. A merge of some columns only
    gets those columns and none of the target's NOT NULLs (CREATE TABLE AS inherits no
    constraints: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_AS.html): the
    rows it updates keep their other columns."""
    mode = target.mode
    if isinstance(mode, MergeByKey) and mode.columns:
        columns = sql.SQL(", ").join(checked_identifier(c) for c in mode.columns)
        return sql.SQL("create temp table {} as select {} from {} where 1 = 0").format(
            target.shadow, columns, target.ref
        )
    return sql.SQL("create temp table {} (like {})").format(target.shadow, target.ref)


def finish_publish(
    cur: Cursor, target: LoadTarget, staging: Staging, rows_in_place: int
) -> Published:
    """The rows the publish inserted (already in place, or moved from the shadow now) and
    those it deleted."""
    if staging.in_place:
        return Published(rows_in_place, staging.deleted)
    return publish(cur, target.schema, target.table, target.shadow, target.mode)


def rebuild_table(
    warehouse: WarehouseResource,
    target: LoadTarget,
    select: sql.Composable,
    checks: ShadowCheck | None = None,
) -> LoadResult:
    """Rebuild a derived table from a SELECT with the same lock/stage/check/publish discipline:
    two rebuilds of one table at once publish one after the other, never both into one."""
    result = retry_serialization(
        lambda: _rebuild_once(warehouse, target, select, checks), f"rebuild of {target.name}"
    )
    if result.status == "published":
        after_publish(warehouse, [(target, result)])
    return result


def _rebuild_once(
    warehouse: WarehouseResource,
    target: LoadTarget,
    select: sql.Composable,
    checks: ShadowCheck | None,
) -> LoadResult:
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        serialize(cur, warehouse.dialect, target.name)
        staging = prepare_staging(cur, target, warehouse.dialect)
        cur.execute(sql.SQL("insert into {} {}").format(staging.fill, select))
        inserted = cur.rowcount
        outcomes = checks(cur, staging.checked, []) if checks else []
        if any(o.blocking and not o.passed for o in outcomes):
            conn.rollback()
            return LoadResult("rejected", "", [], outcomes)
        done = finish_publish(cur, target, staging, inserted)
        conn.commit()
    return LoadResult("published", "", [], outcomes, done.rows, done.deleted)
