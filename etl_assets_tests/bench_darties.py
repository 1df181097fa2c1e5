"""`make bench` (darties part): a large generated workbook, converted and loaded.

    python -m etl_assets_tests.bench_darties [--cities 1000]

1. Conversion rate (cells/s) of a yearly workbook of --cities store cities x 12 months x 9
   measure sheets (plus the `darties` sheet), read with python-calamine against openpyxl, in
   the same run.
2. End to end: the workbook lands, the darties sensor ticks, its run (converted, loaded, the
   star derived, every check) executes in a child process: seconds and the run's peak RSS,
   beside a no-op Dagster run's RSS (the floor of any run).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from dagster import DagsterInstance

from etl_assets import domains
from etl_assets.defs.darties.sample_data import city_names, workbook_sheets, write_workbook
from etl_assets.defs.darties.workbooks import read_workbook
from etl_assets.local import stack as local_stack
from etl_assets.local.resources import bucket_for, warehouse_for
from etl_assets_tests.helpers import sensor_tick_and_runs
from etl_assets_tests.peak_memory import peak_rss_mb

SENSOR = "darties_upload_sensor"


def conversion_rates(path: Path) -> dict:
    body = path.read_bytes()
    seconds = {}
    for engine in ("calamine", "openpyxl"):
        started = time.perf_counter()
        pd.read_excel(io.BytesIO(body), sheet_name=None, engine=engine)
        seconds[engine] = time.perf_counter() - started
    started = time.perf_counter()
    workbook = read_workbook(body, path.name)
    checked = time.perf_counter() - started
    return {
        "cells": workbook.cells,
        "calamine_cells_per_s": round(workbook.cells / seconds["calamine"]),
        "openpyxl_cells_per_s": round(workbook.cells / seconds["openpyxl"]),
        "calamine_speedup": round(seconds["openpyxl"] / seconds["calamine"], 1),
        "read_and_checked_s (calamine + checks)": round(checked, 2),
    }


def child_tick() -> None:
    info = local_stack.read_stack()
    started = time.perf_counter()
    results, _ = sensor_tick_and_runs(
        SENSOR, warehouse_for(info), bucket_for(info), DagsterInstance.ephemeral()
    )
    seconds = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    ok = bool(results) and all(r.success for r in results)
    print(json.dumps({"ok": ok, "seconds": seconds, "peak_mb": peak_mb}))


def child_noop() -> None:
    from dagster import asset, materialize

    @asset
    def nothing() -> None:
        return None

    materialize([nothing], instance=DagsterInstance.ephemeral())
    print(json.dumps({"peak_mb": peak_rss_mb()}))


def _child(flag: str, home: Path, bucket: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "etl_assets_tests.bench_darties", flag],
        env={**os.environ, "ETL_ASSETS_HOME": str(home), "ETL_S3_BUCKET": bucket},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cities", type=int, default=1000)
    parser.add_argument("--child-tick", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-noop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_tick:
        return child_tick()
    if args.child_noop:
        return child_noop()
    with tempfile.TemporaryDirectory(prefix="etl-bench-darties-") as scratch:
        path = write_workbook(
            Path(scratch) / "2020_HISTO.xlsx", workbook_sheets("histo", city_names(args.cities))
        )
        report = {"workbook_mb": round(path.stat().st_size / 1e6, 1), **conversion_rates(path)}
        home = Path(scratch) / "stack"
        os.environ["ETL_ASSETS_HOME"] = str(home)
        info = local_stack.up(home, upload_prefixes=domains.upload_prefixes())
        try:
            local_stack.s3_client(info).upload_file(str(path), info.bucket, "darties/" + path.name)
            run = _child("--child-tick", home, info.bucket)
            floor = _child("--child-noop", home, info.bucket)
            rows = warehouse_for(info).query("select count(*) from darties.sales")[0][0]
        finally:
            local_stack.down(home)
    report.update(
        {
            "run_ok": run["ok"],
            "sales_rows": rows,
            "end_to_end_s (tick, convert, load, star, checks)": round(run["seconds"], 1),
            "run_peak_rss_mb": round(run["peak_mb"]),
            "noop_run_peak_rss_mb": round(floor["peak_mb"]),
        }
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
