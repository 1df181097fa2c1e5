"""Flights on the real local stack: atomic snapshot reloads, views, refusals, stale uploads."""

import threading
import time
from pathlib import Path

import psycopg2
import pytest
from dagster import DagsterInstance, materialize

from etl_assets.defs.flights import tables as t
from etl_assets.defs.flights.assets import FLIGHTS_ASSETS, flights
from etl_assets.defs.flights.checks import FLIGHTS_CHECKS
from etl_assets.local.sample_data import iter_flight_lines, write_flights


def run(warehouse, s3, selection=None, config: dict | None = None):
    run_config = {"ops": {"flights__flights": {"config": config}}} if config else None
    return materialize(
        [*FLIGHTS_ASSETS, *FLIGHTS_CHECKS],
        selection=selection,
        resources={"warehouse": warehouse, "s3": s3},
        instance=DagsterInstance.ephemeral(),
        run_config=run_config,
        raise_on_error=False,
    )


def checks(result) -> dict[tuple[str, str], bool]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }


def upload_reference(s3_client, bucket: str, tmp_path: Path) -> None:
    write_flights(tmp_path, rows=5)
    base = tmp_path / "flights"
    s3_client.upload_file(str(base / "airlines.json"), bucket, t.AIRLINES_KEY)
    s3_client.upload_file(str(base / "airports.csv"), bucket, t.AIRPORTS_KEY)


def upload_flights(s3_client, bucket: str, name: str, rows: int, seed: int = 1) -> str:
    key = t.UPLOAD_PREFIX + name
    body = "\n".join(iter_flight_lines(seed, rows)).encode()
    s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    return key


def published(warehouse) -> int:
    return warehouse.query("select count(*) from flights.flights")[0][0]


def failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.to_string()


@pytest.fixture
def loaded(warehouse, s3, s3_client, bucket, tmp_path):
    """Reference data and one published snapshot of 40 flights."""
    upload_reference(s3_client, bucket, tmp_path)
    upload_flights(s3_client, bucket, "first upload.csv", 40)
    result = run(warehouse, s3)
    assert result.success, failure_message(result) if not result.success else ""
    return result


def test_everything_builds_and_every_check_passes(loaded, warehouse):
    assert all(checks(loaded).values()), checks(loaded)
    assert len(checks(loaded)) == 9
    assert published(warehouse) == 40
    assert warehouse.query("select count(*) from flights.flights_reporting") == [(40,)]
    row = warehouse.query(
        "select flight_date, weekday_name, airline_name, origin_city from flights.flights_reporting"
        " order by flight_number limit 1"
    )[0]
    assert str(row[0]) == "2015-01-01" and row[1] == "Thursday" and row[2] and row[3]
    times = warehouse.query("select scheduled_departure from flights.flights")
    assert all(len(value) == 4 and value.isdigit() for (value,) in times)  # 'hhmm' as sent


def test_unknown_codes_are_listed_with_their_flight_counts(
    loaded, warehouse, s3, s3_client, bucket
):
    lines = list(iter_flight_lines(3, 10))
    lines[1] = lines[1].replace(",ATL,", ",10397,").replace(",LAX,", ",10397,")
    lines[2] = lines[2].replace(f",{lines[2].split(',')[4]},", ",ZZ,", 1)
    s3_client.put_object(
        Bucket=bucket, Key=t.UPLOAD_PREFIX + "october.csv", Body="\n".join(lines).encode()
    )
    result = run(warehouse, s3)
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    airports = evaluations["airport_codes_known"]
    assert not airports.passed and airports.severity.value == "WARN"
    assert "10397 (" in airports.description
    assert "ZZ (1 flights)" in evaluations["airline_codes_known"].description


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        (b"", None, "empty file"),
        (b"YEAR,MONTH\n2015,1\n", 1, "header is 'YEAR,MONTH'"),
        (None, 3, "extra data after last expected column"),
        (None, 4, "invalid input syntax for type integer"),
        (None, 5, "missing data for column"),
    ],
)
def test_bad_files_fail_naming_key_line_and_keep_the_snapshot(
    loaded, warehouse, s3, s3_client, bucket, body, line, reason
):
    if body is None:
        lines = list(iter_flight_lines(5, 4))
        if line == 3:
            lines[2] += ",extra"
        elif line == 4:
            fields = lines[3].split(",")
            fields[11] = "late"  # DEPARTURE_DELAY
            lines[3] = ",".join(fields)
        else:
            lines[4] = lines[4][: len(lines[4]) // 2]  # a truncated last line
        body = "\n".join(lines).encode()
    key = t.UPLOAD_PREFIX + "bad upload.csv"
    s3_client.put_object(Bucket=bucket, Key=key, Body=body)

    result = run(warehouse, s3, selection=[flights])

    assert not result.success
    message = failure_message(result)
    where = f"{key}: line {line}" if line else f"{key}: file"
    assert where in message and reason in message, message
    if line == 4:
        assert "column departure_delay" in message
    assert published(warehouse) == 40
    ledger = warehouse.query(
        "select status, error from etl_audit.file_ledger where object_key = %s", (key,)
    )
    assert [status for status, _ in ledger] == ["rejected"] and reason in ledger[0][1]


def test_a_stale_upload_processed_late_never_replaces_a_newer_snapshot(
    loaded, warehouse, s3, s3_client, bucket
):
    old_key = t.UPLOAD_PREFIX + "first upload.csv"
    etag = s3_client.head_object(Bucket=bucket, Key=old_key)["ETag"].strip('"')
    time.sleep(1.1)  # LastModified has one-second resolution
    upload_flights(s3_client, bucket, "second upload.csv", 25, seed=2)
    assert run(warehouse, s3, selection=[flights]).success
    assert published(warehouse) == 25

    late = run(warehouse, s3, selection=[flights], config={"key": old_key, "etag": etag})

    assert late.success
    assert published(warehouse) == 25
    statuses = warehouse.query(
        "select status from etl_audit.file_ledger where object_key = %s order by recorded_at",
        (old_key,),
    )
    assert [s for (s,) in statuses] == ["loaded", "superseded"]


def test_superseded_uploads_are_recorded_with_the_publish(loaded, warehouse, s3, s3_client, bucket):
    skipped = upload_flights(s3_client, bucket, "noon.csv", 12, seed=3)
    newest = upload_flights(s3_client, bucket, "evening.csv", 13, seed=4)
    etag = s3_client.head_object(Bucket=bucket, Key=newest)["ETag"].strip('"')
    result = run(
        warehouse,
        s3,
        selection=[flights],
        config={"key": newest, "etag": etag, "superseded": [skipped]},
    )
    assert result.success
    assert published(warehouse) == 13
    rows = warehouse.query(
        "select object_key, status from etl_audit.file_ledger where load_id = ("
        " select load_id from etl_audit.file_ledger where object_key = %s)",
        (newest,),
    )
    assert sorted(rows) == [(newest, "loaded"), (skipped, "superseded")]


def test_readers_always_see_a_whole_snapshot_during_twenty_reloads(
    loaded, warehouse, s3, s3_client, bucket, stack
):
    sizes = [30 + 7 * i for i in range(20)]
    stop = threading.Event()
    seen: list[int] = []

    def read_counts() -> None:
        conn = psycopg2.connect(stack.dsn(), dbname=warehouse.database)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("select count(*) from flights.flights_reporting")
                seen.append(cur.fetchone()[0])
                time.sleep(0.002)
        conn.close()

    reader = threading.Thread(target=read_counts)
    reader.start()
    try:
        for i, size in enumerate(sizes):
            key = upload_flights(s3_client, bucket, f"upload {i}.csv", size, seed=i)
            etag = s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
            result = run(warehouse, s3, selection=[flights], config={"key": key, "etag": etag})
            assert result.success
    finally:
        stop.set()
        reader.join()
    assert len(seen) > 50
    assert set(seen) <= {40, *sizes}, sorted(set(seen) - {40, *sizes})
    assert published(warehouse) == sizes[-1]


def test_real_sample_loads(warehouse, s3, s3_client, bucket, shared_datasets):
    folder = shared_datasets / "flights"
    s3_client.upload_file(str(folder / "airlines.json"), bucket, t.AIRLINES_KEY)
    s3_client.upload_file(str(folder / "airports.csv"), bucket, t.AIRPORTS_KEY)
    s3_client.upload_file(
        str(folder / "flights example.csv"), bucket, t.UPLOAD_PREFIX + "flights example.csv"
    )
    result = run(warehouse, s3)
    assert result.success and all(checks(result).values())
    counts = warehouse.query(
        "select (select count(*) from flights.flights), (select count(*) from flights.airlines),"
        " (select count(*) from flights.airports)"
    )
    # the file holds 46 data lines (its last line has no newline; `wc -l` shows 46 with header)
    assert counts == [(46, 14, 322)]
