"""`etl-assets demo`: upload data to the local stack, materialize everything, report."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster import AssetCheckSeverity, AssetSelection, DagsterInstance, materialize
from psycopg2 import sql

from etl_assets import domains
from etl_assets.lib.domain import Domain
from etl_assets.loading.dialect import table_ref
from etl_assets.local import stack as local_stack
from etl_assets.local.resources import bucket_for, warehouse_for
from etl_assets.resources.landing_bucket import LandingBucketResource
from etl_assets.resources.warehouse import WarehouseResource


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
    found = domains.discover()
    stack = local_stack.up(upload_prefixes=domains.upload_prefixes())
    warehouse, bucket = warehouse_for(stack), bucket_for(stack)
    report = Report()
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
            reset_domain(warehouse, bucket.get_client(), bucket.bucket, domain.name)
            run_domain(report, domain, warehouse, bucket, folder)
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


def upload_folder(domain: Domain, s3_client, bucket: str, folder: Path) -> list[str]:
    """Upload every file under the domain's data folder to the key the domain gives it."""
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = domain.key_for(path.relative_to(folder).as_posix())
        s3_client.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


def run_domain(
    report: Report,
    domain: Domain,
    warehouse: WarehouseResource,
    bucket: LandingBucketResource,
    folder: Path,
) -> None:
    """Upload the domain's files, materialize its group with every check, count its tables."""
    from etl_assets.definitions import defs

    keys = upload_folder(domain, bucket.get_client(), bucket.bucket, folder)
    started = time.perf_counter()
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        selection=AssetSelection.groups(domain.name),
        resources={"warehouse": warehouse, "s3": bucket},
        instance=_instance(),
        tags=domain.run_tags(keys),
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
    report.tables.update(table_counts(warehouse, domain.tables))
    report.tables.update(view_counts(warehouse, domain.name, domain.views))


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
    """The refusal itself (LoadError, Failure), not the driver error underneath it."""
    top = error
    while error is not None:
        if error.cls_name in ("LoadError", "Failure", "FileNotFoundError", "RuntimeError"):
            return error.message.strip().splitlines()[0].removeprefix(error.cls_name + ": ")
        error = error.cause
    return top.message.strip().splitlines()[0][:1000] if top else "step failed"


def view_counts(warehouse: WarehouseResource, schema: str, views: list[str]) -> dict[str, int]:
    counts = {}
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        for view in views:
            ref = table_ref(schema, view)
            cur.execute("select to_regclass(%s) is not null", (ref.as_string(cur),))
            if cur.fetchone()[0]:
                cur.execute(sql.SQL("select count(*) from {}").format(ref))
                counts[f"{schema}.{view}"] = cur.fetchone()[0]
    return counts


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
