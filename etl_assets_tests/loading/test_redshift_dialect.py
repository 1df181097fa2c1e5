"""The Redshift dialect, asserted statement by statement (no Redshift is reachable here;
see `recording` for what the recording warehouse does and does not do)."""

import json
import re

import psycopg2
import psycopg2.extensions
import pytest
from psycopg2 import sql

from etl_assets.defs.sparkify import tables as t
from etl_assets.lib.checks import rows_match_source
from etl_assets.loading.dialect import TableAttributes, redshift_copy
from etl_assets.loading.errors import LoadError
from etl_assets.loading.formats import Csv, JsonAuto, JsonPaths
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.loader import LoadTarget, ObjectLoader
from etl_assets.loading.publish import Append, MergeByKey, ReplacePartition, Snapshot, shadow_name
from etl_assets.loading.sources import list_objects
from etl_assets.resources.warehouse import WarehouseResource
from etl_assets_tests.loading.recording import ROLE, RecordingWarehouse
from etl_assets_tests.loading.redshift_rules import manifest_problems


def _ends_with_commit_then_housekeeping(log: list[str]) -> bool:
    """The load's transaction committed last; after it, on a connection in autocommit, only
    ANALYZE and VACUUM (issue 10 item 7)."""
    after = log[len(log) - log[::-1].index("COMMIT") :]
    if not after:
        return True
    assert after[0] == "AUTOCOMMIT ON", after
    assert all(
        re.match(r"(analyze|vacuum delete only|select count\(\*\) from) ", s) for s in after[1:]
    ), after
    return True


def _put(s3_client, bucket: str, key: str, body: bytes) -> SourceObject:
    s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    (listed,) = list_objects(s3_client, bucket, key)
    return listed


def _objects(s3_client, bucket: str) -> list[SourceObject]:
    keys = [
        "sparkify/log_data/2018/11/2018-11-01-events.json",
        "sparkify/log_data/2018/11/2018-11-02-events.json",
    ]
    lines = b"".join(b'{"a": %d, "b": "x"}\n' % i for i in range(3))
    return [_put(s3_client, bucket, key, lines) for key in keys]


def test_partition_load_is_copy_then_checks_then_one_transaction_publish(
    redshift, bucket: str, s3_client
) -> None:
    objects = _objects(s3_client, bucket)

    RecordingWarehouse.answers = staticmethod(
        lambda text: [(6,)] if text == "select pg_last_copy_count()" else []
    )
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
    assert [(f.records, f.rows) for f in result.files] == [(3, 3), (3, 3)]
    log = RecordingWarehouse.log
    load_id = result.load_id
    manifest = f"s3://{bucket}/_manifests/sparkify/staging_events/{load_id}.manifest"
    assert log[0] == 'lock "etl_audit"."file_ledger"'  # writers one at a time; readers never wait
    shadow = shadow_of("sparkify", "staging_events")
    assert log[2] == f'create temp table {shadow} (like "sparkify"."staging_events")'
    assert log[3] == f"select * from {shadow} limit 0"  # columns for JSON keys
    assert log[4] == (
        f"COPY {shadow} FROM '{manifest}' IAM_ROLE '{ROLE}'"
        f" FORMAT AS JSON 's3://{bucket}/sparkify/log_json_path.json' REGION 'us-west-2'"
        " MANIFEST COMPUPDATE OFF STATUPDATE OFF"
    )
    # the rows COPY loaded; each small file's records were counted from its first MB, so
    # SYS_LOAD_DETAIL is not asked; no STL table (empty on Serverless)
    assert log[5] == "select pg_last_copy_count()"
    assert log[6] == (
        "select sum(case when ts >= 1541030400000 and ts < 1541203200000 then 0 else 1 end)"
        f" from {shadow}"
    )
    assert not any("stl_" in statement or "sys_load_detail" in statement for statement in log)
    assert log[7:10] == [
        'delete from "sparkify"."staging_events" where ts >= 1541030400000 and ts < 1541203200000',
        f'insert into "sparkify"."staging_events" select * from {shadow}',
        f"drop table {shadow}",
    ]
    ledger_rows = [s for s in log if s.startswith('insert into "etl_audit"."file_ledger"')]
    assert len(ledger_rows) == 1 and ledger_rows[0].count("'loaded'") == 2  # one multi-row insert
    assert _ends_with_commit_then_housekeeping(log) and log.count("COMMIT") == 1
    assert not any(re.match(r"\s*truncate", s, re.I) for s in log)

    # COPY read pinned copies of exactly the listed versions, under _staged/<load id>/
    (copy,) = RecordingWarehouse.copies
    urls = [entry["url"] for entry in copy["manifest"]["entries"]]
    assert all(e["mandatory"] for e in copy["manifest"]["entries"])
    assert all(u.startswith(f"s3://{bucket}/_staged/{load_id}/") for u in urls)
    assert [u.rsplit("-", 1)[-1] for u in urls] == ["events.json", "events.json"]
    originals = [s3_client.get_object(Bucket=bucket, Key=o.key)["Body"].read() for o in objects]
    assert list(copy["bodies"].values()) == originals
    # ... which are deleted with the manifest once the COPY has read them
    leftover = s3_client.list_objects_v2(Bucket=bucket, Prefix="_")
    assert leftover["KeyCount"] == 0, [o["Key"] for o in leftover.get("Contents", [])]


def test_a_failed_blocking_check_rolls_back_without_publishing(redshift, bucket, s3_client):
    objects = _objects(s3_client, bucket)
    RecordingWarehouse.answers = staticmethod(  # COPY loaded 999 rows from 6 lines
        lambda text: [(999,)] if text == "select pg_last_copy_count()" else []
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
        lambda text: [(1,)] if text == "select pg_last_copy_count()" else []
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
    (copy,) = RecordingWarehouse.copies  # COPY read the pinned copy of the converted file
    assert list(copy["bodies"].values()) == [b'{"A":1}\n']
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


def _publish_log(
    redshift, bucket, s3_client, mode, table="flights", counted_rows=None
) -> list[str]:
    upload = _put(s3_client, bucket, f"flights/uploads/{table}.csv", b"YEAR\n1\n2\n3\n")
    RecordingWarehouse.answers = staticmethod(
        lambda text: (
            [(3,)]  # the header and three data lines scanned, three rows loaded
            if text == "select pg_last_copy_count()"
            else [(None,)]
            if text.startswith("select max(last_modified)")
            else counted_rows or []
            if text.startswith("select count(*) from")
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
    assert _ends_with_commit_then_housekeeping(log) and log.count("COMMIT") == 1
    in_transaction = log[: log.index("COMMIT")]
    assert not any(re.match(r"\s*(truncate|alter|vacuum)", s, re.I) for s in in_transaction)
    return log


def shadow_of(schema: str, table: str) -> str:
    """A load's shadow table, as a statement names it."""
    return '"' + shadow_name(schema, table).strings[0] + '"'


def _shadow_filled(log: list[str], table: str) -> None:
    shadow = shadow_of("flights", table)
    start = log.index(f'create temp table {shadow} (like "flights"."{table}")')
    assert log[start + 1].startswith(f"COPY {shadow} FROM ")


def test_snapshot_publish_deletes_and_copies_into_the_table_in_one_transaction(
    redshift, bucket, s3_client
):
    log = _publish_log(redshift, bucket, s3_client, Snapshot())
    delete = log.index('delete from "flights"."flights"')
    assert log[delete + 1].startswith('COPY "flights"."flights" FROM ')
    assert "FORMAT AS CSV IGNOREHEADER 1 EMPTYASNULL BLANKSASNULL" in log[delete + 1]
    assert log[delete + 2] == "select pg_last_copy_count()"  # 3 rows = 4 lines less the header
    assert not any("etl-shadow" in s for s in log)


def test_append_publish_inserts_without_deleting(redshift, bucket, s3_client):
    log = _publish_log(redshift, bucket, s3_client, Append(), "events")
    _shadow_filled(log, "events")
    assert not any(s.startswith("delete") for s in log)
    shadow = shadow_of("flights", "events")
    assert f'insert into "flights"."events" select * from {shadow}' in log
    assert any(s.startswith("select distinct bucket, object_key, etag") for s in log)


def test_merge_publish_updates_matching_keys_then_inserts_the_others(redshift, bucket, s3_client):
    """The staging-table merge of the Redshift guide (update from the stage, delete from the
    stage what the target has, insert the rest): no alias on UPDATE's target."""
    log = _publish_log(redshift, bucket, s3_client, MergeByKey(("id", "day")), "events")
    _shadow_filled(log, "events")
    s = shadow_of("flights", "events")
    match = f'"events"."id" = {s}."id" and "events"."day" = {s}."day"'
    # the recording warehouse describes the shadow's columns as a, b
    sets = f'"a" = {s}."a", "b" = {s}."b"'
    update = log.index(f'update "flights"."events" set {sets} from {s} where {match}')
    assert log[update + 1] == (
        f'delete from {s} using "flights"."events" where'
        f' {s}."id" = "events"."id" and {s}."day" = "events"."day"'
    )
    assert log[update + 2] == (
        f'insert into "flights"."events" ("a", "b") select "a", "b" from {s}'
    )


def test_a_key_longer_than_sys_load_details_file_name_is_still_counted(redshift, bucket, s3_client):
    """SYS_LOAD_DETAIL.file_name is char(256): a longer S3 URL appears cut at 256 characters."""
    key = "flights/uploads/" + "x" * 300 + ".csv"
    upload = _put(s3_client, bucket, key, b"h\n1\n2\n3\n4\n")
    RecordingWarehouse.answers = staticmethod(
        lambda text: [(4,)] if text == "select pg_last_copy_count()" else []
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
    upload = _put(s3_client, bucket, "flights/uploads/flights.csv", b"h\n1\n2\n3\n")
    RecordingWarehouse.answers = staticmethod(
        lambda text: (
            [(3,)]
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
    assert log.count("COMMIT (cancelled)") == 1 and _ends_with_commit_then_housekeeping(log)
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


# Issue 10 items 3-5: what Redshift refuses, and what it reads, is what PostgreSQL would


def _load(redshift, s3_client, objects, fmt, answers=None, target=None):
    def lines_read(text: str) -> list[tuple]:
        if text == "select pg_last_copy_count()":
            return [(sum(RecordingWarehouse.copies[-1]["lines"].values()),)]
        if text.startswith("select max(last_modified)"):
            return [(None,)]  # nothing published yet
        return []

    RecordingWarehouse.answers = staticmethod(answers or lines_read)
    warehouse = redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)
    return ObjectLoader(warehouse, s3_client).load(
        target or LoadTarget("sparkify", "staging_songs", Append()), objects, fmt
    )


def _ledger_statuses(log: list[str]) -> list[str]:
    """The statuses of the ledger rows written."""
    written = " ".join(s for s in log if s.startswith('insert into "etl_audit"."file_ledger"'))
    return re.findall(r"'(loaded|rejected|superseded)'", written)


def test_a_row_redshift_refuses_is_reported_with_key_line_and_column(
    redshift, bucket, s3_client, monkeypatch
):
    monkeypatch.setattr("etl_assets.loading.redshift_copy.ERROR_VIEW_WAITS_S", ())
    objects = _objects(s3_client, bucket)

    def answers(text: str):
        if text.startswith("COPY "):
            return psycopg2.InternalError(
                "Load into table 'staging_songs__shadow' failed. Check"
                " 'sys_load_error_detail' system table for details."
            )
        if "from sys_load_error_detail" in text:
            (copy,) = RecordingWarehouse.copies
            second = list(copy["bodies"])[1]
            message = "Invalid digit, Value 'secret', Pos 0, Type: Integer"
            return [(second, 3, "b", "int4", "0", message)]
        return []

    with pytest.raises(LoadError) as refused:
        _load(redshift, s3_client, objects, JsonAuto(), answers)
    error = refused.value
    assert (error.key, error.line, error.column) == (objects[1].key, 3, "b")
    assert "Invalid digit" in str(error) and "column type int4" in str(error)
    assert "secret" not in str(error)  # the ledger and the API never show the row's values
    log = RecordingWarehouse.log
    copy = next(i for i, s in enumerate(log) if s.startswith("COPY "))
    lookup = next(i for i, s in enumerate(log) if "from sys_load_error_detail" in s)
    assert log[copy + 1] == "ROLLBACK" and lookup == copy + 2  # read after the rollback
    assert f"where left(file_name, {len(f's3://{bucket}/_staged/') + 37}) = " in log[lookup]
    assert "stl_" not in log[lookup]
    assert _ledger_statuses(log) == ["rejected"] and "Invalid digit" in log[-2]
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="_")["KeyCount"] == 0


@pytest.mark.parametrize(
    "failure",
    [
        psycopg2.InternalError("S3ServiceException:Access Denied,Status 403,Error AccessDenied"),
        psycopg2.InternalError("Cannot COPY into nonexistent JSONPaths file s3://b/paths.json"),
        psycopg2.InternalError("Manifest file is not in correct json format"),
        psycopg2.extensions.QueryCanceledError("canceling statement due to statement timeout"),
    ],
    ids=["access denied", "missing jsonpaths", "bad manifest", "timeout"],
)
def test_a_copy_failing_without_a_row_error_rejects_every_file_with_the_message(
    redshift, bucket, s3_client, monkeypatch, failure
):
    """Not one row's fault: the load is refused (a LoadError, not the raw error), and every
    object of the load gets its verdict in the ledger with the message (was: raised raw, no
    ledger row, so the same versions were tried again at every tick)."""
    monkeypatch.setattr("etl_assets.loading.redshift_copy.ERROR_VIEW_WAITS_S", (0.0,))
    objects = _objects(s3_client, bucket)
    with pytest.raises(LoadError) as refused:
        _load(
            redshift,
            s3_client,
            objects,
            JsonAuto(),
            lambda text: failure if text.startswith("COPY ") else [],
        )
    reason = str(failure).split(",")[0]
    assert reason in str(refused.value) and "COPY failed without a row error" in str(refused.value)
    log = RecordingWarehouse.log
    assert sum("from sys_load_error_detail" in s for s in log) == 2  # looked, then waited once
    assert _ledger_statuses(log) == ["rejected", "rejected"]
    ledger_row = next(s for s in log if s.startswith('insert into "etl_audit"."file_ledger"'))
    assert all(o.key in ledger_row for o in objects) and reason in ledger_row
    assert log[-1] == "COMMIT"  # recorded on its own, after the load's rollback
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="_")["KeyCount"] == 0


def test_a_connection_lost_during_copy_is_raised_as_it_is(redshift, bucket, s3_client):
    """Not a verdict on the files: nothing is recorded, the run fails, the versions load later."""
    lost = psycopg2.OperationalError("server closed the connection unexpectedly")
    with pytest.raises(psycopg2.OperationalError):
        _load(
            redshift,
            s3_client,
            _objects(s3_client, bucket),
            JsonAuto(),
            lambda text: lost if text.startswith("COPY ") else [],
        )
    assert _ledger_statuses(RecordingWarehouse.log) == []


def test_an_object_overwritten_after_listing_is_refused_before_any_copy(
    redshift, bucket, s3_client
):
    objects = _objects(s3_client, bucket)
    s3_client.put_object(Bucket=bucket, Key=objects[0].key, Body=b'{"a": 9, "b": "new"}\n')
    with pytest.raises(LoadError, match="no longer in the bucket"):
        _load(redshift, s3_client, objects, JsonAuto())
    log = RecordingWarehouse.log
    assert not any(s.startswith("COPY ") for s in log)
    assert _ledger_statuses(log) == ["rejected"] and objects[0].etag in log[-2]


def test_an_object_overwritten_during_the_copy_loads_the_listed_version(
    redshift, bucket, s3_client
):
    """The manifest names keys: without the pinned copy, COPY would read the new bytes and
    the ledger would record them under the old ETag."""
    objects = _objects(s3_client, bucket)
    listed = s3_client.get_object(Bucket=bucket, Key=objects[0].key)["Body"].read()

    def overwrite_then_answer(text: str):
        if text.startswith("COPY "):
            s3_client.put_object(Bucket=bucket, Key=objects[0].key, Body=b'{"a": 9}\n' * 50)
        return [(6,)] if text == "select pg_last_copy_count()" else []

    result = _load(redshift, s3_client, objects, JsonAuto(), overwrite_then_answer)
    assert result.status == "published"
    (copy,) = RecordingWarehouse.copies
    assert list(copy["bodies"].values())[0] == listed
    assert result.files[0].source.etag == objects[0].etag and result.files[0].records == 3


def test_a_reordered_csv_header_is_refused_on_redshift_before_the_copy(redshift, bucket, s3_client):
    upload = _put(s3_client, bucket, "flights/uploads/flights.csv", b"B,A\n1,2\n")
    with pytest.raises(LoadError) as refused:
        _load(
            redshift,
            s3_client,
            [upload],
            Csv(expected_header="A,B"),
            target=LoadTarget("flights", "flights", Snapshot()),
        )
    assert refused.value.line == 1 and "header is 'B,A'; expected 'A,B'" in str(refused.value)
    assert not any(s.startswith("COPY ") for s in RecordingWarehouse.log)


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"", "empty file (no JSON records)"), (b"\n\n", "empty file (no JSON records)")],
)
def test_an_empty_json_file_is_refused_on_redshift(redshift, bucket, s3_client, body, reason):
    upload = _put(s3_client, bucket, "sparkify/log_data/2018/11/2018-11-03-events.json", body)
    with pytest.raises(LoadError, match=re.escape(reason)):
        _load(redshift, s3_client, [upload], JsonAuto())
    assert not any(s.startswith("COPY ") for s in RecordingWarehouse.log)


def test_a_renamed_json_key_is_drift_on_redshift_too(redshift, bucket, s3_client):
    upload = _put(s3_client, bucket, "sparkify/song_data/a.json", b'{"a": 1, "bee": 2}\n')
    result = _load(redshift, s3_client, [upload], JsonAuto())
    (loaded,) = result.files
    assert (loaded.missing_keys, loaded.unknown_keys) == (("b",), ("bee",))


def test_records_of_a_pretty_printed_json_file_are_records_not_lines(redshift, bucket, s3_client):
    """SYS_LOAD_DETAIL counts lines: a record over 4 lines is one record."""
    small = _put(s3_client, bucket, "sparkify/song_data/a.json", b'{\n "a": 1,\n "b": 2\n}\n')
    big_record = b'{\n "a": 1,\n "b": "' + b"x" * (1 << 20) + b'"\n}\n'
    big = _put(s3_client, bucket, "sparkify/song_data/b.json", big_record * 2)
    result = _load(
        redshift,
        s3_client,
        [small, big],
        JsonAuto(),
        lambda text: [(3,)] if text == "select pg_last_copy_count()" else [],
    )
    assert [f.records for f in result.files] == [1, 2]  # the big one: the rest of the rows


def _after_commit(log: list[str]) -> list[str]:
    return log[log.index("COMMIT") + 1 :]


def test_statistics_are_refreshed_after_the_commit_and_vacuum_runs_only_when_it_pays(
    redshift, bucket, s3_client, monkeypatch
):
    """COPY runs with STATUPDATE OFF: ANALYZE after every publish. VACUUM DELETE ONLY only
    where a publish deleted many rows and a large share of the table: automatic vacuum delete
    reclaims the rest in the background, and one VACUUM runs on a cluster at a time.
    (The recording warehouse reports 5 rows for every DELETE and UPDATE.)"""
    analyze = 'analyze "flights"."flights" predicate columns'
    vacuum = 'vacuum delete only "flights"."flights"'
    # a small whole-table replace: 5 rows deleted, under the floor
    log = _publish_log(redshift, bucket, s3_client, Snapshot())
    assert _after_commit(log) == ["AUTOCOMMIT ON", analyze]

    monkeypatch.setattr("etl_assets.loading.loader.VACUUM_MIN_DELETED_ROWS", 5)
    RecordingWarehouse.log.clear()
    log = _publish_log(redshift, bucket, s3_client, Snapshot())
    assert _after_commit(log) == ["AUTOCOMMIT ON", analyze, vacuum]  # 5 of 5 + 3 rows

    RecordingWarehouse.log.clear()
    log = _publish_log(redshift, bucket, s3_client, Append(), "events")
    assert _after_commit(log) == ["AUTOCOMMIT ON", 'analyze "flights"."events" predicate columns']

    # a partition replace: the share is the deleted rows against what the table holds now
    partition = ReplacePartition("2018", sql.SQL("1 = 1"))
    for table_rows, vacuumed in [(10, True), (1000, False)]:
        RecordingWarehouse.log.clear()
        counted = [(table_rows,)]
        log = _publish_log(redshift, bucket, s3_client, partition, counted_rows=counted)
        after = _after_commit(log)
        assert after[:3] == ["AUTOCOMMIT ON", analyze, 'select count(*) from "flights"."flights"']
        assert (vacuum in after) is vacuumed, (table_rows, after)

    # a merge marks the rows it updates as deleted: 5 updated of 1000 is a small merge
    RecordingWarehouse.log.clear()
    merge = MergeByKey(("id",))
    log = _publish_log(redshift, bucket, s3_client, merge, "events", counted_rows=[(1000,)])
    assert not any(s.startswith("vacuum") for s in _after_commit(log))


def test_a_vacuum_that_fails_leaves_the_load_published(
    redshift, bucket, s3_client, caplog, monkeypatch
):
    monkeypatch.setattr("etl_assets.loading.loader.VACUUM_MIN_DELETED_ROWS", 1)
    upload = _put(s3_client, bucket, "flights/uploads/flights.csv", b"h\n1\n")
    busy = psycopg2.InternalError("VACUUM is already running on the cluster")
    RecordingWarehouse.answers = staticmethod(
        lambda text: (
            busy
            if text.startswith("vacuum")
            else [(1,)]
            if text == "select pg_last_copy_count()"
            else [(None,)]
            if text.startswith("select max(last_modified)")
            else []
        )
    )
    warehouse = redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)
    result = ObjectLoader(warehouse, s3_client).load(
        LoadTarget("flights", "flights", Snapshot()), [upload], Csv()
    )
    assert result.status == "published"
    assert "VACUUM is already running" in caplog.text


def test_the_copy_role_is_an_arn_or_default_and_refused_at_start_otherwise(stack) -> None:
    """Issue 10 item 10: an empty ETL_REDSHIFT_IAM_ROLE failed only at the first COPY."""
    for role in ["", "  ", "redshift-copy", "arn:aws:iam::123:role/x"]:
        with pytest.raises(ValueError, match="ETL_REDSHIFT_IAM_ROLE") as refused:
            WarehouseResource(dialect="redshift", host="cluster.example", iam_role=role)
        assert "arn:aws:iam::<account>:role/<name>" in str(refused.value)
    WarehouseResource(dialect="postgres", host="localhost")  # no role needed
    conn = psycopg2.connect(stack.dsn())
    default = WarehouseResource(dialect="redshift", host="cluster.example", iam_role="default")
    rendered = redshift_copy(
        sql.Identifier("t"), "s3://b/m", Csv(), "b", default.iam_role, "us-east-1"
    ).as_string(conn)
    assert " IAM_ROLE default FORMAT AS CSV" in rendered
    conn.close()


def test_keys_with_the_same_base_name_in_other_folders_are_staged_apart(
    redshift, bucket, s3_client
):
    """song_data's A/B/C/<track>.json layout: two keys may end alike. Each listed version gets
    its own staged copy (a hash of the whole key), the manifest names each once, and COPY
    reads both files' bytes."""
    keys = ["sparkify/song_data/A/B/C/TRAAA.json", "sparkify/song_data/A/B/D/TRAAA.json"]
    objects = [
        _put(s3_client, bucket, key, b'{"a": %d, "b": "x"}\n' % i) for i, key in enumerate(keys)
    ]
    result = _load(redshift, s3_client, objects, JsonAuto())
    assert result.status == "published"
    (copy,) = RecordingWarehouse.copies
    urls = [entry["url"] for entry in copy["manifest"]["entries"]]
    assert len(set(urls)) == 2, urls
    assert all(u.endswith("-TRAAA.json") for u in urls)  # the readable tail stays
    assert sorted(copy["bodies"].values()) == [b'{"a": 0, "b": "x"}\n', b'{"a": 1, "b": "x"}\n']
    assert manifest_problems(copy["manifest"]) == []


# Per-file records on Redshift: SYS_LOAD_DETAIL found by the load's prefix, waited for, or the
# files counted from their staged copies

BIG_CSV = b"YEAR\n" + b"".join(b"%d\n" % i for i in range(1, 10))  # 9 records past 16 bytes
QUOTED_BREAKS = b'YEAR\n"1\n1"\n"2\n2"\n3\n4\n5\n'  # 5 records on 7 lines after the header


def _csv_load(redshift, bucket, s3_client, monkeypatch, bodies: list[bytes]):
    """CSV files larger than the (shrunk) first-bytes sample, so their records come from
    SYS_LOAD_DETAIL or from the files themselves."""
    monkeypatch.setattr("etl_assets.loading.redshift_copy.SAMPLE_BYTES", 16)
    monkeypatch.setattr("etl_assets.loading.redshift_copy.LOAD_VIEW_WAITS_S", (0.0, 0.0))
    uploads = [
        _put(s3_client, bucket, f"flights/uploads/part{i}.csv", body)
        for i, body in enumerate(bodies)
    ]

    def answers(text: str):
        if text == "select pg_last_copy_count()":
            records = [len(b.decode().split("\n")) - 2 for b in bodies]  # less header and end
            return [(sum(records) - 2 * bodies.count(QUOTED_BREAKS),)]
        return []

    RecordingWarehouse.answers = staticmethod(answers)
    warehouse = redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)
    return ObjectLoader(warehouse, s3_client).load(
        LoadTarget("flights", "events", Append()),
        uploads,
        Csv(expected_header="YEAR"),
        rows_match_source(),
    )


def _load_detail_queries() -> list[str]:
    return [s for s in RecordingWarehouse.log if "from sys_load_detail" in s]


def test_per_file_records_do_not_depend_on_pg_last_copy_id(
    redshift, bucket, s3_client, monkeypatch
):
    """pg_last_copy_id() is an STL query id; SYS_LOAD_DETAIL's query_id is another identifier
    (the recording warehouse's view gives them different values, as they may be): joined on
    it, every file had 0 records and the blocking rows_match_source refused every CSV load."""
    result = _csv_load(redshift, bucket, s3_client, monkeypatch, [BIG_CSV, BIG_CSV])
    assert result.status == "published", result.checks
    assert [f.records for f in result.files] == [9, 9]
    (query,) = _load_detail_queries()
    prefix = f"s3://{bucket}/_staged/{result.load_id}/"
    assert query.endswith(f"where left(file_name, {len(prefix)}) = '{prefix}' group by 1")
    assert "pg_last_copy_id" not in query and "query_id" not in query


def test_per_file_records_wait_for_sys_load_detail(redshift, bucket, s3_client, monkeypatch):
    RecordingWarehouse.load_detail_lag = 2  # the view shows nothing to the first two queries
    result = _csv_load(redshift, bucket, s3_client, monkeypatch, [BIG_CSV, BIG_CSV])
    assert result.status == "published" and [f.records for f in result.files] == [9, 9]
    assert len(_load_detail_queries()) == 3


def test_per_file_records_without_sys_load_detail_are_counted_from_the_files(
    redshift, bucket, s3_client, monkeypatch
):
    """The view never shows the load (a bounded wait, then no rejection): each file is read
    through and counted as the PostgreSQL path counts it, quote-aware."""
    RecordingWarehouse.load_detail_lag = None
    result = _csv_load(
        redshift, bucket, s3_client, monkeypatch, [BIG_CSV, QUOTED_BREAKS, QUOTED_BREAKS]
    )
    assert result.status == "published", result.checks
    assert [f.records for f in result.files] == [9, 5, 5]
    assert len(_load_detail_queries()) == 3  # asked, then twice more, then counted here


def test_a_quoted_line_break_is_one_record_not_two(redshift, bucket, s3_client, monkeypatch):
    """Lines scanned overcount a CSV whose values hold line breaks: two such files are
    counted from their staged copies, the view's lines are not used for them."""
    result = _csv_load(redshift, bucket, s3_client, monkeypatch, [QUOTED_BREAKS, QUOTED_BREAKS])
    assert result.status == "published", result.checks
    assert [f.records for f in result.files] == [5, 5]
