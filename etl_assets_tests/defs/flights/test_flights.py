"""Flights on the real local stack: atomic snapshot reloads, views, refusals, stale uploads."""

import threading
import time
from pathlib import Path

import psycopg2
import pytest

from etl_assets.defs.flights import tables as t
from etl_assets.defs.flights.assets import flights
from etl_assets.defs.flights.sample_data import iter_flight_lines, write_flights
from etl_assets_tests.helpers import check_results as checks
from etl_assets_tests.helpers import failure_message, materialize_group


def run(warehouse, s3, selection=None, config: dict | None = None):
    run_config = {"ops": {"flights__flights": {"config": config}}} if config else None
    return materialize_group("flights", warehouse, s3, selection=selection, run_config=run_config)


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


@pytest.fixture
def loaded(warehouse, s3, s3_client, bucket, tmp_path):
    """Reference data and one published snapshot of 40 flights."""
    upload_reference(s3_client, bucket, tmp_path)
    key = upload_flights(s3_client, bucket, "first upload.csv", 40)
    result = run(warehouse, s3)
    assert result.success, failure_message(result) if not result.success else ""
    # LastModified has one-second resolution: a test's next upload must land in a later
    # second to be the newer one (same-second uploads are issue 9's)
    landed = s3_client.head_object(Bucket=bucket, Key=key)["LastModified"].timestamp()
    time.sleep(max(0.0, landed + 1.05 - time.time()))
    return result


def test_everything_builds_and_every_check_passes(loaded, warehouse):
    assert all(checks(loaded).values()), checks(loaded)
    assert len(checks(loaded)) == 10
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
    airports = evaluations["references_airports"]
    assert not airports.passed and airports.severity.value == "WARN"
    assert "origin_airport=10397 (1 rows)" in airports.description
    assert "airline=ZZ (1 rows)" in evaluations["references_airlines"].description


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
    # the run page shows one sentence, not a driver error's stack (issue 12 item 3)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.event_specific_data.error
    assert error.cls_name == "Failure"
    first_line = error.message.splitlines()[0]
    assert first_line.startswith(f"dagster._core.definitions.events.Failure: {where}")
    assert "Nothing was published: flights.flights keeps the rows it had" in error.message
    facts = failure.event_specific_data.user_failure_data.metadata
    assert facts["key"].value == key and facts["table"].value == "flights.flights"
    assert reason in facts["reason"].value and (facts["line"].value == (line or ""))
    assert result.get_asset_materialization_events() == []  # nor the views: nothing changed
    # the table's checks say what happened instead of reading "execution failed"
    evaluations = {
        e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == flights.key
    }
    assert {"rows_match_source", "upload_order_known"} <= set(evaluations)
    kept = evaluations["rows_match_source"]
    assert kept.passed and f"{key} refused, nothing published; the 40 published rows stay" in (
        kept.description
    )
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


class Reader(threading.Thread):
    """Polls the published flights in one way until stopped; every value it read is kept.
    An error (a deadlock, a cancelled statement) is raised in the thread: pytest is set to fail
    the test on any exception in a thread."""

    def __init__(self, dsn: str, database: str, name: str, stop: threading.Event) -> None:
        super().__init__(name=name)
        self.dsn, self.database, self.stop, self.seen = dsn, database, stop, []

    def run(self) -> None:
        conn = psycopg2.connect(self.dsn, dbname=self.database)
        try:
            getattr(self, self.name)(conn)
        finally:
            conn.close()

    def _poll(self, conn, statement: str) -> None:
        conn.autocommit = True
        with conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute(statement)
                self.seen.append(cur.fetchone())
                time.sleep(0.002)

    def reporting(self, conn) -> None:
        self._poll(conn, "select count(*) from flights.flights_reporting")

    def delayed(self, conn) -> None:
        self._poll(
            conn,
            "select (select count(*) from flights.flights where cancelled = 0"
            " and arrival_delay > 0), (select cast(coalesce(sum(flights), 0) as bigint)"
            " from flights.delayed_flights_agg)",
        )

    def table_and_view(self, conn) -> None:
        self._poll(
            conn,
            "select (select count(*) from flights.flights),"
            " (select count(*) from flights.flights_reporting)",
        )

    def users_view(self, conn) -> None:
        self._poll(conn, "select count(*) from public.my_flights")

    def prepared(self, conn) -> None:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("prepare counted as select count(*) from flights.flights_reporting")
            while not self.stop.is_set():
                cur.execute("execute counted")
                self.seen.append(cur.fetchone())
                time.sleep(0.002)

    def repeatable_read(self, conn) -> None:
        """Long read transactions: every read inside one sees the snapshot it began with."""
        conn.set_session(isolation_level="REPEATABLE READ")
        with conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute("select count(*) from flights.flights_reporting")
                first = cur.fetchone()
                for _ in range(20):
                    time.sleep(0.01)
                    cur.execute("select count(*) from flights.flights_reporting")
                    assert cur.fetchone() == first, "a snapshot changed inside a transaction"
                self.seen.append(first)
                conn.commit()


def test_readers_of_tables_and_views_see_whole_snapshots_during_fifty_reloads(
    loaded, warehouse, s3, s3_client, bucket, stack
):
    """Autocommit polling of each view, a table and its view in one statement, a prepared
    statement, long REPEATABLE READ transactions and a user's own view on the table: never an
    error (deadlock), never an empty or partial snapshot."""
    warehouse.execute("create view public.my_flights as select * from flights.flights")
    sizes = [30 + 7 * i for i in range(50)]
    allowed = {40, *sizes}
    stop = threading.Event()
    names = ["reporting", "delayed", "table_and_view", "users_view", "prepared", "repeatable_read"]
    readers = [Reader(stack.dsn(), warehouse.database, name, stop) for name in names]
    for reader in readers:
        reader.start()
    try:
        for i, size in enumerate(sizes):
            key = upload_flights(s3_client, bucket, f"upload {i}.csv", size, seed=i)
            etag = s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
            result = run(warehouse, s3, selection=[flights], config={"key": key, "etag": etag})
            assert result.success, failure_message(result)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert all(reader.is_alive() is False for reader in readers)
    for reader in readers:
        assert len(reader.seen) > 10, reader.name
    counts = {name: {row[0] for row in r.seen} for name, r in zip(names, readers, strict=True)}
    for name in ["reporting", "users_view", "prepared", "repeatable_read"]:
        assert counts[name] <= allowed, (name, sorted(counts[name] - allowed))
        assert len(counts[name]) > 2, name  # it did see reloads happen
    assert all(a == b for a, b in readers[2].seen), "the table and its view disagreed"
    assert counts["table_and_view"] <= allowed
    assert all(a == b for a, b in readers[1].seen), "delayed_flights_agg disagreed with flights"
    assert published(warehouse) == sizes[-1]


def test_a_long_reader_neither_blocks_a_reload_nor_queues_other_readers(
    loaded, warehouse, s3, s3_client, bucket, stack
):
    """A report transaction holding the table open: the reload publishes meanwhile, a new
    reader sees the new rows at once, and the long reader keeps its snapshot."""
    long_reader = psycopg2.connect(stack.dsn(), dbname=warehouse.database)
    long_reader.set_session(isolation_level="REPEATABLE READ")
    reload = None
    try:
        with long_reader.cursor() as cur:
            cur.execute("select count(*) from flights.flights_reporting")
            assert cur.fetchone() == (40,)
            key = upload_flights(s3_client, bucket, "while reading.csv", 25, seed=9)
            etag = s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
            results = []
            reload = threading.Thread(
                target=lambda: results.append(
                    run(warehouse, s3, selection=[flights], config={"key": key, "etag": etag})
                )
            )
            reload.start()
            reload.join(timeout=60)
            assert not reload.is_alive(), "the reload waited for the long reader"
            assert results[0].success, failure_message(results[0])
            assert published(warehouse) == 25  # a new reader: not queued, the new snapshot
            cur.execute("select count(*) from flights.flights_reporting")
            assert cur.fetchone() == (40,)  # the long reader: still its own snapshot
    finally:
        long_reader.close()
        if reload is not None:
            reload.join()


def test_a_view_is_replaced_only_when_its_sql_changed(loaded, warehouse, s3):
    from etl_assets.defs.flights.assets import flights_reporting

    again = run(warehouse, s3, selection=[flights_reporting])
    (materialization,) = again.get_asset_materialization_events()
    definition = materialization.materialization.metadata["definition"].value
    assert definition == "unchanged"  # no lock taken on a view readers are using
    warehouse.execute("comment on view flights.flights_reporting is null")
    replaced = run(warehouse, s3, selection=[flights_reporting])
    (materialization,) = replaced.get_asset_materialization_events()
    assert materialization.materialization.metadata["definition"].value == "replaced"


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


def test_a_reupload_of_an_earlier_snapshot_is_published_again(
    loaded, warehouse, s3, s3_client, bucket
):
    """Issue 9 item 3: uploads A, B, then A again (same content, same ETag) through the
    sensor: A is published at the end."""
    from dagster import DagsterInstance

    from etl_assets_tests.helpers import sensor_tick_and_runs

    instance = DagsterInstance.ephemeral()
    _, cursor = sensor_tick_and_runs("flights_upload_sensor", warehouse, s3, instance)
    for rows in (25, 40):  # B (25 flights), then A's content again (40 flights, seed 1)
        time.sleep(2.1)  # a re-upload is told apart by landing at least 2 s later
        upload_flights(s3_client, bucket, "first upload.csv", rows)
        results, cursor = sensor_tick_and_runs(
            "flights_upload_sensor", warehouse, s3, instance, cursor
        )
        assert [r.success for r in results] == [True]
        assert published(warehouse) == rows
        # the publish refreshed the views: reported as theirs too, after the table's, so the
        # graph shows them current, not "unsynced" (issue 12 item 5)
        order = [e.asset_key.path[-1] for e in results[0].get_asset_materialization_events()]
        assert order == ["flights", "flights_reporting", "delayed_flights_agg"]
        # and the views' checks ran in the same run, on what it published
        views_checked = {
            e.check_name: e
            for e in results[0].get_asset_check_evaluations()
            if e.asset_key.path[-1] != "flights"
        }
        assert sorted(views_checked) == [
            "delayed_agg_matches_flights",
            "reporting_has_every_flight_once",
        ]
        assert all(e.passed for e in views_checked.values())
        assert views_checked["reporting_has_every_flight_once"].metadata["reported"].value == rows


def test_two_uploads_in_one_second_are_named_in_a_warning(loaded, warehouse, s3, s3_client, bucket):
    from dagster import DagsterInstance

    from etl_assets_tests.helpers import sensor_tick_and_runs

    instance = DagsterInstance.ephemeral()
    _, cursor = sensor_tick_and_runs("flights_upload_sensor", warehouse, s3, instance)
    time.sleep(1.02 - time.time() % 1)  # at the start of a second: both land inside it
    first = upload_flights(s3_client, bucket, "vendor a.csv", 10)
    second = upload_flights(s3_client, bucket, "vendor b.csv", 12)
    landed = {s3_client.head_object(Bucket=bucket, Key=k)["LastModified"] for k in (first, second)}
    assert len(landed) == 1
    (result,) = sensor_tick_and_runs("flights_upload_sensor", warehouse, s3, instance, cursor)[0]
    order = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "upload_order_known"
    )
    assert not order.passed and order.severity.value == "WARN"
    assert f"{second} and {first} landed in the same instant" in order.description


def test_an_uploads_run_checks_the_refreshed_views_after_the_publish() -> None:
    """Issue 12 item 5: the views' checks are in the sensor's job, each after the table's load
    (in a multiprocess run they would otherwise race it and read the previous snapshot)."""
    from etl_assets.definitions import defs

    graph = defs.resolve_job_def("flights_uploads").graph
    upstream = {
        node.name: {
            out.node_name
            for out in graph.dependency_structure.all_upstream_outputs_from_node(node.name)
        }
        for node in graph.nodes
    }
    view_checks = {
        name: deps
        for name, deps in upstream.items()
        if name.split("__")[1].startswith(("flights_reporting_", "delayed_flights_agg_"))
    }
    assert set(view_checks) == {
        "flights__flights_reporting_reporting_has_every_flight_once",
        "flights__delayed_flights_agg_delayed_agg_matches_flights",
    }
    assert all(deps == {"flights__flights"} for deps in view_checks.values())


def test_a_good_upload_then_a_bad_one_between_two_ticks_publishes_the_good_one(
    loaded, warehouse, s3, s3_client, bucket
) -> None:
    """Policy `newest`: only the newest upload of a tick is tried. When it is refused, the
    good one before it (which it would have superseded) is published instead, and every upload
    has its verdict; it used to be neither published nor recorded."""
    from dagster import DagsterInstance

    from etl_assets_tests.helpers import sensor_tick_and_runs

    instance = DagsterInstance.ephemeral()
    _, cursor = sensor_tick_and_runs("flights_upload_sensor", warehouse, s3, instance)
    good = upload_flights(s3_client, bucket, "good.csv", 17, seed=5)
    time.sleep(1.1)  # lands a second later: the newest
    bad = t.UPLOAD_PREFIX + "bad.csv"
    s3_client.put_object(Bucket=bucket, Key=bad, Body=b"not,the,header\n1,2,3\n")
    (result,), _ = sensor_tick_and_runs("flights_upload_sensor", warehouse, s3, instance, cursor)
    assert not result.success  # it reports the refusal
    assert published(warehouse) == 17
    statuses = dict(
        warehouse.query(
            "select object_key, status from etl_audit.file_ledger where object_key in %s",
            ((good, bad),),
        )
    )
    assert statuses == {good: "loaded", bad: "rejected"}


def test_a_reupload_first_seen_by_a_new_instance_is_published(
    loaded, warehouse, s3, s3_client, bucket
) -> None:
    """A, B, then A again under one key, the third upload first seen by a sensor with no
    cursor (a new Dagster instance): it is newer than the published B, so it is applied,
    whatever the sensor remembers (the ledger had A's version as loaded and skipped it)."""
    from dagster import DagsterInstance

    from etl_assets_tests.helpers import sensor_tick_and_runs

    sensor = "flights_upload_sensor"
    _, cursor = sensor_tick_and_runs(sensor, warehouse, s3, DagsterInstance.ephemeral())
    upload_flights(s3_client, bucket, "first upload.csv", 25, seed=2)  # B
    sensor_tick_and_runs(sensor, warehouse, s3, DagsterInstance.ephemeral(), cursor)
    assert published(warehouse) == 25
    time.sleep(2.1)
    upload_flights(s3_client, bucket, "first upload.csv", 40)  # A's content again
    results, _ = sensor_tick_and_runs(
        "flights_upload_sensor", warehouse, s3, DagsterInstance.ephemeral(), None
    )
    assert [r.success for r in results] == [True]
    assert published(warehouse) == 40
