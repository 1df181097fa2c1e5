"""What happens to the files of one landing table, in landing order: a schema file creates or
evolves the table; a CSV is appended, replaces the rows (truncate) or is merged on the primary
key (upsert). Every file ends with a ledger row: loaded, rejected (with the reason) or already
there. The data files between two schema files (any mix of append, truncate and upsert) are
published in one transaction: readers see all of them or none."""

from __future__ import annotations

import csv
import io
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.defs.landing import tables as registry
from etl_assets.defs.landing.contract import (
    ContractError,
    SchemaFile,
    parse_schema_file,
    plan_evolution,
)
from etl_assets.defs.landing.keys import LandingKey, landing_order
from etl_assets.lib.checks import combine, rows_match_source, unique_not_null
from etl_assets.loading import ledger
from etl_assets.loading.dialect import checked_identifier, serialize, table_ref
from etl_assets.loading.errors import LoadError, without_values
from etl_assets.loading.formats import Csv
from etl_assets.loading.ledger import LedgerEntry, SourceObject
from etl_assets.loading.loader import (
    AlreadyRecorded,
    CheckOutcome,
    LoadResult,
    LoadStep,
    LoadTarget,
    ObjectLoader,
    ShadowCheck,
    StepRejected,
)
from etl_assets.loading.progress import Report
from etl_assets.loading.publish import Append, MergeByKey, PublishMode, Replace
from etl_assets.loading.tables import as_on_redshift, create_schema_once, ensure_tables
from etl_assets.resources.warehouse import WarehouseResource

log = logging.getLogger(__name__)
HEADER_BYTES = 1 << 16
MAX_SCHEMA_BYTES = 1 << 20


@dataclass(frozen=True)
class Landed:
    """One landed object version and where its key routes it."""

    source: SourceObject
    route: LandingKey


@dataclass
class Outcome:
    key: str
    status: str  # loaded | rejected | up_to_date
    detail: str
    rows: int | None = None
    checks: list[CheckOutcome] = field(default_factory=list)  # of the load it was part of


@dataclass
class TableRun:
    """The outcome of one run over one table's files."""

    table: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def refused(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "rejected"]

    @property
    def changed(self) -> bool:
        return any(o.status == "loaded" for o in self.outcomes)

    @property
    def checks(self) -> list[CheckOutcome]:
        """Every blocking check the run's loads evaluated, load by load."""
        return [check for o in self.outcomes for check in o.checks]


class Refused(Exception):
    """A file refused before any row loads; the message is the reason."""


def apply_files(
    warehouse: WarehouseResource,
    s3_client,
    landed: list[Landed],
    run_id: str | None,
    *,
    replay: bool = False,
    force: bool = False,
    report: Report | None = None,
    gone: Sequence[Landed] = (),
) -> TableRun:
    """Apply one table's files in landing order, each upload once: an upload the ledger has a
    verdict for (loaded, rejected, superseded) is skipped. A `replay` applies a rejected upload
    again (after its contract was fixed); `force` applies loaded ones too. `report`: told how
    far large files have streamed. `gone`: uploads requested but no longer in the bucket.

    Every upload ends with one verdict, whatever happens: an error that is not a refusal of
    the file's data (the warehouse refusing DDL, a bug) is recorded as the rejection of the
    file(s) it concerns, and the other files still apply."""
    ensure_tables(warehouse, [registry.REGISTRY])
    landed = in_landing_order(landed)
    run = TableRun(landed[0].route.qualified if landed else "")
    skip = _already_recorded(replay, force)
    loader = ObjectLoader(warehouse, s3_client, run_id, report, already_recorded=skip)
    for item in gone:
        run.outcomes.append(_superseded(loader, item))
    landed = _not_yet_applied(warehouse, run, landed, skip)
    for batch in _batches(landed):
        run.outcomes.extend(_apply_batch(warehouse, s3_client, batch, run_id, loader))
    return run


def in_landing_order(landed: Sequence[Landed]) -> list[Landed]:
    order = landing_order([(item.source.last_modified, item.route) for item in landed])
    return [landed[i] for i in order]


def _already_recorded(replay: bool, force: bool) -> AlreadyRecorded:
    """Uploads not to apply again: with a verdict; for a replay, loaded; forced, none."""
    status = ledger.LOADED if replay else None

    def recorded(cur: Cursor, table: str, sources: Sequence[SourceObject]) -> set[SourceObject]:
        if force:
            return set()
        return ledger.recorded_uploads(cur, sources, table, status)

    return recorded


def _not_yet_applied(
    warehouse: WarehouseResource, run: TableRun, landed: list[Landed], skip: AlreadyRecorded
) -> list[Landed]:
    """Leaves out what has a verdict already (asked again under the table's lock when each is
    applied: a concurrent run may get there first)."""
    if not landed:
        return landed
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        done = skip(cur, run.table, [i.source for i in landed])
    for item in landed:
        if item.source in done:
            run.outcomes.append(Outcome(item.source.key, "up_to_date", ALREADY_APPLIED))
    return [item for item in landed if item.source not in done]


ALREADY_APPLIED = "this upload already has its verdict in the ledger"


def _superseded(loader: ObjectLoader, item: Landed) -> Outcome:
    reason = (
        f"{item.source.key}: no longer in the bucket when its run started (deleted, or"
        " replaced by a newer upload, which is applied on its own)"
    )
    target = LoadTarget(item.route.db, item.route.table)
    loader.record_verdict(target, item.source, ledger.SUPERSEDED, reason)
    return Outcome(item.source.key, ledger.SUPERSEDED, reason)


def _batches(landed: list[Landed]) -> list[list[Landed]]:
    """Consecutive data files become one batch (one transaction); a schema file stands alone
    (it changes the contract the next files are read with, and on Redshift a type change
    cannot run inside a transaction block)."""
    batches: list[list[Landed]] = []
    for item in landed:
        previous = batches[-1] if batches else None
        if previous and "schema" not in (item.route.action, previous[-1].route.action):
            previous.append(item)
        else:
            batches.append([item])
    return batches


def _apply_batch(
    warehouse: WarehouseResource, s3_client, batch: list[Landed], run_id, loader: ObjectLoader
) -> list[Outcome]:
    """One batch; on an error that names no file, each of its files on its own, and a file
    that still fails alone is rejected with the error."""
    try:
        if batch[0].route.action == "schema":
            return [_apply_schema(warehouse, s3_client, batch[0], run_id, loader)]
        return _apply_data(warehouse, s3_client, batch, loader)
    except Exception as error:  # noqa: BLE001 - every upload must end with a verdict
        if len(batch) > 1:
            return [
                o
                for item in batch
                for o in _apply_batch(warehouse, s3_client, [item], run_id, loader)
            ]
        item = batch[0]
        reason = f"{item.source.key}: not applied: {describe(error)}"
        log.exception("landing: %s", reason)
        target = LoadTarget(item.route.db, item.route.table)
        loader.record_verdict(target, item.source, ledger.REJECTED, reason)
        return [Outcome(item.source.key, "rejected", reason)]


def describe(error: BaseException) -> str:
    """An unexpected error in one line, without the row values a database error may append
    (PostgreSQL's DETAIL and CONTEXT lines)."""
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {without_values(first)}"[:1000]


# ---- schema files -----------------------------------------------------------------------


def _apply_schema(
    warehouse: WarehouseResource, s3_client, item: Landed, run_id, loader: ObjectLoader
) -> Outcome:
    route, source = item.route, item.source
    target = LoadTarget(route.db, route.table)
    try:
        contract = parse_schema_file(_read_small(s3_client, source), route.table)
        detail = _declare_between_readers(warehouse, item, contract, run_id, loader)
    except (ContractError, Refused) as error:
        reason = f"{source.key}: {error}"
        loader.record_refusal(target, source, reason)
        return Outcome(source.key, "rejected", reason)
    if detail is None:
        return Outcome(source.key, "up_to_date", ALREADY_APPLIED)
    return Outcome(source.key, "loaded", detail)


def ddl_wait_s() -> float:
    """How long a schema change keeps trying to get its table from readers
    (`ETL_LANDING_DDL_WAIT_S`, default 600)."""
    return float(os.environ.get("ETL_LANDING_DDL_WAIT_S", "600"))


DDL_LOCK_TIMEOUT = "1s"


def _declare_between_readers(
    warehouse: WarehouseResource,
    item: Landed,
    contract: SchemaFile,
    run_id,
    loader: ObjectLoader,
) -> str | None:
    """`_declare`, whose ALTER waits at most DDL_LOCK_TIMEOUT for readers of the table and is
    tried again until `ddl_wait_s()` has passed. An ALTER waiting for a long reader would queue
    every new reader of the table behind it; this one steps aside between attempts."""
    deadline = time.monotonic() + ddl_wait_s()
    pause = 0.2
    while True:
        try:
            return _declare(warehouse, item, contract, run_id, loader)
        except psycopg2.errors.LockNotAvailable:
            if time.monotonic() >= deadline:
                raise Refused(
                    f"{item.route.qualified} stayed in use by readers for {ddl_wait_s():.0f} s:"
                    " the schema change could not take the table; replay it"
                    f" (etl-assets replay s3://{item.source.bucket}/{item.source.key})"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _declare(
    warehouse: WarehouseResource,
    item: Landed,
    contract: SchemaFile,
    run_id,
    loader: ObjectLoader,
) -> str | None:
    """Create or evolve the table and register the contract, with the ledger row, in one
    transaction. None when this upload has a verdict already (another run applied it)."""
    route, source = item.route, item.source
    if not registry.is_declared(warehouse, route.db, route.table):
        create_schema_once(warehouse, route.db)
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        serialize(cur, warehouse.dialect, route.qualified)
        if loader.already_recorded and loader.already_recorded(cur, route.qualified, [source]):
            return None
        if not warehouse.is_redshift:
            # no waiting in the lock queue (readers arriving after would wait behind us)
            cur.execute("set local lock_timeout = %s", (DDL_LOCK_TIMEOUT,))
        current = registry.declared_contract(cur, route.db, route.table)
        if current is None:
            detail = _create(cur, route, contract)
        elif current == contract:
            detail = "already declared: the contract in force is the same"
        else:
            detail = _evolve(cur, route, current, contract, warehouse.dialect)
        if not warehouse.is_redshift:
            as_on_redshift(cur, route.db, route.table)
        registry.register(cur, route, contract, source)
        _ledger(cur, source, route, ledger.LOADED, run_id)
        conn.commit()
    return detail


def _evolve(
    cur: Cursor, route: LandingKey, current: SchemaFile, contract: SchemaFile, dialect: str
) -> str:
    if "schema" not in current.allowed_operations:
        raise Refused(
            f"action schema is not allowed for {route.qualified}"
            f" (allowed_operations: {', '.join(current.allowed_operations)})"
        )
    changes = plan_evolution(current, contract)
    for statement in registry.evolve_statements(
        route.db, route.table, current, contract, changes, dialect
    ):
        cur.execute(statement)
    return "evolved: " + (
        ", ".join(f"{c.kind} {c.column.name}" for c in changes) or "allowed operations"
    )


def _create(cur: Cursor, route: LandingKey, contract: SchemaFile) -> str:
    if registry.table_exists(cur, route.db, route.table):
        raise Refused(
            f"{route.qualified} exists but no schema file declared it; it is not the landing"
            " zone's to change"
        )
    cur.execute(registry.create_statement(route.db, route.table, contract))
    return f"created {route.qualified} ({len(contract.columns)} columns)"


def _ledger(cur: Cursor, source: SourceObject, route: LandingKey, status: str, run_id) -> None:
    ledger.record(
        cur,
        [LedgerEntry(source, status)],
        load_id=str(uuid.uuid4()),
        target_table=route.qualified,
        partition_key=None,
        run_id=run_id,
    )


def _read_small(s3_client, source: SourceObject) -> bytes:
    if source.size > MAX_SCHEMA_BYTES:
        raise Refused(f"{source.size} bytes is too large for a schema file")
    body = s3_client.get_object(Bucket=source.bucket, Key=source.key, IfMatch=source.etag)
    return body["Body"].read()


# ---- data files -------------------------------------------------------------------------


def _apply_data(
    warehouse: WarehouseResource, s3_client, batch: list[Landed], loader: ObjectLoader
) -> list[Outcome]:
    route = batch[0].route
    target_name = LoadTarget(route.db, route.table)
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        contract = registry.declared_contract(cur, route.db, route.table)
    ready: list[tuple[Landed, tuple[str, ...]]] = []
    outcomes: list[Outcome] = []
    for item in batch:
        try:
            ready.append((item, _columns_for(s3_client, item, contract)))
        except Refused as error:
            reason = f"{item.source.key}: {error}"
            loader.record_refusal(target_name, item.source, reason)
            outcomes.append(Outcome(item.source.key, "rejected", reason))
    if ready:
        outcomes.extend(_load_together(loader, _steps(ready, contract)))
    order = {item.source.key: i for i, item in enumerate(batch)}
    return sorted(outcomes, key=lambda o: order[o.key])


def _columns_for(s3_client, item: Landed, contract: SchemaFile | None) -> tuple[str, ...]:
    """The table columns the file's header fills, after checking the file may be applied."""
    route = item.route
    if contract is None:
        raise Refused(
            f"table {route.qualified} is not declared: upload"
            f" landing/{route.db}/schema/{route.table}/<name>.json first"
        )
    if route.action not in contract.allowed_operations:
        raise Refused(
            f"action {route.action} is not allowed for {route.qualified}"
            f" (allowed_operations: {', '.join(contract.allowed_operations)})"
        )
    header = read_header(s3_client, item.source)
    declared = {c.name for c in contract.columns}
    unknown = [name for name in header if name not in declared]
    if unknown:
        raise Refused(f"line 1: columns not in the schema of {route.qualified}: {unknown}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise Refused(f"line 1: columns named twice: {duplicated}")
    missing = [c.name for c in contract.columns if not c.nullable and c.name not in header]
    if missing and route.action != "upsert":  # an upsert may update some columns only
        raise Refused(f"line 1: required columns absent: {missing}")
    absent_key = [k for k in contract.primary_key if k not in header]
    if absent_key:
        raise Refused(f"line 1: primary key columns absent: {absent_key}")
    return tuple(header)


def read_header(s3_client, source: SourceObject) -> list[str]:
    """The header's column names (a ranged GET of the first bytes), lowercased."""
    if source.size == 0:  # a range of an empty object is not satisfiable
        raise Refused("empty file")
    response = s3_client.get_object(
        Bucket=source.bucket,
        Key=source.key,
        IfMatch=source.etag,
        Range=f"bytes=0-{HEADER_BYTES - 1}",
    )
    first = response["Body"].read().removeprefix(b"\xef\xbb\xbf")
    if not first.strip():
        raise Refused("empty file")
    if b"\n" not in first and len(first) >= HEADER_BYTES:
        raise Refused(f"line 1: no line break in the first {HEADER_BYTES} bytes")
    line = first.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    (names,) = list(csv.reader(io.StringIO(line))) or [[]]
    return [name.strip().lower() for name in names]


def _steps(ready: list[tuple[Landed, tuple[str, ...]]], contract: SchemaFile) -> list[LoadStep]:
    """Consecutive files with the same action and column list share a load step; a truncate
    stands alone (two truncates in one step would publish both files' rows)."""
    groups: list[list[tuple[Landed, tuple[str, ...]]]] = []
    for item, columns in ready:
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and item.route.action != "truncate"
            and (last[0].route.action, last[1]) == (item.route.action, columns)
        ):
            groups[-1].append((item, columns))
        else:
            groups.append([(item, columns)])
    return [_step(group, contract) for group in groups]


def _step(group: list[tuple[Landed, tuple[str, ...]]], contract: SchemaFile) -> LoadStep:
    route, columns = group[0][0].route, group[0][1]
    target = LoadTarget(route.db, route.table, _mode(route.action, contract, columns))
    sources = [item.source for item, _ in group]
    checks = _checks(contract, route, columns)
    # a header alone is zero rows: an append of nothing, a truncate that empties the table
    file_format = Csv(columns=columns, empty_ok=True)
    return LoadStep(target, sources, file_format, checks, split_on_rejection=True)


def _load_together(loader: ObjectLoader, steps: list[LoadStep]) -> list[Outcome]:
    """Publish the steps in one transaction. A refused file (or a one-file step whose blocking
    checks fail) is recorded by the loader and left out; a step of several files whose checks
    fail is tried file by file (a key repeated across two files refuses the second only); the
    others are tried again together."""
    outcomes: list[Outcome] = []
    while steps:
        try:
            results = loader.load_together(steps)
        except LoadError as error:
            outcomes.append(Outcome(error.key, "rejected", str(error)))
            steps = _without_file(steps, error.key)
            continue
        except StepRejected as rejected:
            index, step = rejected.index, steps[rejected.index]
            if rejected.split:
                alone = [replace(step, objects=[o]) for o in step.objects]
                steps = steps[:index] + alone + steps[index + 1 :]
            else:
                outcomes.extend(_outcomes(rejected.result, step.objects))
                steps = steps[:index] + steps[index + 1 :]
            continue
        for step, result in zip(steps, results, strict=True):
            outcomes.extend(_outcomes(result, step.objects))
        break
    return outcomes


def _outcomes(result: LoadResult, sources: Sequence[SourceObject]) -> list[Outcome]:
    """One outcome per file of a step; the first carries the checks the step evaluated."""
    if result.status == "rejected":
        failed = "; ".join(f"{o.name}: {o.detail}" for o in result.checks if not o.passed)
        outcomes = [Outcome(o.key, "rejected", f"{o.key}: {failed}") for o in sources]
    else:
        loaded = {f.source.key: f for f in result.files}
        outcomes = [
            Outcome(o.key, "loaded", "", loaded[o.key].rows)
            if o.key in loaded and result.status == "published"
            else Outcome(o.key, "up_to_date", ALREADY_APPLIED)
            for o in sources
        ]
    outcomes[0].checks = list(result.checks)
    return outcomes


def _without_file(steps: list[LoadStep], key: str) -> list[LoadStep]:
    kept = [replace(s, objects=[o for o in s.objects if o.key != key]) for s in steps]
    return [s for s in kept if s.objects]


def _mode(action: str, contract: SchemaFile, columns: tuple[str, ...]) -> PublishMode:
    if action == "truncate":
        return Replace()
    if action == "upsert":
        return MergeByKey(tuple(contract.primary_key), columns)
    return Append(tuple(contract.primary_key))


def _checks(contract: SchemaFile, route: LandingKey, columns: tuple[str, ...]) -> ShadowCheck:
    checks = [rows_match_source()]
    if contract.primary_key:
        checks.append(unique_not_null(*contract.primary_key))
    missing = [c.name for c in contract.columns if not c.nullable and c.name not in columns]
    if missing and route.action == "upsert":
        checks.append(_new_keys_complete(route, contract.primary_key, missing))
    return combine(*checks)


NEW_KEYS_COMPLETE = "new_keys_have_required_columns"


def _new_keys_complete(route: LandingKey, key: list[str], missing: list[str]) -> ShadowCheck:
    """A partial upsert updates existing keys; a new key would be a row without the required
    columns the file does not name."""
    target = table_ref(route.db, route.table)
    match = sql.SQL(" and ").join(
        sql.SQL("t.{0} = s.{0}").format(checked_identifier(k)) for k in key
    )

    def check(cur: Cursor, rows: sql.Composable, files) -> list[CheckOutcome]:
        cur.execute(
            sql.SQL(
                "select count(*) from {} s where not exists (select 1 from {} t where {})"
            ).format(rows, target, match)
        )
        new = cur.fetchone()[0]
        detail = (
            f"{new} row(s) with a key not in {route.qualified}: a new row needs {missing},"
            " which the file does not name"
            if new
            else f"every key exists: only the named columns are updated ({missing} kept)"
        )
        return [CheckOutcome(NEW_KEYS_COMPLETE, new == 0, detail)]

    return check
