"""Asset factories every domain builds on: a table loaded from S3 objects, a table rebuilt from
its SELECT, a view. Each declares its checks from the table's declaration, runs the blocking
ones on the shadow before publish, and reports row counts, column schema and source versions.
"""

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    PartitionKeyRange,
    PartitionsDefinition,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    TimeWindow,
    asset,
)
from psycopg2 import sql

from etl_assets.lib.checks import NamedCheck, asset_key, blocking_specs, combine, shadow_checks
from etl_assets.lib.sources import DatedFiles, ObjectSource, Selection, UploadConfig, Uploads
from etl_assets.loading.dialect import create_view, serialize, table_ref
from etl_assets.loading.errors import LoadError
from etl_assets.loading.formats import FileFormat
from etl_assets.loading.loader import (
    CheckOutcome,
    Converter,
    LoadResult,
    LoadTarget,
    ObjectLoader,
    rebuild_table,
)
from etl_assets.loading.publish import PublishMode, Replace
from etl_assets.loading.sql_files import SELECT, VIEW, read_sql
from etl_assets.loading.tables import TableSpec, ensure_tables
from etl_assets.resources.landing_bucket import LandingBucketResource
from etl_assets.resources.warehouse import WarehouseResource

FormatFor = FileFormat | Callable[[Any, str], FileFormat]  # or (s3 client, bucket) -> format
# a mode, or (context, the versions chosen) -> mode: e.g. the run's days, or the workbook loaded
PublishFor = PublishMode | Callable[[AssetExecutionContext, Selection], PublishMode]
REPLACE = Replace()


REFRESHES = "refreshes"  # definition metadata: the views a publish refreshes


def table_from_s3(
    table: TableSpec,
    *,
    source: ObjectSource,
    file_format: FormatFor,
    description: str,
    publish: PublishFor = REPLACE,
    converter: Converter | None = None,
    key_drift: bool = False,
    partitions_def: PartitionsDefinition | None = None,
    more_checks: Sequence[NamedCheck] = (),
    refreshes: Sequence[AssetKey] = (),
) -> AssetsDefinition:
    """A table filled from S3 objects by the loader: shadow, blocking checks, publish, ledger.
    `more_checks`: the domain's own checks on the rows before publish, beside the declared.
    `refreshes`: views over this table (in dependency order): a publish refreshes what they
    show, and is reported as their materialization too, so the graph shows them current."""
    checks = [*shadow_checks(table, from_source=True, key_drift=key_drift), *more_checks]
    check_fn = combine(*(c.check for c in checks))

    def load(
        context: AssetExecutionContext,
        warehouse: WarehouseResource,
        s3: LandingBucketResource,
        config: UploadConfig | None,
    ) -> Iterator:
        ensure_tables(warehouse, [table])
        client = s3.get_client()
        if isinstance(source, Uploads):
            selection = source.select(client, s3.bucket, context, config or UploadConfig())
        else:
            selection = source.select(client, s3.bucket, context)
        target = LoadTarget(table.schema, table.name, _resolve(publish, context, selection))
        loader = ObjectLoader(warehouse, client, context.run.run_id, report=context.log.info)
        try:
            resolved = file_format(client, s3.bucket) if callable(file_format) else file_format
        except LoadError as error:  # e.g. its JSONPaths file: every file it would read says so
            for obj in selection.objects:
                loader.record_refusal(target, obj, f"{obj.key}: not loaded: {error}")
            raise refusal(error, table) from error
        # a range of days that can fall back to day by day records no refusal of its own
        whole = loader if not _day_by_day(source, context) else loader.quiet()
        try:
            result = whole.load(
                target,
                selection.objects,
                resolved,
                check_fn,
                superseded=selection.superseded,
                converter=converter,
            )
        except LoadError as error:
            if _day_by_day(source, context):  # one day refused: the others publish alone
                yield from load_each_day(context, loader, client, s3.bucket, resolved, warehouse)
                return
            older = _older_good_upload(loader, target, selection, resolved, check_fn, converter)
            if older is not None:  # the newest upload was refused: the newest good one stands
                context.log.warning(f"{error}; published the newest upload before it instead")
                yield from _emit_older(table, older, warehouse)
                raise refusal(error, table) from error
            why = f"{error.key} refused, nothing published"
            for outcome in _kept_published(checks, warehouse, table, why):
                yield _check_result(table, outcome)
            if isinstance(source, Uploads):
                yield _check_result(table, _upload_order(selection, config or UploadConfig()))
            raise refusal(error, table) from error
        if result.status == "rejected" and _day_by_day(source, context):
            yield from load_each_day(context, loader, client, s3.bucket, resolved, warehouse)
            return
        if result.status == "rejected" and isinstance(source, Uploads):
            older = _older_good_upload(loader, target, selection, resolved, check_fn, converter)
            if older is not None:
                yield from _emit_older(table, older, warehouse)
                raise _checks_failed(table, result)
        if result.status == "superseded":
            context.log.warning(_superseded_text(selection, table))
            result.checks = _kept_published(checks, warehouse, table, "stale upload skipped")
        if isinstance(source, Uploads):
            result.checks.append(_upload_order(selection, config or UploadConfig()))
        whole_table = partitions_def is None  # a day's load counts that day's rows
        yield from emit_load_result(
            table, result, warehouse, _source_metadata(selection), whole_table
        )
        if result.status == "published":
            for view_key in refreshes:
                yield AssetMaterialization(
                    asset_key=view_key,
                    description=f"Shows the rows {table.qualified} just published.",
                    metadata={"refreshed_by": table.qualified, "load_id": result.load_id},
                )

    def load_each_day(
        context: AssetExecutionContext,
        loader: ObjectLoader,
        client,
        bucket: str,
        resolved: FileFormat,
        warehouse: WarehouseResource,
    ) -> Iterator:
        """The run's days loaded one by one, each published (and materialized) or refused
        alone; the run fails naming the refused days. Taken when the range, loaded as one,
        was refused: the happy path stays one load."""
        days = partitions_def  # taken only for a partitioned DatedFiles source (`_day_by_day`)
        outcomes: list[CheckOutcome] = []
        refused: list[str] = []
        for key in context.partition_keys:
            day = OnePartition(key, days.time_window_for_partition_key(key))
            selection = source.select_window(client, bucket, day.partition_time_window)
            if not selection.objects:
                continue
            target = LoadTarget(table.schema, table.name, _resolve(publish, day, selection))
            try:
                result = loader.load(target, selection.objects, resolved, check_fn)
            except LoadError as error:
                refused.append(f"{key}: {error}")
                continue
            outcomes += [replace(o, detail=f"{key}: {o.detail}") for o in result.checks]
            if result.status == "rejected":
                refused.append(f"{key}: {_checks_failed(table, result).description}")
                continue
            metadata = load_metadata(result, {"partition_loaded_alone": True})
            yield AssetMaterialization(asset_key=asset_key(table), partition=key, metadata=metadata)
        yield from _combined_checks(table, checks, outcomes, refused)
        if refused:
            raise Failure(
                description=f"{len(refused)} of {len(context.partition_keys)} day(s) refused;"
                " every other day was published on its own:\n" + "\n".join(refused),
                allow_retries=False,
            )

    specs = blocking_specs(table, checks)
    if isinstance(source, Uploads):
        specs.append(
            AssetCheckSpec(
                UPLOAD_ORDER,
                asset=asset_key(table),
                description="WARN: the upload loaded is known to be the newest (no other upload"
                " landed in the same instant).",
            )
        )
    decorate = asset(
        key=asset_key(table),
        group_name=table.schema,
        description=description,
        check_specs=specs,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run() if partitions_def else None,
        output_required=partitions_def is None,  # days loaded alone materialize one by one
        kinds={"s3", "sql"},
        pool=table.qualified,
        metadata={REFRESHES: ", ".join(k.to_user_string() for k in refreshes)}
        if refreshes
        else None,
    )
    if isinstance(source, Uploads):

        def _with_upload(
            context: AssetExecutionContext,
            config: UploadConfig,
            warehouse: WarehouseResource,
            s3: LandingBucketResource,
        ) -> Iterator:
            yield from load(context, warehouse, s3, config)

        return decorate(_with_upload)

    def _load(
        context: AssetExecutionContext, warehouse: WarehouseResource, s3: LandingBucketResource
    ) -> Iterator:
        yield from load(context, warehouse, s3, None)

    return decorate(_load)


@dataclass(frozen=True)
class OnePartition:
    """One partition of a ranged run, shaped like the context a publish mode is chosen from."""

    key: str
    partition_time_window: TimeWindow

    @property
    def partition_key_range(self) -> PartitionKeyRange:
        return PartitionKeyRange(self.key, self.key)


def _day_by_day(source: ObjectSource, context: AssetExecutionContext) -> bool:
    return (
        isinstance(source, DatedFiles)
        and context.has_partition_key_range
        and len(context.partition_keys) > 1
    )


def _combined_checks(
    table: TableSpec, checks, outcomes: list[CheckOutcome], refused: list[str]
) -> Iterator[AssetCheckResult]:
    """One result per check over the days loaded alone: failed if it failed for any day."""
    for check in checks:
        mine = [o for o in outcomes if o.name == check.name]
        failed = [o.detail for o in mine if not o.passed]
        details = failed or [o.detail for o in mine] or ["no day published"]
        if refused:
            details.append(f"refused: {'; '.join(refused)}"[:1000])
        yield _check_result(
            table, CheckOutcome(check.name, not failed, " | ".join(details)[:4000], check.blocking)
        )


def _older_good_upload(
    loader: ObjectLoader,
    target: LoadTarget,
    selection: Selection,
    file_format: FileFormat,
    checks,
    converter: Converter | None,
) -> LoadResult | None:
    """The newest upload was refused: load the uploads it would have superseded, newest first,
    until one publishes (it supersedes the older ones). Each refused one is recorded as
    rejected by the loader, so every upload ends with a verdict; None when none publishes."""
    older = sorted(selection.superseded, key=lambda o: (o.last_modified, o.key), reverse=True)
    for index, candidate in enumerate(older):
        try:
            result = loader.load(
                target,
                [candidate],
                file_format,
                checks,
                superseded=older[index + 1 :],
                converter=converter,
            )
        except LoadError:
            continue
        if result.status in ("published", "up_to_date"):
            return result
    return None


def _emit_older(table: TableSpec, older: LoadResult, warehouse: WarehouseResource) -> Iterator:
    metadata = _source_metadata(Selection([f.source for f in older.files]))
    yield from emit_load_result(table, older, warehouse, metadata)


def refreshed_views(loader: AssetsDefinition) -> list[AssetKey]:
    """The views a `table_from_s3` asset's publish refreshes (its `refreshes`)."""
    listed: str = loader.metadata_by_key[loader.key].get(REFRESHES, "")
    return [AssetKey.from_user_string(name) for name in listed.split(", ") if name]


def refusal(error: LoadError, table: TableSpec) -> Failure:
    """A refused file as the run page shows it: one sentence (key, place, reason), the same
    facts as metadata, and what it means for the table."""
    return Failure(
        description=f"{error}\nNothing was published: {table.qualified} keeps the rows it had;"
        " the ledger records the file as rejected.",
        metadata={
            "key": error.key,
            "line": error.line if error.line is not None else "",
            "column": error.column or "",
            "reason": error.reason,
            "table": table.qualified,
        },
        allow_retries=False,
    )


def table_from_select(
    table: TableSpec,
    *,
    deps: Sequence[TableSpec],
    description: str,
    more_checks: Sequence[NamedCheck] = (),
) -> AssetsDefinition:
    """A table rebuilt from `<table>.select.sql`, its declared checks run before publish."""
    checks = [*shadow_checks(table, from_source=False), *more_checks]
    check_fn = combine(*(c.check for c in checks))

    @asset(
        key=asset_key(table),
        group_name=table.schema,
        deps=[asset_key(d) for d in deps],
        check_specs=blocking_specs(table, checks),
        description=description,
        kinds={"sql"},
        pool=table.qualified,
    )
    def _build(warehouse: WarehouseResource) -> Iterator:
        ensure_tables(warehouse, [table])
        select = sql.SQL(read_sql(table.sql_dir, table.name, SELECT))
        result = rebuild_table(warehouse, LoadTarget(table.schema, table.name), select, check_fn)
        sources = MetadataValue.md("\n".join(f"- `{d.qualified}`" for d in deps))
        yield from emit_load_result(table, result, warehouse, {"source_tables": sources})

    return _build


def view(
    schema: str, name: str, sql_dir: Path, *, deps: Sequence[AssetKey], description: str
) -> AssetsDefinition:
    """A view over `<name>.view.sql`. Its DDL runs only when the SQL changed (a fingerprint is
    kept in the view's comment): replacing a view takes a lock readers of it would queue on."""

    @asset(
        key=AssetKey([schema, name]),
        group_name=schema,
        deps=list(deps),
        description=description,
        kinds={"sql"},
        pool=f"{schema}.{name}",
    )
    def _create(warehouse: WarehouseResource) -> MaterializeResult:
        select = read_sql(sql_dir, name, VIEW)
        replaced = ensure_view(warehouse, schema, name, select)
        return MaterializeResult(
            metadata={"definition": "replaced" if replaced else "unchanged", "sql": select[:4000]}
        )

    return _create


def ensure_view(warehouse: WarehouseResource, schema: str, name: str, select: str) -> bool:
    """Create or replace the view unless it already shows exactly this SQL; True if it ran."""
    ref = table_ref(schema, name)
    fingerprint = "etl_assets " + hashlib.sha256(select.encode()).hexdigest()[:16]
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        if not warehouse.is_redshift:  # concurrent CREATE OR REPLACE VIEW fails in PostgreSQL
            serialize(cur, warehouse.dialect, f"{schema}.{name}")
        cur.execute(
            "select d.description from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " left join pg_description d on d.objoid = c.oid and d.objsubid = 0"
            " where n.nspname = %s and c.relname = %s",
            (schema, name),
        )
        found = cur.fetchone()
        if found is not None and found[0] == fingerprint:
            return False
        cur.execute(create_view(ref, select, warehouse.dialect))
        cur.execute(sql.SQL("comment on view {} is {}").format(ref, sql.Literal(fingerprint)))
        conn.commit()
    return True


# ---- reporting a load -------------------------------------------------------------------


def emit_load_result(
    table: TableSpec,
    result: LoadResult,
    warehouse: WarehouseResource,
    extra_metadata: dict | None = None,
    whole_table: bool = True,
) -> Iterator[AssetCheckResult | MaterializeResult]:
    """Check results first; then the materialization, or a Failure when a blocking check failed.
    `whole_table`: the row count is the table's (a load may have added or replaced only some of
    its rows: `rows_this_load` says how many); else the load's own (a partition's)."""
    key = asset_key(table)
    for outcome in result.checks:
        yield _check_result(table, outcome)
    if result.status == "rejected":
        raise _checks_failed(table, result)
    metadata = load_metadata(result, extra_metadata)
    if whole_table and result.status == "published":
        (rows,) = warehouse.query(sql.SQL("select count(*) from {}").format(table.ref))[0]
        metadata.update({"dagster/row_count": rows, "rows_this_load": result.rows_published})
    metadata["dagster/column_schema"] = column_schema(warehouse, table.schema, table.name)
    yield MaterializeResult(asset_key=key, metadata=metadata)


def _checks_failed(table: TableSpec, result: LoadResult) -> Failure:
    failed = [f"{o.name}: {o.detail}" for o in result.checks if o.blocking and not o.passed]
    return Failure(
        description=f"{asset_key(table).to_user_string()} not published; blocking checks"
        " failed: " + " | ".join(failed),
    )


def load_metadata(result: LoadResult, extra: dict | None = None) -> dict:
    keys = [f.source.key for f in result.files]
    metadata: dict = {
        "status": result.status,
        "rows_published": result.rows_published,
        "dagster/row_count": result.rows_published if result.status == "published" else None,
    }
    if result.load_id:  # a load of files (a rebuild from SQL names its source tables instead)
        metadata.update(source_records=result.records, source_files=len(keys))
    if keys:
        shown = keys[:50] + ([f"... {len(keys) - 50} more"] if len(keys) > 50 else [])
        metadata["source_keys"] = MetadataValue.md("\n".join(f"- `{k}`" for k in shown))
    if result.load_id and result.status == "published":
        metadata["load_id"] = result.load_id
    metadata.update(extra or {})
    return {k: v for k, v in metadata.items() if v is not None}


def column_schema(warehouse: WarehouseResource, schema: str, table: str) -> TableSchema:
    rows = warehouse.query(
        "select column_name, data_type, is_nullable from information_schema.columns"
        " where table_schema = %s and table_name = %s order by ordinal_position",
        (schema, table),
    )
    return TableSchema(
        columns=[
            TableColumn(name, kind, constraints=TableColumnConstraints(nullable=nullable == "YES"))
            for name, kind, nullable in rows
        ]
    )


def _resolve(
    publish: PublishFor, context: AssetExecutionContext, selection: Selection
) -> PublishMode:
    return publish(context, selection) if callable(publish) else publish


def _source_metadata(selection: Selection) -> dict:
    if len(selection.objects) != 1:
        return {}
    chosen = selection.objects[0]
    return {
        "object_key": chosen.key,
        "object_etag": chosen.etag,
        "object_last_modified": str(chosen.last_modified),
    }


def _superseded_text(selection: Selection, table: TableSpec) -> str:
    keys = ", ".join(o.key for o in selection.objects)
    return f"{keys} is older than what {table.qualified} publishes; not loaded"


UPLOAD_ORDER = "upload_order_known"


def _upload_order(selection: Selection, config: UploadConfig) -> CheckOutcome:
    """Two uploads landed in the same instant (LastModified has one-second resolution without
    a notification queue): which is newer is a guess, and the user is told which keys."""
    loaded = ", ".join(o.key for o in selection.objects)
    if not config.same_time_as:
        detail = f"no other upload landed in the same instant as {loaded}"
        return CheckOutcome(UPLOAD_ORDER, True, detail, blocking=False)
    others = ", ".join(config.same_time_as)
    return CheckOutcome(
        UPLOAD_ORDER,
        False,
        f"{loaded} and {others} landed in the same instant: {loaded} was taken as the newest"
        " (by key); upload the one you mean again, or configure the notification queue"
        " (millisecond event times)",
        blocking=False,
        metadata={"same_time_as": others},
    )


def _check_result(table: TableSpec, outcome: CheckOutcome) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=asset_key(table),
        check_name=outcome.name,
        passed=outcome.passed,
        severity=AssetCheckSeverity.ERROR if outcome.blocking else AssetCheckSeverity.WARN,
        description=outcome.detail,
        metadata=outcome.metadata,
    )


def _kept_published(
    checks, warehouse: WarehouseResource, table: TableSpec, why: str
) -> list[CheckOutcome]:
    """Nothing was published (`why`: a stale upload skipped, a file refused): each check says
    so, and that the published rows stay, instead of reading 'execution failed' in the UI."""
    (rows,) = warehouse.query(sql.SQL("select count(*) from {}").format(table.ref))[0]
    detail = f"{why}; the {rows} published rows stay"
    return [CheckOutcome(c.name, True, detail, c.blocking) for c in checks]
