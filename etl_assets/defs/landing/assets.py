"""The landing zone: one asset, partitioned by landing table (`<db>.<table>`), whose runs apply
that table's landed files in landing order.

Dagster's definitions are static, and landing tables appear whenever someone uploads a schema
file. Dynamic partitions keyed by table follow them with no reload of the code location and no
warehouse query while it loads: the upload sensor adds a table's partition in the tick that
first sees one of its files. Each partition's materializations carry that table's row count,
declared column schema and the files the run applied."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from psycopg2 import sql
from pydantic import Field

from etl_assets.defs.landing import tables as registry
from etl_assets.defs.landing.apply import Landed, TableRun, apply_files
from etl_assets.defs.landing.contract import ACTIONS
from etl_assets.defs.landing.keys import PREFIX, LandingKey, RoutingError, parse_key
from etl_assets.lib.assets import column_schema
from etl_assets.lib.checks import CheckNames
from etl_assets.loading import ledger
from etl_assets.loading.dialect import table_ref
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.sources import list_objects
from etl_assets.resources.landing_bucket import LandingBucketResource
from etl_assets.resources.warehouse import WarehouseResource

LANDING_TABLES = DynamicPartitionsDefinition(name="landing_tables")


class LandedVersion(Config):
    key: str
    etag: str
    landed_at: str | None = Field(
        default=None,
        description="when it landed (the notification's event time, in milliseconds, where a"
        " queue is configured; LastModified otherwise)",
    )


class LandedFiles(Config):
    """The versions to apply, in landing order (the sensor's request); empty = every version
    of the table's files not in the ledger yet."""

    files: list[LandedVersion] = Field(default_factory=list)
    replay: bool = Field(
        default=False, description="apply versions the ledger has as rejected again"
    )
    force: bool = Field(
        default=False, description="apply versions the ledger has as loaded again too"
    )


def replay_request(key: str, etag: str, force: bool) -> tuple[str, dict]:
    """The partition and run config that apply exactly this version again."""
    files = [{"key": key, "etag": etag}]
    config = {"files": files, "replay": True, "force": force}
    return route(key), {"ops": {landing_tables.op.name: {"config": config}}}


def route(key: str) -> str:
    """The partition a key goes to; ValueError (RoutingError) says why it cannot."""
    return parse_key(key).qualified


KEY_CHECK = "primary_key_unique_not_null"
CHECKS = {
    CheckNames.ROWS_MATCH_SOURCE: "Rows loaded equal the records of each file (before publish).",
    KEY_CHECK: "The declared primary key is unique and never null in each file's rows (before "
    "publish; passes when the table declares none).",
}


@asset(
    key=AssetKey(["landing", "tables"]),
    group_name="landing",
    partitions_def=LANDING_TABLES,
    kinds={"s3", "sql"},
    pool="landing.tables",
    output_required=False,  # a run may apply nothing (files gone, all already applied)
    check_specs=[
        AssetCheckSpec(name, asset=AssetKey(["landing", "tables"]), description=text)
        for name, text in CHECKS.items()
    ],
)
def landing_tables(
    context: AssetExecutionContext,
    config: LandedFiles,
    warehouse: WarehouseResource,
    s3: LandingBucketResource,
) -> Iterator[MaterializeResult]:
    """Every landing table `<db>.<table>` (one partition each): files landed under
    `landing/<db>/<action>/<table>/` applied in landing order: `schema` creates or evolves the
    table from its JSON contract, `append` adds a CSV's rows, `truncate` replaces them,
    `upsert` merges them on the primary key. Refused files fail the run with their reasons;
    what was published stays."""
    client = s3.get_client()
    landed, gone = _landed(warehouse, client, s3.bucket, context.partition_key, config)
    run = apply_files(
        warehouse,
        client,
        landed,
        context.run.run_id,
        replay=config.replay,
        force=config.force,
        report=context.log.info,
        gone=gone,
    )
    db, table = context.partition_key.split(".", 1)
    if run.changed and _exists(warehouse, db, table):
        yield MaterializeResult(metadata=_metadata(warehouse, db, table, run))
    else:  # a run that applied nothing leaves the asset as it was
        context.log.info(f"{context.partition_key}: {_summary(run)}")
    yield from _check_results(run)
    if run.refused:
        raise Failure(
            description=f"{len(run.refused)} file(s) refused for {run.table}: "
            + " | ".join(o.detail for o in run.refused),
            metadata={"refused": MetadataValue.md(_files_table(run))},
        )


def _summary(run: TableRun) -> str:
    """What a run that applied nothing did, in one line."""
    if not run.outcomes:
        return "nothing to apply"
    counts: dict[str, int] = {}
    for outcome in run.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return "nothing applied: " + ", ".join(f"{n} {status}" for status, n in counts.items())


def _landed(
    warehouse: WarehouseResource, s3_client, bucket: str, partition: str, config: LandedFiles
) -> tuple[list[Landed], list[Landed]]:
    """The uploads to apply, and those requested but no longer in the bucket."""
    db, table = partition.split(".", 1)
    # only this table's folders (one per action), not every file of the db
    listed = [
        o
        for action in ACTIONS
        for o in list_objects(s3_client, bucket, f"{PREFIX}{db}/{action}/{table}/")
        if _routes_to(o, partition)
    ]
    if not config.files:
        with warehouse.get_connection() as conn, conn.cursor() as cur:
            seen = ledger.recorded_uploads(cur, listed, partition)
        return [Landed(o, parse_key(o.key)) for o in listed if o not in seen], []
    present = {(o.key, o.etag): o for o in listed}
    chosen, gone = [], []
    for f in _one_per_version(config.files):
        found = present.get((f.key, f.etag))
        if found is not None:
            chosen.append(
                Landed(replace(found, last_modified=_when(f.landed_at, found)), parse_key(f.key))
            )
        else:
            source = SourceObject(bucket, f.key, f.etag, 0, _when(f.landed_at, None))
            gone.append(Landed(source, parse_key(f.key)))
    return chosen, gone


def _one_per_version(files: list[LandedVersion]) -> list[LandedVersion]:
    """A version announced twice in one request (two notifications of one upload, whose
    event times differ) is one upload: the first landing kept."""
    kept: dict[tuple[str, str], LandedVersion] = {}
    for f in files:
        earlier = kept.get((f.key, f.etag))
        if earlier is None or _announced_at(f) < _announced_at(earlier):
            kept[(f.key, f.etag)] = f
    return [f for f in files if kept[(f.key, f.etag)] is f]


def _announced_at(version: LandedVersion) -> datetime:
    return _when(version.landed_at, None) or datetime.max.replace(tzinfo=UTC)


def _when(landed_at: str | None, listed: SourceObject | None) -> datetime | None:
    if landed_at:
        return datetime.fromisoformat(landed_at)
    return listed.last_modified if listed else None


def _routes_to(source: SourceObject, partition: str) -> bool:
    try:
        return route(source.key) == partition
    except RoutingError:
        return False


def _exists(warehouse: WarehouseResource, db: str, table: str) -> bool:
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        return registry.table_exists(cur, db, table)


def _metadata(warehouse: WarehouseResource, db: str, table: str, run: TableRun) -> dict:
    (rows,) = warehouse.query(sql.SQL("select count(*) from {}").format(table_ref(db, table)))[0]
    return {
        "dagster/row_count": rows,
        "dagster/column_schema": column_schema(warehouse, db, table),
        "files": MetadataValue.md(_files_table(run)),
        "files_loaded": sum(o.status == "loaded" for o in run.outcomes),
        "files_refused": len(run.refused),
    }


def _check_results(run: TableRun) -> Iterator[AssetCheckResult]:
    """Each check over the loads of this run: failed if it failed for any file."""
    for name in CHECKS:
        evaluated = [c for c in run.checks if _same_check(c.name, name)]
        failed = [c for c in evaluated if not c.passed]
        if failed:
            detail = " | ".join(c.detail for c in failed)
        elif evaluated:
            detail = "; ".join(c.detail for c in evaluated)
        elif name == KEY_CHECK and run.changed:
            detail = f"{run.table} declares no primary key"
        else:
            detail = "no file loaded in this run"
        yield AssetCheckResult(check_name=name, passed=not failed, description=detail[:2000])


def _same_check(evaluated: str, declared: str) -> bool:
    if declared == KEY_CHECK:
        return evaluated.endswith("_unique_not_null")
    return evaluated == declared


def _files_table(run: TableRun) -> str:
    lines = ["| file | status | rows | detail |", "|---|---|---|---|"]
    for o in run.outcomes:
        detail = o.detail.replace("|", "/")
        lines.append(f"| `{o.key}` | {o.status} | {'' if o.rows is None else o.rows} | {detail} |")
    return "\n".join(lines)


__all__ = ["LANDING_TABLES", "LandingKey", "landing_tables", "route"]
