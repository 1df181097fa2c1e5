"""`make bench` (landing part): the landing zone's append path and a burst of small files.

    python -m etl_assets_tests.bench_landing [--append-mb 1000] [--files 1000] [--tables 10]

1. One CSV of --append-mb MB appended to a declared table through the landing path (sensor
   tick, run in a child process so its peak RSS is the load's own), against COPY of the same
   file from local disk into a table of the same shape, in the same run. Target >= 0.9x.
2. --files small files landing at once for --tables tables: the tick that routes them, and the
   runs that apply them (one per table, in landing order). Targets: tick <= 1 s, all loaded
   within 5 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
from dagster import DagsterInstance, build_sensor_context

from etl_assets import domains
from etl_assets.definitions import defs
from etl_assets.local import stack as local_stack
from etl_assets.local.resources import bucket_for, warehouse_for
from etl_assets_tests.helpers import execute_requests, sensor_tick_and_runs
from etl_assets_tests.peak_memory import peak_rss_mb

SENSOR = "landing_upload_sensor"
READINGS = {
    "table": "readings",
    "columns": [
        {"name": "reading_id", "type": "bigint", "nullable": False},
        {"name": "sensor", "type": "varchar(16)"},
        {"name": "taken_at", "type": "timestamp"},
        {"name": "value", "type": "double precision"},
        {"name": "note", "type": "varchar(32)"},
    ],
    "allowed_operations": ["append", "schema"],
}


def write_readings(path: Path, megabytes: int) -> int:
    rng = random.Random(5)
    rows, target = 0, megabytes * 1_000_000
    with open(path, "w") as handle:
        handle.write("reading_id,sensor,taken_at,value,note\n")
        while handle.tell() < target:
            lines = []
            for _ in range(10_000):
                rows += 1
                day, minute = 1 + rows % 28, rows % 60
                lines.append(
                    f"{rows},s{rng.randrange(500)},2026-11-{day:02d} 12:{minute:02d}:00,"
                    f"{rng.random() * 100:.4f},batch {rows // 100_000}\n"
                )
            handle.write("".join(lines))
    return rows


def child_tick(cursor: str) -> None:
    """One sensor tick and its runs, in this process: prints seconds and peak RSS."""
    info = local_stack.read_stack()
    started = time.perf_counter()
    results, _ = sensor_tick_and_runs(
        SENSOR,
        warehouse_for(info),
        bucket_for(info, os.environ["ETL_S3_BUCKET"]),
        DagsterInstance.ephemeral(),
        cursor or None,
    )
    seconds = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    ok = all(r.success for r in results)
    print(json.dumps({"ok": ok, "runs": len(results), "seconds": seconds, "peak_mb": peak_mb}))


def disk_copy_seconds(dsn: str, path: Path, into_table: bool = False) -> float:
    """COPY of the file from local disk into a temp table (no WAL), or into the landing table
    itself (rolled back): the second is what any append to a real table costs."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur, open(path, "rb") as handle:
        target = "dev.readings"
        if not into_table:
            cur.execute("create temp table disk_copy (like dev.readings)")
            target = "disk_copy"
        started = time.perf_counter()
        cur.copy_expert(
            f"copy {target} (reading_id, sensor, taken_at, value, note)"
            " from stdin with (format csv, header true)",
            handle,
            size=1 << 18,
        )
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


def bench_append(info, home: Path, scratch: Path, megabytes: int) -> dict:
    client = local_stack.s3_client(info)
    warehouse, bucket = warehouse_for(info), bucket_for(info)
    client.put_object(
        Bucket=info.bucket,
        Key="landing/dev/schema/readings/readings.json",
        Body=json.dumps(READINGS).encode(),
    )
    _, cursor = sensor_tick_and_runs(SENSOR, warehouse, bucket, DagsterInstance.ephemeral())
    big = scratch / "readings.csv"
    rows = write_readings(big, megabytes)
    client.upload_file(str(big), info.bucket, "landing/dev/append/readings/big.csv")
    done = subprocess.run(
        [sys.executable, "-m", "etl_assets_tests.bench_landing", "--child-tick", cursor or ""],
        env={**os.environ, "ETL_ASSETS_HOME": str(home), "ETL_S3_BUCKET": info.bucket},
        capture_output=True,
        text=True,
        check=True,
    )
    run = json.loads(done.stdout.strip().splitlines()[-1])
    disk = min(disk_copy_seconds(info.dsn(), big) for _ in range(2))
    disk_table = disk_copy_seconds(info.dsn(), big, into_table=True)
    loaded = warehouse.query("select count(*) from dev.readings")[0][0]
    return {
        "file_mb": round(big.stat().st_size / 1e6),
        "rows": rows,
        "rows_loaded": loaded,
        "run_ok": run["ok"],
        "tick_and_run_s": round(run["seconds"], 1),
        "rows_per_s": round(rows / run["seconds"]),
        "disk_copy_rows_per_s": round(rows / disk),
        "ratio_to_disk_copy": round(disk / run["seconds"], 3),
        "disk_copy_into_the_table_rows_per_s": round(rows / disk_table),
        "ratio_to_disk_copy_into_the_table": round(disk_table / run["seconds"], 3),
        "peak_rss_mb": round(run["peak_mb"]),
    }


def bench_burst(info, files: int, tables: int) -> dict:
    client = local_stack.s3_client(info)
    warehouse, bucket = warehouse_for(info), bucket_for(info)
    for t in range(tables):
        schema = {**READINGS, "table": f"burst_{t}"}
        client.put_object(
            Bucket=info.bucket,
            Key=f"landing/dev/schema/burst_{t}/schema.json",
            Body=json.dumps(schema).encode(),
        )
    _, cursor = sensor_tick_and_runs(SENSOR, warehouse, bucket, DagsterInstance.ephemeral())
    started = time.perf_counter()
    for i in range(files):
        body = f"reading_id,sensor,value\n{i},s{i % 7},{i / 10}\n"
        key = f"landing/dev/append/burst_{i % tables}/{i:05d}.csv"
        client.put_object(Bucket=info.bucket, Key=key, Body=body.encode())
    uploaded = time.perf_counter() - started
    sensor_def = next(s for s in defs.sensors if s.name == SENSOR)
    resources = {"warehouse": warehouse, "s3": bucket}
    instance = DagsterInstance.ephemeral()
    started, ticks, results = time.perf_counter(), [], []
    while time.perf_counter() - started < 300 and _loaded(warehouse, tables) < files:
        tick_started = time.perf_counter()
        context = build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        tick = sensor_def(context)
        ticks.append(time.perf_counter() - tick_started)
        cursor = tick.cursor
        results += execute_requests(sensor_def, tick, resources, instance)
    applied = time.perf_counter() - started
    counts = [warehouse.query(f"select count(*) from dev.burst_{t}")[0][0] for t in range(tables)]
    in_order = all(
        warehouse.query(
            f"select count(*) from (select reading_id, lag(reading_id) over (order by ctid) as"
            f" previous from dev.burst_{t}) ordered where previous > reading_id"
        )[0][0]
        == 0
        for t in range(tables)
    )
    return {
        "files": files,
        "tables": tables,
        "upload_s": round(uploaded, 1),
        "ticks": len(ticks),
        "slowest_tick_s": round(max(ticks), 3),
        "runs": len(results),
        "runs_ok": all(r.success for r in results),
        "all_loaded_s (ticks and runs, no tick interval)": round(applied, 1),
        "rows_loaded": sum(counts),
        "rows_in_landing_order": in_order,
    }


def _loaded(warehouse, tables: int) -> int:
    counts = warehouse.query(
        " union all ".join(f"select count(*) from dev.burst_{t}" for t in range(tables))
    )
    return sum(count for (count,) in counts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--append-mb", type=int, default=1000)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--tables", type=int, default=10)
    parser.add_argument("--child-tick", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_tick is not None:
        child_tick(args.child_tick)
        return
    with tempfile.TemporaryDirectory(prefix="etl-bench-landing-") as scratch:
        home = Path(scratch) / "stack"
        os.environ["ETL_ASSETS_HOME"] = str(home)
        info = local_stack.up(home, upload_prefixes=domains.upload_prefixes())
        os.environ["ETL_S3_BUCKET"] = info.bucket
        try:
            report = {"append": bench_append(info, home, Path(scratch), args.append_mb)}
            report["burst"] = bench_burst(info, args.files, args.tables)
        finally:
            local_stack.down(home)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
