"""`etl-assets demo`: upload data to the local stack, materialize everything, report."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    AssetCheckSeverity,
    AssetSelection,
    build_sensor_context,
    materialize,
)
from psycopg2 import sql

from etl_assets import domains
from etl_assets.lib.domain import Domain
from etl_assets.loading.dialect import table_ref
from etl_assets.local import stack as local_stack
from etl_assets.local.instance import local_instance
from etl_assets.local.resources import bucket_for, warehouse_for
from etl_assets.resources.landing_bucket import LandingBucketResource
from etl_assets.resources.warehouse import WarehouseResource

# Dagster's own console log is silenced in the demo: its events go to `Report.log_path`
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class Report:
    tables: dict[str, int] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0
    dagster_overhead_s: float = 0.0
    say: Callable[[str], None] | None = None  # one progress line per asset as it finishes
    log_path: Path | None = None  # every Dagster event of the demo's runs

    def progress(self, result) -> None:
        """The run's assets, one line each (rows, seconds, checks); its events to the log."""
        if self.log_path is not None:
            with self.log_path.open("a") as log:
                log.writelines(_log_line(e, result.run_id) + "\n" for e in result.all_events)
        if self.say is None:
            return
        for line in asset_lines(result):
            self.say(line)

    @property
    def failed_errors(self) -> list[dict]:
        return [c for c in self.checks if not c["passed"] and c["severity"] == "ERROR"]

    def as_json(self) -> dict:
        return {
            "tables": self.tables,
            "checks": self.checks,
            "elapsed_s": round(self.elapsed_s, 3),
            "skipped": self.skipped,
            "refused": self.refused,
            "dagster_overhead_s": round(self.dagster_overhead_s, 3),
        }


def run_demo(data_dir: Path | None, say: Callable[[str], None] | None = None) -> Report:
    """`say`: where the per-asset progress lines go (None: nowhere)."""
    started = time.perf_counter()
    found = domains.discover()
    stack = local_stack.up(upload_prefixes=domains.upload_prefixes())
    warehouse, bucket = warehouse_for(stack), bucket_for(stack)
    log_path = local_stack.state_dir() / "demo-dagster.log"
    log_path.write_text("")
    report = Report(say=say, log_path=log_path)
    since = datetime.now(UTC).replace(tzinfo=None)
    with tempfile.TemporaryDirectory(prefix="etl-assets-sample-") as generated:
        if data_dir is None:
            data_dir = Path(generated)
            for domain in found:
                if domain.write_sample is not None:
                    domain.write_sample(data_dir)
        for domain in found:
            folder = data_dir / domain.name
            if not folder.is_dir():
                report.skipped.append(domain.name)
                continue
            reset_domain(warehouse, bucket.get_client(), bucket.bucket, domain)
            if say is not None:
                say(f"{domain.name}:")
            run_domain(report, domain, warehouse, bucket, folder)
            report.refused += refused_since(warehouse, domain.name, since)
    report.elapsed_s = time.perf_counter() - started
    return report


def reset_domain(warehouse: WarehouseResource, s3_client, bucket: str, domain: Domain) -> None:
    """The demo starts from nothing: the domain's objects, tables and ledger rows go."""
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{domain.name}/"):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3_client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    discovered = domain.discovered_tables(warehouse) if domain.discovered_tables else []
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        for name in discovered:
            cur.execute(sql.SQL("drop table if exists {}").format(table_ref(*name.split("."))))
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(domain.name)))
        cur.execute(  # information_schema: both dialects (Redshift has no to_regclass)
            "select count(*) from information_schema.tables"
            " where table_schema = 'etl_audit' and table_name = 'file_ledger'"
        )
        if cur.fetchone()[0]:
            cur.execute(
                "delete from etl_audit.file_ledger where target_table like %s"
                " or object_key like %s",
                (f"{domain.name}.%", f"{domain.name}/%"),
            )
        conn.commit()


def refused_since(warehouse: WarehouseResource, domain: str, since: datetime) -> list[dict]:
    """Every file of the domain the ledger recorded as rejected during this demo."""
    rows = warehouse.query(
        "select object_key, error from etl_audit.file_ledger where status = 'rejected'"
        " and object_key like %s and recorded_at >= %s order by recorded_at, object_key",
        (f"{domain}/%", since),
    )
    return [{"key": key, "reason": reason or ""} for key, reason in rows]


def upload_files(
    domain: Domain, s3_client, bucket: str, folder: Path, relative_paths: list[str]
) -> list[str]:
    """Upload files of the domain's data folder, in the order given, to the domain's keys."""
    keys = []
    for relative in relative_paths:
        key = domain.key_for(relative)
        s3_client.upload_file(str(folder / relative), bucket, key)
        keys.append(key)
    return keys


def upload_folder(domain: Domain, s3_client, bucket: str, folder: Path) -> list[str]:
    """Upload every file under the domain's data folder to the key the domain gives it."""
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return upload_files(domain, s3_client, bucket, folder, paths)


def run_domain(
    report: Report,
    domain: Domain,
    warehouse: WarehouseResource,
    bucket: LandingBucketResource,
    folder: Path,
) -> None:
    """Upload the domain's files group by group and run it after each group (its group of
    assets with every check, or the runs its upload sensors request); count its tables."""
    from etl_assets.definitions import defs

    instance = local_instance()
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    cursors: dict[str, str | None] = {}
    for group in domain.upload_groups(paths):
        keys = upload_files(domain, bucket.get_client(), bucket.bucket, folder, group)
        resources = {"warehouse": warehouse, "s3": bucket}
        if domain.runs_by_sensor:
            results = _sensor_runs(defs, domain, resources, instance, cursors)
        else:
            results = [_materialize_group(defs, domain, resources, instance, keys)]
        for result, wall in results:
            _account(report, result, wall)
    report.tables.update(table_counts(warehouse, domain.tables))
    report.tables.update(view_counts(warehouse, domain.name, domain.views))
    if domain.discovered_tables:
        discovered = [name.split(".") for name in domain.discovered_tables(warehouse)]
        report.tables.update(counts_of(warehouse, discovered))


def _materialize_group(defs, domain: Domain, resources: dict, instance, keys: list[str]):
    started = time.perf_counter()
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        selection=AssetSelection.groups(domain.name),
        resources=resources,
        instance=instance,
        tags=domain.run_tags(keys),
        run_config=QUIET,
        raise_on_error=False,
    )
    return result, time.perf_counter() - started


def _sensor_runs(defs, domain: Domain, resources: dict, instance, cursors: dict) -> list:
    """Evaluate the domain's sensors as the daemon would and execute what they request."""
    results = []
    group = {a.key for a in defs.assets if domain.name in a.group_names_by_key.values()}
    for sensor_def in defs.sensors:
        if not set(sensor_def.job.selection.resolve(defs.assets)) & group:
            continue
        context = build_sensor_context(
            instance=instance, cursor=cursors.get(sensor_def.name), resources=resources
        )
        tick = sensor_def(context)
        cursors[sensor_def.name] = tick.cursor
        results += execute_requests(defs, sensor_def, tick, resources, instance)
    return results


def execute_requests(defs, sensor_def, tick, resources: dict, instance) -> list:
    """What the daemon does with a sensor tick: add its dynamic partitions, launch its runs.
    Returns (result, wall seconds) per run."""
    for request in tick.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    results = []
    for request in tick.run_requests or []:
        started = time.perf_counter()
        result = materialize(
            [*defs.assets, *defs.asset_checks],
            selection=sensor_def.job.selection,  # its assets and checks
            resources=resources,
            instance=instance,
            partition_key=request.partition_key,
            run_config={**QUIET, **(request.run_config or {})},
            tags=request.tags,
            raise_on_error=False,
        )
        results.append((result, time.perf_counter() - started))
    return results


def _account(report: Report, result, wall: float) -> None:
    report.progress(result)
    step_time = sum(
        e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    )
    report.dagster_overhead_s += max(0.0, wall - step_time)
    _collect_checks(report, result)


def _collect_checks(report: Report, result) -> None:
    for evaluation in result.get_asset_check_evaluations():
        severity = evaluation.severity
        report.checks.append(
            {
                "asset": evaluation.asset_key.to_user_string(),
                "check": evaluation.check_name,
                "passed": bool(evaluation.passed),
                "severity": "WARN" if severity == AssetCheckSeverity.WARN else "ERROR",
                "detail": evaluation.description or "",
            }
        )
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE" and not _only_refusals(event):
            error = event.event_specific_data.error
            report.checks.append(
                {
                    "asset": (event.step_key or "").replace("__", "/"),
                    "check": "materialization",
                    "passed": False,
                    "severity": "ERROR",
                    "detail": _failure_text(error),
                }
            )


def _only_refusals(event) -> bool:
    """A run that applied what it could and failed only to show refused files (listed under
    `refused`, from the ledger): not a failed check."""
    failure = event.event_specific_data.user_failure_data
    return failure is not None and "refused" in (failure.metadata or {})


def asset_lines(result) -> list[str]:
    """`  ok    flights/flights      300 rows   0.4 s   checks 5/5` per step of the run."""
    rows: dict[str, int] = {}
    materialized: set[str] = set()
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialized.add(event.step_key)
            count = event.event_specific_data.materialization.metadata.get("dagster/row_count")
            if count is not None and count.value is not None:
                rows[event.step_key] = count.value
    checks: dict[str, list[bool]] = {}
    for evaluation in result.get_asset_check_evaluations():
        checks.setdefault(evaluation.asset_key.to_user_string(), []).append(evaluation.passed)
    partition = result.dagster_run.tags.get("dagster/partition")
    lines = []
    for event in result.all_events:
        failed = event.event_type_value == "STEP_FAILURE"
        if not failed and (
            event.event_type_value != "STEP_SUCCESS" or event.step_key not in materialized
        ):
            continue  # a step of checks only: counted with its asset
        asset = (event.step_key or "").replace("__", "/")
        passed = checks.get(asset, [])
        counts = f"checks {sum(passed)}/{len(passed)}" if passed else ""
        if partition:
            asset = f"{asset} [{partition}]"
        if failed:
            label = "refused" if _only_refusals(event) else "FAIL"
            text = _failure_text(event.event_specific_data.error)
            lines.append(f"  {label:<5} {asset:<30} {text}")
            continue
        seconds = event.event_specific_data.duration_ms / 1000
        shown = (
            f"{rows[event.step_key]:>10,} rows" if event.step_key in rows else "(view)".rjust(15)
        )
        lines.append(f"  ok    {asset:<30} {shown} {seconds:6.1f} s   {counts}".rstrip())
    return lines


def _log_line(event, run_id: str) -> str:
    text = f"{run_id[:8]} {event.step_key or '-'} {event.event_type_value} {event.message}"
    error = getattr(event.event_specific_data, "error", None)
    return f"{text}\n{error.to_string()}" if error is not None else text


def _failure_text(error) -> str:
    """The refusal itself (LoadError, Failure), not the driver error underneath it."""
    top = error
    while error is not None:
        if error.cls_name in ("LoadError", "Failure", "FileNotFoundError", "RuntimeError"):
            first = error.message.strip().splitlines()[0]
            return re.sub(rf"^[\w.]*\b{error.cls_name}: ", "", first)
        error = error.cause
    return top.message.strip().splitlines()[0][:1000] if top else "step failed"


def view_counts(warehouse: WarehouseResource, schema: str, views: list[str]) -> dict[str, int]:
    counts = {}
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        for view in views:
            ref = table_ref(schema, view)
            if relation_exists(cur, schema, view):
                cur.execute(sql.SQL("select count(*) from {}").format(ref))
                counts[f"{schema}.{view}"] = cur.fetchone()[0]
    return counts


def table_counts(warehouse: WarehouseResource, tables) -> dict[str, int]:
    return counts_of(warehouse, [(t.schema, t.name) for t in tables])


def counts_of(warehouse: WarehouseResource, names) -> dict[str, int]:
    """`schema.table` -> rows, for those of the (schema, table) pairs that exist."""
    counts = {}
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        for schema, table in names:
            ref = table_ref(schema, table)
            if relation_exists(cur, schema, table):
                cur.execute(sql.SQL("select count(*) from {}").format(ref))
                counts[f"{schema}.{table}"] = cur.fetchone()[0]
    return counts


def relation_exists(cur, schema: str, name: str) -> bool:
    """A table or view (late-binding ones included) by name, on both dialects."""
    cur.execute(
        "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s",
        (schema, name),
    )
    return cur.fetchone()[0] > 0


def format_report(report: Report) -> str:
    lines = ["Tables", "------"]
    lines += [f"  {name:<32} {count:>10,}" for name, count in report.tables.items()]
    lines += ["", "Checks", "------"]
    for check in report.checks:
        mark = "PASS" if check["passed"] else f"FAIL ({check['severity']})"
        lines.append(f"  {mark:<13} {check['asset']} :: {check['check']}")
        lines.append(f"                {check['detail']}")
    if report.refused:
        lines += ["", "Refused files", "-------------"]
        lines += [f"  {r['key']}\n                {r['reason']}" for r in report.refused]
    if report.skipped:
        lines += ["", "Skipped (no data folder): " + ", ".join(report.skipped)]
    verdict = "FAILED" if report.failed_errors else "OK"
    lines += [
        "",
        f"{verdict}: {len(report.checks)} checks, {len(report.failed_errors)} ERROR "
        f"failures, {report.elapsed_s:.1f} s",
    ]
    if report.log_path is not None:
        lines.append(f"Dagster's own log of these runs: {report.log_path}")
    return "\n".join(lines)
