"""`make bench` (flights part): a full-size vendor upload through the sensor path, and ticks.

    python -m etl_assets_tests.bench_flights [--rows 5800000] [--objects 10000]

1. A vendor-format file of --rows rows (the public file has about 5.8 million): the sensor
   sees it, its run request is materialized in a child process (peak RSS = the load's own),
   against COPY of the same file from local disk in the same run. Meanwhile a reader counts
   flights_reporting every few ms: it must only ever see the old or the new snapshot.
2. Sensor tick time with --objects objects under the upload prefix (target <= 1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2
from dagster import DagsterInstance, build_sensor_context, materialize

from etl_assets import domains
from etl_assets.defs.flights import tables as t
from etl_assets.defs.flights.assets import flights
from etl_assets.defs.flights.sample_data import iter_flight_lines, write_flights
from etl_assets.defs.flights.sensors import flights_upload_sensor
from etl_assets.local import stack as local_stack
from etl_assets.local.resources import bucket_for as local_s3
from etl_assets.local.resources import warehouse_for as local_warehouse
from etl_assets_tests.helpers import materialize_group
from etl_assets_tests.peak_memory import peak_rss_mb


def child_materialize(run_config_json: str) -> None:
    info = local_stack.read_stack()
    started = time.perf_counter()
    result = materialize(
        [flights],
        resources={"warehouse": local_warehouse(info), "s3": local_s3(info)},
        instance=DagsterInstance.ephemeral(),
        run_config=json.loads(run_config_json),
    )
    seconds = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    print(json.dumps({"ok": result.success, "seconds": seconds, "peak_mb": peak_mb}))


def child_baseline() -> None:
    """The same Dagster run machinery around an asset that does nothing: the RSS floor."""
    from dagster import asset

    @asset
    def nothing() -> None:
        return None

    materialize([nothing], instance=DagsterInstance.ephemeral())
    print(json.dumps({"peak_mb": peak_rss_mb()}))


def baseline_rss_mb() -> int:
    done = subprocess.run(
        [sys.executable, "-m", "etl_assets_tests.bench_flights", "--child-baseline"],
        capture_output=True,
        text=True,
        check=True,
    )
    return round(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


class SnapshotReader(threading.Thread):
    """Counts flights_reporting every few ms; remembers every count and when each was read."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.stop, self.reads = dsn, threading.Event(), []

    def run(self) -> None:
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute("select count(*) from flights.flights_reporting")
                self.reads.append((time.perf_counter(), cur.fetchone()[0]))
                time.sleep(0.005)
        conn.close()


def disk_copy_seconds(dsn: str, path: Path) -> float:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur, open(path, "rb") as handle:
        cur.execute("create temp table disk_copy (like flights.flights)")
        started = time.perf_counter()
        cur.copy_expert(
            "copy disk_copy from stdin with (format csv, header true)", handle, size=1 << 18
        )
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


def bench_upload(info, home: Path, scratch: Path, rows: int) -> dict:
    client, s3 = local_stack.s3_client(info), local_s3(info)
    write_flights(scratch, rows=50)  # reference files and a small first snapshot
    base = scratch / "flights"
    client.upload_file(str(base / "airlines.json"), info.bucket, t.AIRLINES_KEY)
    client.upload_file(str(base / "airports.csv"), info.bucket, t.AIRPORTS_KEY)
    client.upload_file(str(base / "flights sample.csv"), info.bucket, t.UPLOAD_PREFIX + "small.csv")
    warehouse = local_warehouse(info)
    assert materialize_group("flights", warehouse, s3).success
    big = scratch / "flights 2015 full.csv"
    with open(big, "w") as handle:
        for line in iter_flight_lines(7, rows):
            handle.write(line + "\n")
    client.upload_file(str(big), info.bucket, t.UPLOAD_PREFIX + big.name)

    tick = flights_upload_sensor(context(s3, None))
    request = max(tick.run_requests, key=lambda r: r.run_key)  # the big file is the newest
    reader = SnapshotReader(info.dsn())
    reader.start()
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "etl_assets_tests.bench_flights",
            "--child",
            json.dumps(request.run_config),
        ],
        env={**os.environ, "ETL_ASSETS_HOME": str(home), "ETL_S3_BUCKET": info.bucket},
        capture_output=True,
        text=True,
        check=True,
    )
    finished = time.perf_counter()
    time.sleep(0.1)
    reader.stop.set()
    reader.join()
    load = json.loads(done.stdout.strip().splitlines()[-1])
    disk = disk_copy_seconds(info.dsn(), big)
    counts = {count for _, count in reader.reads}
    first_new = next((at for at, count in reader.reads if count == rows), None)
    return {
        "rows": rows,
        "file_mb": round(big.stat().st_size / 1e6),
        "run_ok": load["ok"],
        "run_seconds": round(load["seconds"], 1),
        "rows_per_s": round(rows / load["seconds"]),
        "disk_copy_rows_per_s": round(rows / disk),
        "ratio_to_disk_copy": round(disk / load["seconds"], 3),
        "peak_rss_mb": round(load["peak_mb"]),
        "dagster_noop_run_rss_mb": baseline_rss_mb(),
        "reader_counts_seen": sorted(counts),
        "reader_reads": len(reader.reads),
        "reader_saw_empty_or_partial": bool(counts - {50, rows}),
        "old_snapshot_visible_s": round((first_new or finished) - started, 1),
    }


def bench_tick(info, objects: int) -> dict:
    """Ticks with `objects` old uploads under the prefix (their notifications long consumed)."""
    client, s3 = local_stack.s3_client(info), local_s3(info)
    for i in range(objects):
        client.put_object(Bucket=info.bucket, Key=f"{t.UPLOAD_PREFIX}old/{i:05d}.csv", Body=b"x")
    local_stack.aws_client(info, "sqs").purge_queue(QueueUrl=info.upload_queues["flights"])
    listing_tick = timed(lambda: flights_upload_sensor(context(s3, None)))
    cursor = listing_tick[1].cursor
    idle = min(timed(lambda: flights_upload_sensor(context(s3, cursor)))[0] for _ in range(3))
    client.put_object(Bucket=info.bucket, Key=t.UPLOAD_PREFIX + "new upload.csv", Body=b"x")
    seconds, result = timed(lambda: flights_upload_sensor(context(s3, cursor)))
    return {
        "objects_under_prefix": objects + 3,
        "queue_tick_no_upload_s": round(idle, 3),
        "queue_tick_one_upload_s": round(seconds, 3),
        "queue_tick_requested": [r.run_key.split(":")[0] for r in result.run_requests],
        "listing_tick_s (every 5 min, and without a queue)": round(listing_tick[0], 3),
    }


def context(s3, cursor: str | None):
    """A sensor context with the resources the upload sensor needs (the warehouse: its first
    tick skips versions the ledger has loaded)."""
    warehouse = local_warehouse(local_stack.read_stack())
    return build_sensor_context(cursor=cursor, resources={"s3": s3, "warehouse": warehouse})


def timed(call):
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_800_000)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_baseline:
        child_baseline()
        return
    if args.child:
        child_materialize(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="etl-bench-flights-") as scratch:
        home = Path(scratch) / "stack"
        os.environ["ETL_ASSETS_HOME"] = str(home)
        info = local_stack.up(home, upload_prefixes=domains.upload_prefixes())
        os.environ["ETL_S3_BUCKET"] = info.bucket
        try:
            report = {"upload": bench_upload(info, home, Path(scratch), args.rows)}
            report["sensor_tick"] = bench_tick(info, args.objects)
        finally:
            local_stack.down(home)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
