"""`etl-assets demo`: upload data to the local stack, materialize everything, report."""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster import AssetCheckSeverity, DagsterInstance, materialize
from psycopg2 import sql

from etl_assets.defs.sparkify import tables as sparkify_tables
from etl_assets.defs.sparkify.assets import SPARKIFY_ASSETS
from etl_assets.defs.sparkify.checks import SPARKIFY_CHECKS
from etl_assets.local import stack as local_stack
from etl_assets.local.sample_data import write_sparkify
from etl_assets.resources.warehouse import WarehouseResource
from etl_assets.settings import local_s3, local_warehouse

DOMAINS = {"sparkify": sparkify_tables.ALL_TABLES}
_LOG_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})-events\.json$")


@dataclass
class Report:
    tables: dict[str, int] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    dagster_overhead_s: float = 0.0

    @property
    def failed_errors(self) -> list[dict]:
        return [c for c in self.checks if not c["passed"] and c["severity"] == "ERROR"]

    def as_json(self) -> dict:
        return {
            "tables": self.tables,
            "checks": self.checks,
            "elapsed_s": round(self.elapsed_s, 3),
            "skipped": self.skipped,
            "dagster_overhead_s": round(self.dagster_overhead_s, 3),
        }


def run_demo(data_dir: Path | None) -> Report:
    started = time.perf_counter()
    stack = local_stack.up()
    warehouse, s3 = local_warehouse(stack), local_s3(stack)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="etl-assets-sample-") as generated:
        if data_dir is None:
            data_dir = Path(generated)
            write_sparkify(data_dir)
        if (data_dir / "sparkify").is_dir():
            reset_domain(warehouse, s3.get_client(), stack.bucket, "sparkify")
            days = upload_tree(s3.get_client(), stack.bucket, data_dir / "sparkify", "sparkify/")
            run_sparkify(report, warehouse, s3, days)
        else:
            report.skipped.append("sparkify")
    report.elapsed_s = time.perf_counter() - started
    return report


def reset_domain(warehouse: WarehouseResource, s3_client, bucket: str, domain: str) -> None:
    """The demo starts from nothing: the domain's objects, tables and ledger rows go."""
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{domain}/"):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3_client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(domain)))
        cur.execute("select to_regclass('etl_audit.file_ledger') is not null")
        if cur.fetchone()[0]:
            cur.execute(
                "delete from etl_audit.file_ledger where target_table like %s", (f"{domain}.%",)
            )
        conn.commit()


def upload_tree(s3_client, bucket: str, folder: Path, prefix: str) -> list[str]:
    """Upload every file under `folder` to `prefix`; return the days of the event logs found."""
    days = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(folder).as_posix()
        s3_client.upload_file(str(path), bucket, key)
        match = _LOG_DAY.search(key)
        if match:
            days.append(match.group(1))
    return sorted(days)


def run_sparkify(report: Report, warehouse: WarehouseResource, s3, days: list[str]) -> None:
    tags = {}
    if days:
        tags = {
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[-1],
        }
    started = time.perf_counter()
    result = materialize(
        [*SPARKIFY_ASSETS, *SPARKIFY_CHECKS],
        resources={"warehouse": warehouse, "s3": s3},
        instance=_instance(),
        tags=tags,
        raise_on_error=False,
    )
    wall = time.perf_counter() - started
    step_time = sum(
        e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    )
    report.dagster_overhead_s += max(0.0, wall - step_time)
    _collect_checks(report, result)
    report.tables.update(table_counts(warehouse, DOMAINS["sparkify"]))


def _instance() -> DagsterInstance:
    """The persistent local instance when DAGSTER_HOME is set (so `make dev` shows the demo's
    runs), else a throwaway one."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return DagsterInstance.ephemeral()
    Path(home).mkdir(parents=True, exist_ok=True)
    return DagsterInstance.get()


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
        if event.event_type_value == "STEP_FAILURE":
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


def _failure_text(error) -> str:
    while error is not None and error.cause is not None and "Failure" not in error.cls_name:
        error = error.cause
    return (error.message if error else "step failed").strip().splitlines()[-1][:1000]


def table_counts(warehouse: WarehouseResource, tables) -> dict[str, int]:
    counts = {}
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        for table in tables:
            cur.execute("select to_regclass(%s) is not null", (table.ref.as_string(cur),))
            if cur.fetchone()[0]:
                cur.execute(sql.SQL("select count(*) from {}").format(table.ref))
                counts[table.qualified] = cur.fetchone()[0]
    return counts


def format_report(report: Report) -> str:
    lines = ["Tables", "------"]
    lines += [f"  {name:<32} {count:>10,}" for name, count in report.tables.items()]
    lines += ["", "Checks", "------"]
    for check in report.checks:
        mark = "PASS" if check["passed"] else f"FAIL ({check['severity']})"
        lines.append(f"  {mark:<13} {check['asset']} :: {check['check']}")
        lines.append(f"                {check['detail']}")
    if report.skipped:
        lines += ["", "Skipped (no data folder): " + ", ".join(report.skipped)]
    verdict = "FAILED" if report.failed_errors else "OK"
    lines += [
        "",
        f"{verdict}: {len(report.checks)} checks, {len(report.failed_errors)} ERROR "
        f"failures, {report.elapsed_s:.1f} s",
    ]
    return "\n".join(lines)
