"""The loader against the real local stack: streamed COPY, atomic publish, ledger, refusals."""

import json
import threading
import time

import psycopg2
import pytest

from etl_assets.defs.sparkify import tables as t
from etl_assets.defs.sparkify.sample_data import LOG_KEYS, jsonpaths_document
from etl_assets.lib.checks import combine, no_key_drift, rows_match_source
from etl_assets.loading.formats import Csv, JsonAuto, JsonPaths
from etl_assets.loading.loader import LoadTarget, ObjectLoader
from etl_assets.loading.postgres_copy import LoadError
from etl_assets.loading.publish import Append
from etl_assets.loading.sources import list_objects
from etl_assets.loading.tables import ensure_tables

EVENTS = LoadTarget("sparkify", "staging_events")
JSONPATHS = JsonPaths.parse("sparkify/log_json_path.json", jsonpaths_document())


def event(i: int, **overrides) -> dict:
    base = dict.fromkeys(LOG_KEYS)
    base.update(
        page="NextSong",
        ts=1541030400000 + i,
        userId=str(i % 7),
        sessionId=i,
        itemInSession=i,
        length=200.5 + i / 1000,
        song=f"Song {i}",
        artist="A",
    )
    base.update(overrides)
    return base


def put_lines(s3_client, bucket: str, key: str, lines: list[str]) -> None:
    s3_client.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())


def put_events(s3_client, bucket: str, key: str, count: int, start: int = 0) -> None:
    put_lines(s3_client, bucket, key, [json.dumps(event(i)) for i in range(start, start + count)])


@pytest.fixture
def loader(warehouse, s3_client):
    ensure_tables(warehouse, t.ALL_TABLES)
    return ObjectLoader(warehouse, s3_client, run_id="test-run")


def load_events(loader, s3_client, bucket):
    objects = list_objects(s3_client, bucket, "logs/")
    return loader.load(EVENTS, objects, JSONPATHS, combine(rows_match_source(), no_key_drift()))


def count(warehouse, table: str = "sparkify.staging_events") -> int:
    return warehouse.query(f"select count(*) from {table}")[0][0]


def ledger(warehouse) -> list[tuple]:
    return warehouse.query(
        "select object_key, status, records, rows_loaded, error from etl_audit.file_ledger"
        " order by recorded_at, object_key"
    )


def test_jsonpaths_map_by_position_with_exact_floats(loader, warehouse, s3_client, bucket):
    put_lines(s3_client, bucket, "logs/a.json", [json.dumps(event(1, length=246.30812))])
    result = load_events(loader, s3_client, bucket)
    assert result.status == "published" and result.rows_published == 1
    row = warehouse.query(
        "select artist, length, ts, user_id, session_id from sparkify.staging_events"
    )
    assert row == [("A", 246.30812, 1541030400001, "1", 1)]


def test_auto_maps_by_key_name_and_ignores_order(loader, warehouse, s3_client, bucket):
    song = {
        "title": "T",
        "song_id": "S1",
        "duration": 152.92036,
        "year": 0,
        "num_songs": 1,
        "artist_id": "A1",
        "artist_latitude": None,
        "artist_longitude": None,
        "artist_location": "",
        "artist_name": "Line Renaud",
    }
    s3_client.put_object(Bucket=bucket, Key="songs/s.json", Body=json.dumps(song, indent=2))
    objects = list_objects(s3_client, bucket, "songs/")
    result = loader.load(
        LoadTarget("sparkify", "staging_songs"),
        objects,
        JsonAuto(),
        combine(rows_match_source(), no_key_drift()),
    )
    assert result.status == "published"
    assert warehouse.query(
        "select song_id, title, duration, artist_location, artist_latitude"
        " from sparkify.staging_songs"
    ) == [("S1", "T", 152.92036, "", None)]


def test_malformed_line_fails_naming_key_line_and_reason_and_keeps_published_rows(
    loader, warehouse, s3_client, bucket
):
    put_events(s3_client, bucket, "logs/a.json", 5)
    assert load_events(loader, s3_client, bucket).status == "published"
    lines = [json.dumps(event(i)) for i in range(4)]
    lines.insert(2, '{"artist": "broken", "ts": }')
    put_lines(s3_client, bucket, "logs/b.json", lines)

    with pytest.raises(LoadError) as failure:
        load_events(loader, s3_client, bucket)

    assert failure.value.key == "logs/b.json"
    assert failure.value.line == 3
    assert failure.value.reason.startswith("invalid JSON: unexpected character")
    assert "logs/b.json: line 3" in str(failure.value)
    assert count(warehouse) == 5  # the previous load stays published
    rejected = [row for row in ledger(warehouse) if row[1] == "rejected"]
    assert [(key, status) for key, status, *_ in rejected] == [("logs/b.json", "rejected")]
    assert "line 3" in rejected[0][4]


def test_a_value_the_column_refuses_names_line_and_column(loader, warehouse, s3_client, bucket):
    lines = [json.dumps(event(i)) for i in range(3)]
    lines[1] = json.dumps(event(1, sessionId="not-a-number"))
    put_lines(s3_client, bucket, "logs/a.json", lines)
    with pytest.raises(LoadError) as failure:
        load_events(loader, s3_client, bucket)
    assert (failure.value.line, failure.value.column) == (2, "session_id")
    # the reason, never the value: the file log is served to roles that may not read the data
    assert "invalid input syntax for type integer" in failure.value.reason
    assert "not-a-number" not in str(failure.value)
    assert count(warehouse) == 0


def test_too_long_text_is_refused_not_truncated(loader, warehouse, s3_client, bucket):
    put_lines(s3_client, bucket, "logs/a.json", [json.dumps(event(1, song="x" * 300))])
    with pytest.raises(LoadError) as failure:
        load_events(loader, s3_client, bucket)
    assert (failure.value.line, failure.value.column) == (1, "song")


def test_same_files_twice_add_nothing_and_a_new_version_is_loaded(
    loader, warehouse, s3_client, bucket
):
    put_events(s3_client, bucket, "logs/a.json", 10)
    put_events(s3_client, bucket, "logs/b.json", 5, start=100)
    first = load_events(loader, s3_client, bucket)
    second = load_events(loader, s3_client, bucket)
    assert (first.status, second.status) == ("published", "up_to_date")
    assert all(o.passed for o in second.checks)  # checks re-run on what is published
    assert count(warehouse) == 15
    assert len(ledger(warehouse)) == 2

    put_events(s3_client, bucket, "logs/b.json", 7, start=100)  # same key, new content
    third = load_events(loader, s3_client, bucket)
    assert third.status == "published"
    assert count(warehouse) == 17
    loaded_b = [row for row in ledger(warehouse) if row[0] == "logs/b.json"]
    assert [row[2] for row in loaded_b] == [5, 7]


def test_key_drift_blocks_the_publish_and_names_file_and_keys(loader, warehouse, s3_client, bucket):
    drifted = event(2)
    del drifted["song"]
    drifted["favourite"] = True
    put_lines(s3_client, bucket, "logs/a.json", [json.dumps(event(1)), json.dumps(drifted)])
    result = load_events(loader, s3_client, bucket)
    assert result.status == "rejected"
    drift = next(o for o in result.checks if o.name == "no_source_key_drift")
    assert not drift.passed
    assert "logs/a.json: missing ['song'], unknown ['favourite']" in drift.detail
    assert count(warehouse) == 0
    assert [row[1] for row in ledger(warehouse)] == ["rejected"]


def test_connection_killed_mid_load_leaves_nothing_and_a_rerun_loads_once(
    loader, warehouse, s3_client, bucket, stack
):
    put_events(s3_client, bucket, "logs/a.json", 3)
    assert load_events(loader, s3_client, bucket).status == "published"
    put_events(s3_client, bucket, "logs/big.json", 150_000, start=1000)
    killed = threading.Event()

    def kill_the_copy() -> None:
        admin = psycopg2.connect(stack.dsn())
        admin.autocommit = True
        deadline = time.monotonic() + 60
        with admin.cursor() as cur:
            while time.monotonic() < deadline and not killed.is_set():
                cur.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity"
                    " where datname = %s and query ilike 'copy%%' and state = 'active'",
                    (warehouse.database,),
                )
                killed.set() if cur.fetchall() else time.sleep(0.005)
        admin.close()

    killer = threading.Thread(target=kill_the_copy)
    killer.start()
    with pytest.raises(psycopg2.OperationalError):
        load_events(loader, s3_client, bucket)
    killer.join()
    assert killed.is_set()
    assert count(warehouse) == 3  # the earlier publish, untouched
    assert [row[0] for row in ledger(warehouse)] == ["logs/a.json"]

    assert load_events(loader, s3_client, bucket).status == "published"
    assert count(warehouse) == 150_003
    assert warehouse.query(
        "select count(*) from (select ts from sparkify.staging_events group by ts"
        " having count(*) > 1) d"
    ) == [(0,)]


def test_csv_streams_with_empty_fields_as_null(warehouse, s3_client, bucket):
    ensure_tables(warehouse, [])  # the ledger
    warehouse.execute("create table public.pairs (code varchar(3), delay integer)")
    s3_client.put_object(Bucket=bucket, Key="c/p.csv", Body=b"code,delay\nAA,5\nBB,\n")
    result = ObjectLoader(warehouse, s3_client).load(
        LoadTarget("public", "pairs"),
        list_objects(s3_client, bucket, "c/"),
        Csv(),
        rows_match_source(),
    )
    assert result.rows_published == 2
    assert warehouse.query("select * from public.pairs order by code") == [("AA", 5), ("BB", None)]


def test_csv_error_names_line_and_column(warehouse, s3_client, bucket):
    ensure_tables(warehouse, [])  # the ledger
    warehouse.execute("create table public.pairs (code varchar(3), delay integer)")
    s3_client.put_object(Bucket=bucket, Key="c/p.csv", Body=b"code,delay\nAA,5\nBB,late\n")
    with pytest.raises(LoadError) as failure:
        ObjectLoader(warehouse, s3_client).load(
            LoadTarget("public", "pairs"), list_objects(s3_client, bucket, "c/"), Csv()
        )
    assert (failure.value.key, failure.value.line, failure.value.column) == ("c/p.csv", 3, "delay")


class SemicolonsToCommas:
    """A converter for PostgreSQL too: a `;`-separated export rewritten as CSV."""

    def applies_to(self, dialect: str) -> bool:
        return True

    def convert(self, s3_client, source):
        from etl_assets.lib.converters import put_converted

        body = s3_client.get_object(Bucket=source.bucket, Key=source.key)["Body"].read()
        return put_converted(s3_client, source, body.replace(b";", b","))


def test_a_converted_file_loads_and_the_ledger_and_errors_name_the_original(
    warehouse, s3_client, bucket
):
    ensure_tables(warehouse, [])  # the ledger
    warehouse.execute("create table public.pairs (code varchar(3), delay integer)")
    s3_client.put_object(Bucket=bucket, Key="c/p.txt", Body=b"code;delay\nAA;5\nBB;7\n")
    (source,) = list_objects(s3_client, bucket, "c/")
    loader = ObjectLoader(warehouse, s3_client)
    target = LoadTarget("public", "pairs")
    result = loader.load(
        target, [source], Csv(), rows_match_source(), converter=SemicolonsToCommas()
    )
    assert result.status == "published" and result.rows_published == 2
    assert ledger(warehouse)[-1][:2] == ("c/p.txt", "loaded")
    assert warehouse.query("select etag from etl_audit.file_ledger") == [(source.etag,)]

    s3_client.put_object(Bucket=bucket, Key="c/p.txt", Body=b"code;delay\nAA;5\nBB;late\n")
    (changed,) = list_objects(s3_client, bucket, "c/")
    with pytest.raises(LoadError) as failure:
        loader.load(target, [changed], Csv(), converter=SemicolonsToCommas())
    assert (failure.value.key, failure.value.line, failure.value.column) == ("c/p.txt", 3, "delay")
    assert "(in _converted/c/p.txt)" in str(failure.value)
    assert ledger(warehouse)[-1][:2] == ("c/p.txt", "rejected")


def test_a_quoted_line_break_is_one_record_and_one_row(warehouse, s3_client, bucket):
    """Records are counted outside quoted values: a value holding a line break is one record
    (it was counted as two lines, and the load refused)."""
    ensure_tables(warehouse, [])  # the ledger
    warehouse.execute("create table public.notes (id integer, note varchar(20))")
    body = b'id,note\n1,"two\nlines"\n2,"a ""quoted""\nword"\n3,x\n'
    s3_client.put_object(Bucket=bucket, Key="n/a.csv", Body=body)
    result = ObjectLoader(warehouse, s3_client).load(
        LoadTarget("public", "notes", Append()),
        list_objects(s3_client, bucket, "n/"),
        Csv(),
        rows_match_source(),
    )
    assert result.status == "published"
    (outcome,) = result.checks
    assert outcome.passed and outcome.metadata == {"rows": 3, "records": 3}
    assert warehouse.query("select note from public.notes where id = 2") == [('a "quoted"\nword',)]


def test_rows_match_source_fails_when_rows_written_differ_from_records() -> None:
    """The check compares the records counted on the way in with the rows COPY reported."""
    from psycopg2 import sql

    from etl_assets.loading.ledger import SourceObject
    from etl_assets.loading.loader import WrittenRows
    from etl_assets.loading.postgres_copy import LoadedFile

    source = SourceObject("b", "n/a.csv", "e", 10)
    (outcome,) = rows_match_source()(
        None, WrittenRows(sql.Identifier("t"), 2), [LoadedFile(source, 3, 2)]
    )
    assert not outcome.passed and outcome.metadata == {"rows": 2, "records": 3}
    assert "n/a.csv: 3 records, 2 rows" in outcome.detail


def test_a_long_load_reports_bytes_and_records_as_it_streams(
    warehouse, s3_client, bucket, monkeypatch
) -> None:
    """Issue 12 item 2: a large file told its progress (the run's log), each tenth."""
    monkeypatch.setattr("etl_assets.loading.progress.MIN_BYTES", 0)  # this file is small
    monkeypatch.setattr("etl_assets.loading.postgres_copy.JSON_CHUNK_BYTES", 1 << 18)  # < 1/10
    ensure_tables(warehouse, t.ALL_TABLES)
    lines = [json.dumps(event(i)) for i in range(20_000)]
    s3_client.put_object(Bucket=bucket, Key="logs/big.json", Body="\n".join(lines).encode())
    told: list[str] = []
    ObjectLoader(warehouse, s3_client, report=told.append).load(
        EVENTS, list_objects(s3_client, bucket, "logs/"), JSONPATHS
    )
    assert 9 <= len(told) <= 11, told
    assert all(line.startswith("logs/big.json: ") and " MB streamed (" in line for line in told)
    assert told[-1].split("(")[1].startswith("100 %")
    counted = [int(line.rsplit(", ", 1)[1].split()[0].replace(",", "")) for line in told]
    assert counted == sorted(counted) and 0 < counted[-1] <= 20_000
