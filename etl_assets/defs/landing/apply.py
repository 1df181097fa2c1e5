"""What happens to the files of one landing table, in landing order: a schema file creates or
evolves the table; a CSV is appended, replaces the rows (truncate) or is merged on the primary
key (upsert). Every file ends with a ledger row: loaded, rejected (with the reason) or already
there. The data files between two schema files (any mix of append, truncate and upsert) are
published in one transaction: readers see all of them or none."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from psycopg2.extensions import cursor as Cursor

from etl_assets.defs.landing import tables as registry
from etl_assets.defs.landing.contract import (
    ContractError,
    SchemaFile,
    parse_schema_file,
    plan_evolution,
)
from etl_assets.defs.landing.keys import LandingKey
from etl_assets.lib.checks import combine, rows_match_source, unique_not_null
from etl_assets.loading import ledger
from etl_assets.loading.dialect import serialize
from etl_assets.loading.errors import LoadError
from etl_assets.loading.formats import Csv
from etl_assets.loading.ledger import LedgerEntry, SourceObject
from etl_assets.loading.loader import (
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
from etl_assets.loading.tables import create_schema, ensure_tables, widths_in_bytes
from etl_assets.resources.warehouse import WarehouseResource

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
) -> TableRun:
    """Apply one table's files in the order given (landing order), each version once: a
    version the ledger already has (loaded or rejected) is skipped. A `replay` applies a
    rejected version again (after its contract was fixed); `force` applies loaded ones too.
    `report`: told how far large files have streamed."""
    ensure_tables(warehouse, [registry.REGISTRY])
    run = TableRun(landed[0].route.qualified if landed else "")
    loader = ObjectLoader(warehouse, s3_client, run_id, report)
    landed = _not_yet_applied(warehouse, run, landed, replay, force)
    for batch in _batches(landed):
        if batch[0].route.action == "schema":
            run.outcomes.append(_apply_schema(warehouse, s3_client, batch[0], run_id, loader))
        else:
            run.outcomes.extend(_apply_data(warehouse, s3_client, batch, loader, force))
    return run


def _not_yet_applied(
    warehouse: WarehouseResource, run: TableRun, landed: list[Landed], replay: bool, force: bool
) -> list[Landed]:
    if force or not landed:
        return landed
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        status = ledger.LOADED if replay else None
        done = ledger.recorded_versions(cur, run.table, [i.source for i in landed], status)
    for item in landed:
        if item.source.version in done:
            run.outcomes.append(
                Outcome(item.source.key, "up_to_date", "this version was already applied")
            )
    return [item for item in landed if item.source.version not in done]


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


# ---- schema files -----------------------------------------------------------------------


def _apply_schema(
    warehouse: WarehouseResource, s3_client, item: Landed, run_id, loader: ObjectLoader
) -> Outcome:
    route, source = item.route, item.source
    target = LoadTarget(route.db, route.table)
    try:
        contract = parse_schema_file(_read_small(s3_client, source), route.table)
        detail = _declare(warehouse, item, contract, run_id)
    except (ContractError, Refused) as error:
        reason = f"{source.key}: {error}"
        loader.record_refusal(target, source, reason)
        return Outcome(source.key, "rejected", reason)
    return Outcome(source.key, "loaded" if detail else "up_to_date", detail or "already declared")


def _declare(warehouse: WarehouseResource, item: Landed, contract: SchemaFile, run_id) -> str:
    """Create or evolve the table and register the contract, with the ledger row, in one
    transaction; '' when this exact schema file is already the one in force."""
    route, source = item.route, item.source
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        if not warehouse.is_redshift:
            serialize(cur, warehouse.dialect, "ddl")
        serialize(cur, warehouse.dialect, route.qualified)
        current = registry.declared_contract(cur, route.db, route.table)
        if current is not None and current == contract:
            return ""
        if current is None:
            detail = _create(cur, route, contract)
        else:
            changes = plan_evolution(current, contract)
            for statement in registry.evolve_statements(
                route.db, route.table, current, contract, changes, warehouse.dialect
            ):
                cur.execute(statement)
            detail = "evolved: " + (
                ", ".join(f"{c.kind} {c.column.name}" for c in changes) or "allowed operations"
            )
        if not warehouse.is_redshift:
            widths_in_bytes(cur, route.db, route.table)
        registry.register(cur, route, contract, source)
        _ledger(cur, source, route, ledger.LOADED, run_id)
        conn.commit()
    return detail


def _create(cur: Cursor, route: LandingKey, contract: SchemaFile) -> str:
    if registry.table_exists(cur, route.db, route.table):
        raise Refused(
            f"{route.qualified} exists but no schema file declared it; it is not the landing"
            " zone's to change"
        )
    create_schema(cur, route.db)
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
    warehouse: WarehouseResource,
    s3_client,
    batch: list[Landed],
    loader: ObjectLoader,
    force: bool = False,
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
        outcomes.extend(_load_together(loader, _steps(ready, contract), force))
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
    if missing:
        raise Refused(f"line 1: required columns absent: {missing}")
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
    target = LoadTarget(route.db, route.table, _mode(route.action, contract))
    sources = [item.source for item, _ in group]
    return LoadStep(target, sources, Csv(columns=columns), _checks(contract))


def _load_together(loader: ObjectLoader, steps: list[LoadStep], force: bool) -> list[Outcome]:
    """Publish the steps in one transaction. A refused file (or a step whose blocking checks
    fail) is recorded by the loader and left out; the others are tried again together."""
    outcomes: list[Outcome] = []
    while steps:
        try:
            results = loader.load_together(steps, force=force)
        except LoadError as error:
            outcomes.append(Outcome(error.key, "rejected", str(error)))
            steps = _without_file(steps, error.key)
            continue
        except StepRejected as rejected:
            outcomes.extend(_outcomes(rejected.result, steps[rejected.index].objects))
            steps = steps[: rejected.index] + steps[rejected.index + 1 :]
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
            else Outcome(o.key, "up_to_date", "this version is already loaded")
            for o in sources
        ]
    outcomes[0].checks = list(result.checks)
    return outcomes


def _without_file(steps: list[LoadStep], key: str) -> list[LoadStep]:
    kept = [replace(s, objects=[o for o in s.objects if o.key != key]) for s in steps]
    return [s for s in kept if s.objects]


def _mode(action: str, contract: SchemaFile) -> PublishMode:
    if action == "truncate":
        return Replace()
    if action == "upsert":
        return MergeByKey(tuple(contract.primary_key))
    return Append()


def _checks(contract: SchemaFile) -> ShadowCheck:
    if contract.primary_key:
        return combine(rows_match_source(), unique_not_null(*contract.primary_key))
    return rows_match_source()
