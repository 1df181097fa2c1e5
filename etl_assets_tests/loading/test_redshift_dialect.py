"""The Redshift dialect, asserted statement by statement (no Redshift is reachable here).

The recording connection renders each statement with a real PostgreSQL connection's quoting
(psycopg2's mogrify) and answers the few queries a load reads back; nothing is executed.
"""

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import psycopg2
import pytest
from psycopg2 import sql

from etl_assets.defs.sparkify import tables as t
from etl_assets.lib.checks import rows_match_source
from etl_assets.loading.dialect import TableAttributes, redshift_copy
from etl_assets.loading.formats import Csv, JsonAuto, JsonPaths
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.loader import LoadTarget, ObjectLoader
from etl_assets.loading.publish import Append, MergeByKey, ReplacePartition, Snapshot
from etl_assets.resources.warehouse import WarehouseResource

ROLE = "arn:aws:iam::123456789012:role/etl-assets-copy"


class RecordingCursor:
    def __init__(self, renderer, log: list[str], answers) -> None:
        self.renderer, self.log, self.answers = renderer, log, answers
        self.connection = renderer.connection  # its encoding renders multi-row inserts
        self._rows: list[tuple] = []
        self.rowcount = 0

    def execute(self, statement, params=None) -> None:
        text = " ".join(self.renderer.mogrify(statement, params).decode().split())
        self.log.append(text)
        self._rows = self.answers(text)
        if not self._rows and text.startswith("select sum(case when"):
            self._rows = [(0,)]  # a partition load's rows all inside the partition
        self.rowcount = 5

    def mogrify(self, statement, params=None) -> bytes:
        return self.renderer.mogrify(statement, params)

    def executemany(self, statement, rows) -> None:
        for row in rows:
            self.execute(statement, row)

    def fetchall(self) -> list[tuple]:
        return self._rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def copy_expert(self, *args, **kwargs) -> None:
        raise AssertionError("Redshift pulls from S3; nothing is streamed through the client")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


class RecordingWarehouse(WarehouseResource):
    log: ClassVar[list[str]] = []
    renderer_dsn: ClassVar[str] = ""
    answers: ClassVar = staticmethod(lambda text: [])
    commit_errors: ClassVar[list[Exception]] = []  # raised by the next commits, in order

    @contextmanager
    def get_connection(self) -> Iterator:
        real = psycopg2.connect(self.renderer_dsn)
        renderer = real.cursor()
        log = type(self).log

        class Connection:
            def cursor(self):
                return RecordingCursor(renderer, log, RecordingWarehouse.answers)

            def commit(self):
                if RecordingWarehouse.commit_errors:
                    log.append("COMMIT (cancelled)")
                    raise RecordingWarehouse.commit_errors.pop(0)
                log.append("COMMIT")

            def rollback(self):
                log.append("ROLLBACK")

        try:
            yield Connection()
        finally:
            real.close()


@pytest.fixture
def redshift(stack) -> type[RecordingWarehouse]:
    RecordingWarehouse.log = []
    RecordingWarehouse.commit_errors = []
    RecordingWarehouse.renderer_dsn = stack.dsn()
    return RecordingWarehouse


def _objects(bucket: str) -> list[SourceObject]:
    keys = [
        "sparkify/log_data/2018/11/2018-11-01-events.json",
        "sparkify/log_data/2018/11/2018-11-02-events.json",
    ]
    return [SourceObject(bucket, key, f"etag{i}", 100) for i, key in enumerate(keys)]


def test_partition_load_is_copy_then_checks_then_one_transaction_publish(
    redshift, bucket: str, s3_client
) -> None:
    objects = _objects(bucket)

    def answers(text: str) -> list[tuple]:
        if "sys_load_detail" in text:
            return [(o.url, 3) for o in objects]
        if text == "select pg_last_copy_count()":
            return [(6,)]
        return []

    RecordingWarehouse.answers = staticmethod(answers)
    warehouse = redshift(
        dialect="redshift", host="cluster.example", iam_role=ROLE, region="us-west-2"
    )
    target = LoadTarget(
        "sparkify",
        "staging_events",
        ReplacePartition(
            "2018-11-01..2018-11-02", sql.SQL("ts >= 1541030400000 and ts < 1541203200000")
        ),
    )
    fmt = JsonPaths.parse("sparkify/log_json_path.json", '{"jsonpaths": ["$.a", "$.b"]}')
    result = ObjectLoader(warehouse, s3_client, run_id="run-1").load(
        target, objects, fmt, rows_match_source()
    )

    assert result.status == "published"
    log = RecordingWarehouse.log
    load_id = result.load_id
    manifest = f"s3://{bucket}/_manifests/sparkify/staging_events/{load_id}.manifest"
    assert log[0] == 'lock "etl_audit"."file_ledger"'  # writers one at a time; readers never wait
    assert log[2] == 'create temp table "staging_events__shadow" (like "sparkify"."staging_events")'
    assert log[3] == (
        f"COPY \"staging_events__shadow\" FROM '{manifest}' IAM_ROLE '{ROLE}'"
        f" FORMAT AS JSON 's3://{bucket}/sparkify/log_json_path.json' REGION 'us-west-2'"
        " MANIFEST COMPUPDATE OFF STATUPDATE OFF"
    )
    # the rows COPY loaded and the lines per file: SYS views, no STL table (empty on Serverless)
    assert log[4] == "select pg_last_copy_count()"
    assert log[5] == (
        "select trim(file_name), sum(lines_scanned) from sys_load_detail"
        " where query_id = pg_last_copy_id() group by 1"
    )
    assert log[6] == (
        "select sum(case when ts >= 1541030400000 and ts < 1541203200000 then 0 else 1 end)"
        ' from "staging_events__shadow"'
    )
    assert not any("stl_" in statement for statement in log)
    assert log[7:10] == [
        'delete from "sparkify"."staging_events" where ts >= 1541030400000 and ts < 1541203200000',
        'insert into "sparkify"."staging_events" select * from "staging_events__shadow"',
        'drop table "staging_events__shadow"',
    ]
    ledger_rows = [s for s in log if s.startswith('insert into "etl_audit"."file_ledger"')]
    assert len(ledger_rows) == 1 and ledger_rows[0].count("'loaded'") == 2  # one multi-row insert
    assert log[-1] == "COMMIT" and log.count("COMMIT") == 1
    assert not any(re.match(r"\s*truncate", s, re.I) for s in log)

    body = s3_client.get_object(Bucket=bucket, Key=manifest.split("/", 3)[3])["Body"].read()
    assert json.loads(body) == {"entries": [{"url": o.url, "mandatory": True} for o in objects]}


def test_a_failed_blocking_check_rolls_back_without_publishing(redshift, bucket, s3_client):
    objects = _objects(bucket)
    RecordingWarehouse.answers = staticmethod(
        lambda text: (
            [(o.url, 3) for o in objects]
            if "sys_load_detail" in text
            else [(999,)]  # COPY loaded 999 rows from 6 lines
            if text == "select pg_last_copy_count()"
            else []
        )
    )
    warehouse = redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)
    result = ObjectLoader(warehouse, s3_client).load(
        LoadTarget("sparkify", "staging_songs"), objects, JsonAuto(), rows_match_source()
    )
    assert result.status == "rejected"
    assert result.checks[0].metadata == {"rows": 999, "records": 6}
    log = RecordingWarehouse.log
    rollback = log.index("ROLLBACK")
    assert log.index('delete from "sparkify"."staging_songs"') < rollback  # undone
    assert "COMMIT" not in log[:rollback]
    rejected = [s for s in log if "'rejected'" in s]
    assert len(rejected) == 1 and rejected[0].count("'rejected'") == 2
    assert log[-1] == "COMMIT"  # the rejection is recorded on its own


def test_copy_formats(stack) -> None:
    conn = psycopg2.connect(stack.dsn())
    shadow = sql.Identifier("flights__shadow")

    def render(fmt) -> str:
        return redshift_copy(shadow, "s3://b/m.manifest", fmt, "b", ROLE, "eu-west-1").as_string(
            conn
        )

    assert "FORMAT AS JSON 'auto' REGION 'eu-west-1' MANIFEST" in render(JsonAuto())
    assert "FORMAT AS CSV IGNOREHEADER 1 EMPTYASNULL BLANKSASNULL" in render(Csv())
    assert "FORMAT AS JSON 's3://b/p.json'" in render(JsonPaths("p.json", (("a",),)))
    conn.close()


def test_table_attributes_render_for_redshift_only(stack) -> None:
    conn = psycopg2.connect(stack.dsn())
    redshift_ddl = t.SONGPLAYS.create_statement("redshift").as_string(conn)
    assert redshift_ddl.endswith(') DISTSTYLE KEY DISTKEY ("song_id") SORTKEY ("start_time")')
    assert t.SONGPLAYS.create_statement("postgres").as_string(conn).endswith(")")
    assert TableAttributes("ALL").render("redshift").as_string(conn) == " DISTSTYLE ALL"
    with pytest.raises(ValueError, match="invalid identifier"):
        TableAttributes("KEY", distkey="song_id; drop table x").render("redshift")
    # issue 10 item 10: a DISTKEY under another DISTSTYLE was rendered as invalid DDL
    with pytest.raises(ValueError, match=r"DISTKEY \(song_id\) needs DISTSTYLE KEY, not EVEN"):
        TableAttributes("EVEN", distkey="song_id")
    with pytest.raises(ValueError, match="unknown DISTSTYLE"):
        TableAttributes("SPREAD")
    conn.close()


def test_airlines_array_is_converted_to_one_object_per_line_for_redshift(bucket, s3_client):
    from etl_assets.lib.converters import JsonArrayToLines
    from etl_assets.loading.sources import list_objects

    array = json.dumps([{"IATA_CODE": "UA", "AIRLINE": "United"}, {"IATA_CODE": "AA"}], indent=2)
    s3_client.put_object(Bucket=bucket, Key="flights/airlines.json", Body=array.encode())
    (source,) = list_objects(s3_client, bucket, "flights/airlines.json")

    converter = JsonArrayToLines()
    converted = converter.convert(s3_client, source)

    assert converter.applies_to("redshift") and converter.applies_to("postgres")
    assert converted.key == "_converted/flights/airlines.json"
    body = s3_client.get_object(Bucket=bucket, Key=converted.key)["Body"].read().decode()
    assert body.splitlines() == ['{"IATA_CODE":"UA","AIRLINE":"United"}', '{"IATA_CODE":"AA"}']


def test_a_converted_file_is_loaded_but_the_ledger_records_the_original(
    redshift, bucket, s3_client
):
    from etl_assets.lib.converters import JsonArrayToLines
    from etl_assets.loading.sources import list_objects

    s3_client.put_object(Bucket=bucket, Key="flights/airlines.json", Body=b'[{"A": 1}]')
    (source,) = list_objects(s3_client, bucket, "flights/airlines.json")
    RecordingWarehouse.answers = staticmethod(
        lambda text: (
            [(f"s3://{bucket}/_converted/flights/airlines.json", 1)]
            if "sys_load_detail" in text
            else [(1,)]
            if text == "select pg_last_copy_count()"
            else []
        )
    )
    warehouse = redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)
    result = ObjectLoader(warehouse, s3_client).load(
        LoadTarget("flights", "airlines"),
        [source],
        JsonAuto(ignore_case=True),
        rows_match_source(),
        converter=JsonArrayToLines(),
    )
    assert result.status == "published" and result.files[0].source == source
    manifest_key = f"_manifests/flights/airlines/{result.load_id}.manifest"
    manifest = json.loads(s3_client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    assert manifest["entries"][0]["url"] == f"s3://{bucket}/_converted/flights/airlines.json"
    ledger_rows = [s for s in RecordingWarehouse.log if 'into "etl_audit"."file_ledger"' in s]
    assert len(ledger_rows) == 1 and f"'{source.key}','{source.etag}'" in ledger_rows[0]


def test_case_insensitive_auto_renders_ignorecase(stack) -> None:
    conn = psycopg2.connect(stack.dsn())
    rendered = redshift_copy(
        sql.Identifier("airlines__shadow"),
        "s3://b/m",
        JsonAuto(ignore_case=True),
        "b",
        ROLE,
        "us-east-1",
    ).as_string(conn)
    assert "FORMAT AS JSON 'auto ignorecase'" in rendered
    conn.close()


def _publish_log(redshift, bucket, s3_client, mode, table="flights") -> list[str]:
    upload = SourceObject(bucket, f"flights/uploads/{table}.csv", "e1", 10)
    RecordingWarehouse.answers = staticmethod(
        lambda text: (
            [(upload.url, 4)]  # the header and three data lines
            if "sys_load_detail" in text
            else [(3,)]
            if text == "select pg_last_copy_count()"
            else [(None,)]
            if text.startswith("select max(last_modified)")
            else []
        )
    )
    warehouse = redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)
    result = ObjectLoader(warehouse, s3_client).load(
        LoadTarget("flights", table, mode),
        [upload],
        Csv(expected_header="YEAR"),
        rows_match_source(),
    )
    assert result.status == "published"
    log = RecordingWarehouse.log
    assert log[0] == 'lock "etl_audit"."file_ledger"'
    assert log[-1] == "COMMIT" and log.count("COMMIT") == 1
    assert not any(re.match(r"\s*(truncate|alter|vacuum)", s, re.I) for s in log)
    return log


def _shadow_filled(log: list[str], table: str) -> None:
    start = log.index(f'create temp table "{table}__shadow" (like "flights"."{table}")')
    assert log[start + 1].startswith(f'COPY "{table}__shadow" FROM ')


def test_snapshot_publish_deletes_and_copies_into_the_table_in_one_transaction(
    redshift, bucket, s3_client
):
    log = _publish_log(redshift, bucket, s3_client, Snapshot())
    delete = log.index('delete from "flights"."flights"')
    assert log[delete + 1].startswith('COPY "flights"."flights" FROM ')
    assert "FORMAT AS CSV IGNOREHEADER 1 EMPTYASNULL BLANKSASNULL" in log[delete + 1]
    assert log[delete + 2] == "select pg_last_copy_count()"  # 3 rows = 4 lines less the header
    assert not any("__shadow" in s for s in log)


def test_append_publish_inserts_without_deleting(redshift, bucket, s3_client):
    log = _publish_log(redshift, bucket, s3_client, Append(), "events")
    _shadow_filled(log, "events")
    assert not any(s.startswith("delete") for s in log)
    assert 'insert into "flights"."events" select * from "events__shadow"' in log
    assert any(s.startswith("select distinct bucket, object_key, etag") for s in log)


def test_merge_publish_deletes_matching_keys_then_inserts(redshift, bucket, s3_client):
    log = _publish_log(redshift, bucket, s3_client, MergeByKey(("id", "day")), "events")
    _shadow_filled(log, "events")
    delete = log.index(
        'delete from "flights"."events" using "events__shadow" where'
        ' "events"."id" = "events__shadow"."id" and "events"."day" = "events__shadow"."day"'
    )
    assert log[delete + 1] == 'insert into "flights"."events" select * from "events__shadow"'


def test_a_key_longer_than_sys_load_details_file_name_is_still_counted(redshift, bucket, s3_client):
    """SYS_LOAD_DETAIL.file_name is char(256): a longer S3 URL appears cut at 256 characters."""
    upload = SourceObject(bucket, "flights/uploads/" + "x" * 300 + ".csv", "e1", 10)
    RecordingWarehouse.answers = staticmethod(
        lambda text: (
            [(upload.url[:256], 5)]
            if "sys_load_detail" in text
            else [(4,)]
            if text == "select pg_last_copy_count()"
            else []
        )
    )
    warehouse = redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)
    result = ObjectLoader(warehouse, s3_client).load(
        LoadTarget("flights", "events", Append()), [upload], Csv(), rows_match_source()
    )
    assert result.status == "published" and result.files[0].records == 4


CANCELLED = (
    "1023\nDETAIL:  Serializable isolation violation on table - 1012,"
    " transactions forming the cycle are: 4012, 4013 (pid:1072)"
)


def _snapshot_load(redshift, bucket, s3_client):
    upload = SourceObject(bucket, "flights/uploads/flights.csv", "e1", 10)
    RecordingWarehouse.answers = staticmethod(
        lambda text: (
            [(upload.url, 4)]
            if "sys_load_detail" in text
            else [(3,)]
            if text == "select pg_last_copy_count()"
            else [(None,)]
            if text.startswith("select max(last_modified)")
            else []
        )
    )
    warehouse = redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)
    return ObjectLoader(warehouse, s3_client).load(
        LoadTarget("flights", "flights", Snapshot()), [upload], Csv(), rows_match_source()
    )


def test_a_load_cancelled_for_serializability_is_retried_whole(
    redshift, bucket, s3_client, monkeypatch
):
    monkeypatch.setattr("etl_assets.loading.retry.FIRST_PAUSE_S", 0.0)
    RecordingWarehouse.commit_errors = [psycopg2.InternalError(CANCELLED)]
    result = _snapshot_load(redshift, bucket, s3_client)
    assert result.status == "published"
    log = RecordingWarehouse.log
    assert log.count("COMMIT (cancelled)") == 1 and log[-1] == "COMMIT"
    # the second attempt starts over: the ledger lock, the delete, the COPY, the ledger rows
    second = log.index("COMMIT (cancelled)") + 1
    assert log[second] == 'lock "etl_audit"."file_ledger"'
    assert any(s.startswith("COPY ") for s in log[second:])
    assert any(s.startswith('insert into "etl_audit"."file_ledger"') for s in log[second:])


def test_retries_are_bounded_and_other_errors_are_not_retried(
    redshift, bucket, s3_client, monkeypatch
):
    monkeypatch.setattr("etl_assets.loading.retry.FIRST_PAUSE_S", 0.0)
    RecordingWarehouse.commit_errors = [psycopg2.InternalError(CANCELLED) for _ in range(4)]
    with pytest.raises(psycopg2.InternalError, match="Serializable isolation violation"):
        _snapshot_load(redshift, bucket, s3_client)
    assert RecordingWarehouse.log.count("COMMIT (cancelled)") == 4

    RecordingWarehouse.log.clear()
    RecordingWarehouse.commit_errors = [psycopg2.InternalError("Disk Full")]
    with pytest.raises(psycopg2.InternalError, match="Disk Full"):
        _snapshot_load(redshift, bucket, s3_client)
    assert RecordingWarehouse.log.count("COMMIT (cancelled)") == 1
