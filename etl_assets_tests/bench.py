"""`make bench`: load speed and memory on the local stack, as ratios to a baseline of the same run.

    python -m etl_assets_tests.bench [--rows N] [--sizes-mb 100,600] [--skip-demo]

1. The limit: raw COPY FROM STDIN of the local CSV file into a plain table (the staging
   table's columns, no constraints), nothing else in the transaction. Every rate below is
   also reported against it ("_vs_limit").
2. CSV: N rows streamed from the local S3 into a staging table (shadow, checks, publish),
   against COPY of the same file from local disk (client-side COPY FROM STDIN of an open file)
   straight into the table, and against the same disk file through the same shadow + publish
   path (which isolates the cost of streaming from S3). Target ratio >= 0.8.
3. Peak memory (max RSS of the loading process) while the CSV grows across --sizes-mb, and
   while newline-delimited JSON does. Target <= 150 MB and flat.
4. Event logs: the same N events as newline-delimited JSON mapped through JSONPaths, against
   the CSV rate of the same rows, by each reader side by side: the pyarrow fast path the
   loader uses, and the line-by-line reader alone. Target >= 0.6.
5. The demo on the real subset (../shared/datasets), stack start included: wall time and the
   share spent in Dagster itself.
Timings are wall-clock on a shared machine: read ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from unittest import mock

import psycopg2
from psycopg2 import sql

from etl_assets.defs.sparkify import tables as t
from etl_assets.defs.sparkify.sample_data import (
    LOG_KEYS,
    iter_day_events,
    jsonpaths_document,
    make_songs,
    make_users,
)
from etl_assets.loading.formats import Csv, JsonPaths
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.loader import LoadTarget, ObjectLoader, finish_publish, prepare_staging
from etl_assets.loading.sources import list_objects
from etl_assets.loading.tables import ensure_tables
from etl_assets.local import stack as local_stack
from etl_assets.resources.warehouse import WarehouseResource
from etl_assets_tests.peak_memory import peak_rss_mb

SHARED = Path(
    os.environ.get("ETL_SHARED_DATASETS")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets"
)
BUCKET = "etl-assets-bench"
TARGET = LoadTarget("sparkify", "staging_events")


def events(rows: int, seed: int = 1):
    rng = random.Random(seed)
    songs, users = make_songs(rng, 500), make_users(rng, 200)
    per_day, day = 20_000, date(2018, 11, 1)
    produced = 0
    while produced < rows:
        batch = min(per_day, rows - produced)
        yield from iter_day_events(rng, day, batch, users, songs)
        produced += batch
        day += timedelta(days=1)


def write_files(folder: Path, rows: int) -> tuple[Path, Path]:
    """The same events as CSV (staging column order) and as newline-delimited JSON."""
    csv_path, json_path = folder / f"events-{rows}.csv", folder / f"events-{rows}.json"
    with open(csv_path, "w", newline="") as csv_file, open(json_path, "w") as json_file:
        writer = csv.writer(csv_file)
        writer.writerow(LOG_KEYS)
        for event in events(rows):
            writer.writerow([event[k] for k in LOG_KEYS])
            json_file.write(json.dumps(event, separators=(",", ":")) + "\n")
    return csv_path, json_path


def write_events_of_size(folder: Path, megabytes: int, suffix: str) -> Path:
    """Events as CSV (suffix "csv") or newline-delimited JSON ("json") up to `megabytes`."""
    path = folder / f"events-{megabytes}mb.{suffix}"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if suffix == "csv":
            writer.writerow(LOG_KEYS)
        for event in events(10**9):
            if suffix == "csv":
                writer.writerow([event[k] for k in LOG_KEYS])
            else:
                handle.write(json.dumps(event, separators=(",", ":")) + "\n")
            if handle.tell() >= megabytes * 1_000_000:
                break
    return path


def upload(client, path: Path) -> SourceObject:
    key = f"bench/{path.name}"
    client.upload_file(str(path), BUCKET, key)
    return next(o for o in list_objects(client, BUCKET, "bench/") if o.key == key)


def reset(warehouse: WarehouseResource) -> None:
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute("drop schema if exists sparkify cascade")
        cur.execute("delete from etl_audit.file_ledger where target_table like 'sparkify.%'")
        conn.commit()
    ensure_tables(warehouse, t.ALL_TABLES)


def time_s3_load(warehouse, client, obj: SourceObject, file_format) -> float:
    reset(warehouse)
    started = time.perf_counter()
    result = ObjectLoader(warehouse, client).load(TARGET, [obj], file_format)
    elapsed = time.perf_counter() - started
    assert result.status == "published", result.status
    return elapsed


def time_disk_copy(warehouse, path: Path) -> float:
    reset(warehouse)
    return _time_copy_from_file(warehouse, "sparkify.staging_events", path)


def time_raw_copy_limit(warehouse, path: Path) -> float:
    """COPY of the local file into a plain table of the same columns, nothing else timed."""
    reset(warehouse)
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute("create table sparkify.bench_plain (like sparkify.staging_events)")
        conn.commit()
    return _time_copy_from_file(warehouse, "sparkify.bench_plain", path)


def _time_copy_from_file(warehouse, table: str, path: Path) -> float:
    with warehouse.get_connection() as conn, conn.cursor() as cur, open(path, "rb") as handle:
        started = time.perf_counter()
        cur.copy_expert(f"copy {table} from stdin with (format csv, header true)", handle, 1 << 18)
        conn.commit()
        return time.perf_counter() - started


def time_disk_through_publish(warehouse, path: Path) -> float:
    """The same staging + publish path as a load, fed from local disk instead of S3."""
    reset(warehouse)
    started = time.perf_counter()
    with warehouse.get_connection() as conn, conn.cursor() as cur, open(path, "rb") as handle:
        staging = prepare_staging(cur, TARGET, "postgres")
        cur.copy_expert(
            sql.SQL("copy {} from stdin with (format csv, header true)").format(staging.fill),
            handle,
            size=1 << 18,
        )
        finish_publish(cur, TARGET, staging, cur.rowcount)
        conn.commit()
    return time.perf_counter() - started


def time_json_line_by_line(warehouse, client, obj: SourceObject, jsonpaths) -> float:
    """The same load with the fast path turned off: every line read by `JsonRowReader`."""
    from etl_assets.loading.json_arrow import ArrowRows  # not in the memory child's imports

    with mock.patch.object(ArrowRows, "for_columns", return_value=None):
        return time_s3_load(warehouse, client, obj, jsonpaths)


def child_load(key: str) -> None:
    """Runs in a subprocess so its peak RSS is the load's own."""
    info = local_stack.read_stack()
    warehouse = _warehouse(info)
    client = local_stack.s3_client(info)
    obj = next(o for o in list_objects(client, BUCKET, "bench/") if o.key == key)
    file_format = Csv()
    if key.endswith(".json"):
        file_format = JsonPaths.parse(t.LOG_JSONPATHS_KEY, jsonpaths_document())
    seconds = time_s3_load(warehouse, client, obj, file_format)
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "bytes": obj.size}))


def _warehouse(info) -> WarehouseResource:
    return WarehouseResource(
        host=info.pg_host, port=info.pg_port, database=info.pg_database, user=info.pg_user
    )


def best_of(repeats: int, measure) -> float:
    """The fastest of several runs: the least disturbed by the machine's other work."""
    return min(measure() for _ in range(repeats))


def bench_csv_and_json(warehouse, client, folder: Path, rows: int, repeats: int) -> dict:
    csv_path, json_path = write_files(folder, rows)
    csv_obj, json_obj = upload(client, csv_path), upload(client, json_path)
    client.put_object(Bucket=BUCKET, Key=t.LOG_JSONPATHS_KEY, Body=jsonpaths_document().encode())
    jsonpaths = JsonPaths.parse(t.LOG_JSONPATHS_KEY, jsonpaths_document())
    seconds = {
        "raw_copy_limit": best_of(repeats, lambda: time_raw_copy_limit(warehouse, csv_path)),
        "disk_copy": best_of(repeats, lambda: time_disk_copy(warehouse, csv_path)),
        "disk_through_publish": best_of(
            repeats, lambda: time_disk_through_publish(warehouse, csv_path)
        ),
        "s3_csv": best_of(repeats, lambda: time_s3_load(warehouse, client, csv_obj, Csv())),
        "s3_json": best_of(repeats, lambda: time_s3_load(warehouse, client, json_obj, jsonpaths)),
        "s3_json_line_by_line": best_of(
            repeats, lambda: time_json_line_by_line(warehouse, client, json_obj, jsonpaths)
        ),
    }
    limit = seconds["raw_copy_limit"]
    return {
        "rows": rows,
        "best_of": repeats,
        "csv_mb": round(csv_path.stat().st_size / 1e6, 1),
        "json_mb": round(json_path.stat().st_size / 1e6, 1),
        **{f"{name}_rows_per_s": round(rows / elapsed) for name, elapsed in seconds.items()},
        **{f"{name}_vs_limit": round(limit / elapsed, 3) for name, elapsed in seconds.items()},
        "csv_s3_vs_disk_ratio": round(seconds["disk_copy"] / seconds["s3_csv"], 3),
        "csv_s3_vs_disk_same_publish_ratio": round(
            seconds["disk_through_publish"] / seconds["s3_csv"], 3
        ),
        "json_vs_csv_ratio": round(seconds["s3_csv"] / seconds["s3_json"], 3),
        "json_line_by_line_vs_csv_ratio": round(
            seconds["s3_csv"] / seconds["s3_json_line_by_line"], 3
        ),
    }


def bench_memory(client, folder: Path, sizes_mb: list[int], home: Path) -> list[dict]:
    results = []
    for megabytes, suffix in [(mb, suffix) for suffix in ("csv", "json") for mb in sizes_mb]:
        path = write_events_of_size(folder, megabytes, suffix)
        obj = upload(client, path)
        path.unlink()
        done = subprocess.run(
            [sys.executable, "-m", "etl_assets_tests.bench", "--child-load", obj.key],
            env={**os.environ, "ETL_ASSETS_HOME": str(home)},
            capture_output=True,
            text=True,
            check=True,
        )
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(
            {
                "format": suffix,
                "file_mb": round(obj.size / 1e6),
                "peak_rss_mb": round(measured["peak_mb"]),
                "mb_per_s": round(obj.size / 1e6 / measured["seconds"], 1),
            }
        )
        client.delete_object(Bucket=BUCKET, Key=obj.key)
    return results


def bench_demo() -> dict:
    if not SHARED.is_dir():
        return {"skipped": "../shared/datasets not found"}
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "ETL_ASSETS_HOME": home}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "etl_assets.cli", "demo", "--data", str(SHARED), "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        local_stack.down(Path(home))
    report = json.loads(done.stdout)
    return {
        "exit_status": done.returncode,
        "wall_s_with_process_start": round(wall, 2),
        "demo_elapsed_s_incl_stack_start": report["elapsed_s"],
        "dagster_overhead_s": report["dagster_overhead_s"],
        "dagster_share": round(report["dagster_overhead_s"] / report["elapsed_s"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sizes-mb", default="100,600")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child-load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_load:
        child_load(args.child_load)
        return
    with tempfile.TemporaryDirectory(prefix="etl-bench-") as scratch:
        home = Path(scratch) / "stack"
        os.environ["ETL_ASSETS_HOME"] = str(home)
        info = local_stack.up(home)
        try:
            client = local_stack.s3_client(info)
            client.create_bucket(Bucket=BUCKET)
            warehouse = _warehouse(info)
            ensure_tables(warehouse, t.ALL_TABLES)
            report = {
                "load": bench_csv_and_json(
                    warehouse, client, Path(scratch), args.rows, args.repeats
                )
            }
            sizes = [int(s) for s in args.sizes_mb.split(",") if s]
            report["memory"] = bench_memory(client, Path(scratch), sizes, home)
        finally:
            local_stack.down(home)
    if not args.skip_demo:
        report["demo_real_subset"] = bench_demo()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    psycopg2.extensions.register_type(psycopg2.extensions.UNICODE)
    main()
