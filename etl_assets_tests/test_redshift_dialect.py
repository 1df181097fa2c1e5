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

from etl_assets.checks import rows_match_source
from etl_assets.defs.sparkify import tables as t
from etl_assets.loading.formats import Csv, JsonAuto, JsonPaths
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.loader import LoadTarget, ObjectLoader
from etl_assets.resources.dialect import TableAttributes, redshift_copy
from etl_assets.resources.warehouse import WarehouseResource

ROLE = "arn:aws:iam::123456789012:role/etl-assets-copy"


class RecordingCursor:
    def __init__(self, renderer, log: list[str], answers) -> None:
        self.renderer, self.log, self.answers = renderer, log, answers
        self._rows: list[tuple] = []
        self.rowcount = 0

    def execute(self, statement, params=None) -> None:
        text = " ".join(self.renderer.mogrify(statement, params).decode().split())
        self.log.append(text)
        self._rows = self.answers(text)
        self.rowcount = 5

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

    @contextmanager
    def get_connection(self) -> Iterator:
        real = psycopg2.connect(self.renderer_dsn)
        renderer = real.cursor()
        log = type(self).log

        class Connection:
            def cursor(self):
                return RecordingCursor(renderer, log, RecordingWarehouse.answers)

            def commit(self):
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
        if "stl_load_commits" in text:
            return [(o.url, 3) for o in objects]
        if text.startswith("select count(*)"):
            return [(6,)]
        return []

    RecordingWarehouse.answers = staticmethod(answers)
    warehouse = redshift(
        dialect="redshift", host="cluster.example", iam_role=ROLE, region="us-west-2"
    )
    target = LoadTarget(
        "sparkify",
        "staging_events",
        "2018-11-01..2018-11-02",
        sql.SQL("ts >= 1541030400000 and ts < 1541203200000"),
    )
    fmt = JsonPaths.parse("sparkify/log_json_path.json", '{"jsonpaths": ["$.a", "$.b"]}')
    result = ObjectLoader(warehouse, s3_client, run_id="run-1").load(
        target, objects, fmt, rows_match_source()
    )

    assert result.status == "published"
    log = RecordingWarehouse.log
    load_id = result.load_id
    manifest = f"s3://{bucket}/_manifests/sparkify/staging_events/{load_id}.manifest"
    assert log[1] == 'create temp table "staging_events__shadow" (like "sparkify"."staging_events")'
    assert log[2] == (
        f"COPY \"staging_events__shadow\" FROM '{manifest}' IAM_ROLE '{ROLE}'"
        f" FORMAT AS JSON 's3://{bucket}/sparkify/log_json_path.json' REGION 'us-west-2'"
        " MANIFEST COMPUPDATE OFF STATUPDATE OFF"
    )
    assert log[3].startswith("select trim(filename), sum(lines_scanned) from stl_load_commits")
    assert log[4] == 'select count(*) from "staging_events__shadow" as checked'
    assert log[5:8] == [
        'delete from "sparkify"."staging_events" where ts >= 1541030400000 and ts < 1541203200000',
        'insert into "sparkify"."staging_events" select * from "staging_events__shadow"',
        'drop table "staging_events__shadow"',
    ]
    ledger_rows = [s for s in log if s.startswith('insert into "etl_audit"."file_ledger"')]
    assert len(ledger_rows) == 2 and all("'loaded'" in s for s in ledger_rows)
    assert log[-1] == "COMMIT" and log.count("COMMIT") == 1
    assert not any(re.match(r"\s*truncate", s, re.I) for s in log)

    body = s3_client.get_object(Bucket=bucket, Key=manifest.split("/", 3)[3])["Body"].read()
    assert json.loads(body) == {"entries": [{"url": o.url, "mandatory": True} for o in objects]}


def test_a_failed_blocking_check_rolls_back_without_publishing(redshift, bucket, s3_client):
    objects = _objects(bucket)
    RecordingWarehouse.answers = staticmethod(
        lambda text: (
            [(o.url, 3) for o in objects]
            if "stl_load_commits" in text
            else [(999,)]
            if text.startswith("select count(*)")
            else []
        )
    )
    warehouse = redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)
    result = ObjectLoader(warehouse, s3_client).load(
        LoadTarget("sparkify", "staging_songs"), objects, JsonAuto(), rows_match_source()
    )
    assert result.status == "rejected"
    log = RecordingWarehouse.log
    assert "ROLLBACK" in log
    assert not any(s.startswith(("delete from", 'insert into "sparkify"')) for s in log)
    rejected = [s for s in log if "'rejected'" in s]
    assert len(rejected) == 2 and log[-1] == "COMMIT"  # the rejection is recorded on its own


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
    conn.close()


def test_airlines_array_is_converted_to_one_object_per_line_for_redshift(bucket, s3_client):
    from etl_assets.defs.flights.assets import array_to_ndjson
    from etl_assets.loading.sources import list_objects

    array = json.dumps([{"IATA_CODE": "UA", "AIRLINE": "United"}, {"IATA_CODE": "AA"}], indent=2)
    s3_client.put_object(Bucket=bucket, Key="flights/airlines.json", Body=array.encode())
    (source,) = list_objects(s3_client, bucket, "flights/airlines.json")

    converted = array_to_ndjson(s3_client, source)

    assert converted.key == "_converted/flights/airlines.json"
    body = s3_client.get_object(Bucket=bucket, Key=converted.key)["Body"].read().decode()
    assert body.splitlines() == ['{"IATA_CODE":"UA","AIRLINE":"United"}', '{"IATA_CODE":"AA"}']


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


def test_snapshot_swap_publish_renames_and_rebinds_views_in_one_transaction(
    redshift, bucket, s3_client
):
    upload = SourceObject(bucket, "flights/uploads/flights 2015.csv", "e1", 10)

    def answers(text: str) -> list[tuple]:
        if "stl_load_commits" in text:
            return [(upload.url, 4)]
        if text.startswith("select count(*)"):
            return [(4,)]
        return [(None,)] if text.startswith("select max(last_modified)") else []

    RecordingWarehouse.answers = staticmethod(answers)
    warehouse = redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)
    view = sql.SQL("create or replace view flights.v as select 1 with no schema binding")
    target = LoadTarget("flights", "flights", snapshot=True, swap=True, dependents=(view,))
    result = ObjectLoader(warehouse, s3_client).load(
        target, [upload], Csv(expected_header="YEAR"), rows_match_source()
    )
    assert result.status == "published"
    log = RecordingWarehouse.log
    start = log.index('create table "flights"."flights__next" (like "flights"."flights")')
    assert log[start + 1].startswith('COPY "flights"."flights__next" FROM ')
    assert "FORMAT AS CSV IGNOREHEADER 1 EMPTYASNULL BLANKSASNULL" in log[start + 1]
    tail = log[log.index('alter table "flights"."flights" rename to "flights__old"') :]
    assert tail[:4] == [
        'alter table "flights"."flights" rename to "flights__old"',
        'alter table "flights"."flights__next" rename to "flights"',
        "create or replace view flights.v as select 1 with no schema binding",
        'drop table "flights"."flights__old"',
    ]
    assert log[-1] == "COMMIT" and log.count("COMMIT") == 1
    assert not any(s.lower().startswith("truncate") for s in log)
