"""Issue 9: every bad file is refused with its key, real line, column and reason, recorded in
the ledger as rejected, and nothing already published changes."""

import json

import pytest

from etl_assets.defs.sparkify import tables as t
from etl_assets.defs.sparkify.sample_data import jsonpaths_document
from etl_assets.lib.checks import rows_match_source
from etl_assets.loading.errors import LoadError
from etl_assets.loading.formats import Csv, JsonAuto, JsonPaths
from etl_assets.loading.loader import LoadTarget, ObjectLoader
from etl_assets.loading.publish import ReplacePartition
from etl_assets.loading.sources import list_objects
from etl_assets.loading.tables import ensure_tables
from etl_assets_tests.loading.test_loader import event

JSONPATHS = JsonPaths.parse("sparkify/log_json_path.json", jsonpaths_document())


def ledger(warehouse, key: str) -> list[tuple]:
    return warehouse.query(
        "select status, error from etl_audit.file_ledger where object_key = %s", (key,)
    )


@pytest.mark.parametrize("body", [b"", b"   \n\n  \n", b"\n"])
def test_an_empty_event_log_is_refused_and_the_day_keeps_its_rows(
    warehouse, s3_client, bucket, body
) -> None:
    """Item 1: an empty or whitespace-only daily log used to publish nothing for its day."""
    from psycopg2 import sql

    ensure_tables(warehouse, t.ALL_TABLES)
    key = "logs/2018-11-01-events.json"
    day = ReplacePartition("2018-11-01", sql.SQL("ts >= 1541030400000 and ts < 1541116800000"))
    target = LoadTarget("sparkify", "staging_events", day)
    loader = ObjectLoader(warehouse, s3_client)
    s3_client.put_object(
        Bucket=bucket, Key=key, Body="\n".join(json.dumps(event(i)) for i in range(5)).encode()
    )
    loader.load(target, list_objects(s3_client, bucket, "logs/"), JSONPATHS, rows_match_source())
    s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    with pytest.raises(LoadError) as refused:
        loader.load(target, list_objects(s3_client, bucket, "logs/"), JSONPATHS)
    assert str(refused.value) == f"{key}: file: empty file (no JSON records)"
    assert warehouse.query("select count(*) from sparkify.staging_events") == [(5,)]
    assert [status for status, _ in ledger(warehouse, key)] == ["loaded", "rejected"]


def test_an_empty_song_file_is_refused(warehouse, s3_client, bucket) -> None:
    ensure_tables(warehouse, t.ALL_TABLES)
    s3_client.put_object(Bucket=bucket, Key="songs/A/empty.json", Body=b" \n")
    with pytest.raises(LoadError, match=r"songs/A/empty.json: file: empty file"):
        ObjectLoader(warehouse, s3_client).load(
            LoadTarget("sparkify", "staging_songs"),
            list_objects(s3_client, bucket, "songs/"),
            JsonAuto(),
        )
    assert [s for s, _ in ledger(warehouse, "songs/A/empty.json")] == ["rejected"]


CSV_FAULTS = {
    "not null": (b"code,delay\nAA,5\n,7\n", 3, "code", "null value in column"),
    "unterminated quote": (b'code,delay\nAA,5\n"BB,7\n', 3, None, "unterminated CSV quoted field"),
    "too long": (b"code,delay\nAA,5\nBBBB,7\n", 3, "code", "value too long"),
    "check constraint": (b"code,delay\nAA,5\nCC,-1\n", 3, None, "violates check constraint"),
}


@pytest.mark.parametrize("case", sorted(CSV_FAULTS))
def test_a_csv_copy_error_names_key_real_line_column_and_is_recorded(
    warehouse, s3_client, bucket, case
) -> None:
    """Item 4: constraint violations surfaced as raw psycopg2 errors, one line off, unlogged."""
    body, line, column, reason = CSV_FAULTS[case]
    ensure_tables(warehouse, [])  # the ledger
    warehouse.execute(
        "create table public.pairs (code varchar(3) not null, delay integer check (delay >= 0))"
    )
    warehouse.execute("insert into public.pairs values ('OLD', 1)")
    s3_client.put_object(Bucket=bucket, Key="c/p.csv", Body=body)
    with pytest.raises(LoadError) as refused:
        ObjectLoader(warehouse, s3_client).load(
            LoadTarget("public", "pairs"), list_objects(s3_client, bucket, "c/"), Csv()
        )
    error = refused.value
    assert (error.key, error.line) == ("c/p.csv", line), str(error)
    if column:
        assert error.column == column, str(error)
    assert reason in str(error)
    assert warehouse.query("select * from public.pairs") == [("OLD", 1)]
    ((status, recorded),) = ledger(warehouse, "c/p.csv")
    assert status == "rejected" and recorded == str(error)


# a landing table's file; each refused line holds values ("secret...") no refusal may repeat
SECRET_FAULTS = {
    "not null": (b"user_id,name,level\n1,Ada,free\n77,,secret-level\n", 3, "name", "null value"),
    "type": (b"user_id,name,level\n1,Ada,free\nsecret77,Bob,free\n", 3, "user_id", "integer"),
    "range": (b"user_id,name,level\n99999999999977,Bob,free\n", 2, "user_id", "out of range"),
    "timestamp": (b"user_id,name,seen\n1,Ada,2026-13-77 secret\n", 2, "seen", "timestamp"),
    "no header": (b"77,secret-name,free\n2,Bob,free\n", 1, None, "header is not"),
}


@pytest.mark.parametrize("case", sorted(SECRET_FAULTS))
def test_a_refusal_names_line_and_column_but_never_the_rows_values(
    warehouse, s3_client, bucket, case
) -> None:
    """The ledger is served by the API: PostgreSQL's `Failing row contains (77, null, ...)`,
    the value it could not read, and a data line read as a header stay out of it."""
    body, line, column, reason = SECRET_FAULTS[case]
    ensure_tables(warehouse, [])  # the ledger
    warehouse.execute(
        "create table public.users (user_id integer not null, name varchar(20) not null,"
        " level varchar(12), seen timestamp)"
    )
    s3_client.put_object(Bucket=bucket, Key="landing/users.csv", Body=body)
    header = body.split(b"\n", 1)[0].decode()
    columns = tuple(header.split(",")) if case != "no header" else ("user_id", "name", "level")
    file_format = Csv(expected_header=",".join(columns), columns=columns)
    with pytest.raises(LoadError) as refused:
        ObjectLoader(warehouse, s3_client).load(
            LoadTarget("public", "users"),
            list_objects(s3_client, bucket, "landing/"),
            file_format,
        )
    ((status, recorded),) = ledger(warehouse, "landing/users.csv")
    assert status == "rejected" and recorded == str(refused.value)
    where = f"landing/users.csv: line {line}" + (f", column {column}: " if column else ": ")
    assert recorded.startswith(where) and reason in recorded, recorded
    for value in ("secret", "77", "Failing row", "Bob"):
        assert value not in recorded, recorded


@pytest.mark.parametrize(("strays", "count"), [({"ts": 1541116800000 + 5}, 11), ({"ts": None}, 1)])
def test_events_outside_their_files_day_are_refused_not_piled_up(
    warehouse, s3_client, bucket, strays, count
) -> None:
    """Item 2: a daily file carrying events stamped the next day: each reload deleted only the
    day's window and inserted the whole file (100 -> 111 -> 122 rows, checks green). Decided:
    a partition load may only publish rows of its partition; others are refused, so every
    reload replaces exactly what the previous one published."""
    from psycopg2 import sql

    ensure_tables(warehouse, t.ALL_TABLES)
    key = "logs/2018-11-01-events.json"
    day = ReplacePartition("2018-11-01", sql.SQL("ts >= 1541030400000 and ts < 1541116800000"))
    target = LoadTarget("sparkify", "staging_events", day)
    loader = ObjectLoader(warehouse, s3_client)
    good = [json.dumps(event(i)) for i in range(100)]
    s3_client.put_object(Bucket=bucket, Key=key, Body="\n".join(good).encode())
    loader.load(target, list_objects(s3_client, bucket, "logs/"), JSONPATHS, rows_match_source())
    bad = good + [json.dumps(event(100 + i, **strays)) for i in range(count)]
    for _ in range(2):  # two new versions: neither may add rows
        s3_client.put_object(Bucket=bucket, Key=key, Body="\n".join(bad + [" "]).encode())
        with pytest.raises(LoadError) as refused:
            loader.load(target, list_objects(s3_client, bucket, "logs/"), JSONPATHS)
        assert f"{key}: partition 2018-11-01: {count} row(s) fall outside" in str(refused.value)
        assert warehouse.query("select count(*) from sparkify.staging_events") == [(100,)]
    assert [s for s, _ in ledger(warehouse, key)] == ["loaded", "rejected", "rejected"]


ACCEPTED_ALIKE = {
    "csv with a BOM": (Csv(), b"\xef\xbb\xbfcode,delay\nAA,5\n"),
    "csv with trailing blank lines": (Csv(), b"code,delay\nAA,5\n\n\n"),
    "csv with CRLF and a trailing blank line": (Csv(), b"code,delay\r\nAA,5\r\n\r\n"),
    "json with a BOM": (JsonAuto(), b'\xef\xbb\xbf{"code": "AA", "delay": 5}\n'),
    "json with trailing blank lines": (JsonAuto(), b'{"code": "AA", "delay": 5}\n\n\n'),
}
REFUSED_ALIKE = {
    "json array": (b'[{"code": "AA", "delay": 5}]\n', 1, "top-level JSON array"),
    "json duplicate key": (
        b'{"code": "AA", "delay": 5}\n{"code": "BB", "delay": 5, "delay": 6}\n',
        2,
        "key 'delay' appears twice",
    ),
    "json duplicate key, spaced": (
        b'{"code": "AA", "delay" : 5, "delay" : 6}\n',
        1,
        "key 'delay' appears twice",
    ),
}


def _pairs(warehouse) -> None:
    ensure_tables(warehouse, [])  # the ledger
    warehouse.execute("create table public.pairs (code varchar(3), delay integer)")


@pytest.mark.parametrize("case", sorted(ACCEPTED_ALIKE))
def test_input_rules_accepted_on_every_path(warehouse, s3_client, bucket, case) -> None:
    """Item 6: a BOM and trailing blank lines are accepted in CSV and JSON alike."""
    file_format, body = ACCEPTED_ALIKE[case]
    _pairs(warehouse)
    s3_client.put_object(Bucket=bucket, Key="f/file", Body=body)
    ObjectLoader(warehouse, s3_client).load(
        LoadTarget("public", "pairs"),
        list_objects(s3_client, bucket, "f/"),
        file_format,
        rows_match_source(),
    )
    assert warehouse.query("select * from public.pairs") == [("AA", 5)]


@pytest.mark.parametrize("case", sorted(REFUSED_ALIKE))
def test_json_redshift_would_refuse_is_refused_here_too(warehouse, s3_client, bucket, case):
    """Item 6: a top-level array and duplicate keys were loaded here (the last value won)."""
    body, line, reason = REFUSED_ALIKE[case]
    _pairs(warehouse)
    s3_client.put_object(Bucket=bucket, Key="f/file.json", Body=body)
    with pytest.raises(LoadError) as refused:
        ObjectLoader(warehouse, s3_client).load(
            LoadTarget("public", "pairs"), list_objects(s3_client, bucket, "f/"), JsonAuto()
        )
    assert (refused.value.key, refused.value.line) == ("f/file.json", line)
    assert reason in str(refused.value)
    assert [s for s, _ in ledger(warehouse, "f/file.json")] == ["rejected"]


def test_a_lone_end_of_data_line_is_refused_not_ending_the_copy(warehouse, s3_client, bucket):
    """Item 4: PostgreSQL stopped reading at a line holding only `\\.` and dropped the rest."""
    ensure_tables(warehouse, [])
    warehouse.execute("create table public.notes (note varchar(8), n integer)")
    s3_client.put_object(Bucket=bucket, Key="n/a.csv", Body=b"note,n\na,1\n\\.\nb,2\n")
    with pytest.raises(LoadError) as refused:
        ObjectLoader(warehouse, s3_client).load(
            LoadTarget("public", "notes"), list_objects(s3_client, bucket, "n/"), Csv()
        )
    assert (refused.value.key, refused.value.line) == ("n/a.csv", 3)
    assert "end-of-data marker" in str(refused.value)
    s3_client.put_object(Bucket=bucket, Key="n/a.csv", Body=b'note,n\na,1\n"\\.",3\nb,2\n')
    ObjectLoader(warehouse, s3_client).load(
        LoadTarget("public", "notes"),
        list_objects(s3_client, bucket, "n/"),
        Csv(),
        rows_match_source(),
    )
    assert warehouse.query("select * from public.notes order by n") == [
        ("a", 1),
        ("b", 2),
        ("\\.", 3),
    ]


def test_lines_split_across_reads_are_counted_and_checked_whole() -> None:
    """The reader holds back an unfinished line between reads (tiny reads, every split)."""
    import io

    from etl_assets.loading.csv_stream import CsvHeaderReader

    body = b"h\n" + b"".join(b"row %d\n" % i for i in range(50)) + b"\\.\nlast\n"

    class Trickle(io.BytesIO):
        def read(self, size=-1):
            return super().read(3)

    reader = CsvHeaderReader(Trickle(body), "k", None, 3)
    seen = b""
    with pytest.raises(LoadError) as refused:
        while chunk := reader.read(3):
            seen += chunk
    assert refused.value.line == 52  # the header, 50 rows (lines 2-51), then the marker
    assert seen == b"".join(b"row %d\n" % i for i in range(50)).rstrip(b"\n")


def test_the_ledger_rows_of_a_load_are_written_by_few_statements(warehouse, s3_client, bucket):
    """Issue 10 item 8: one INSERT per file (15,000 for the full song data set) became one per
    500 files."""
    from etl_assets.loading import ledger
    from etl_assets.loading.ledger import LedgerEntry, SourceObject

    ensure_tables(warehouse, [])
    sources = [SourceObject(bucket, f"k/{i}.json", f"e{i}", 1) for i in range(1201)]
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        statements: list[str] = []
        execute = cur.execute

        class Counting:
            connection = cur.connection

            def execute(self, statement, params=None):
                statements.append(statement)
                execute(statement, params)

            def mogrify(self, statement, params=None):
                return cur.mogrify(statement, params)

        ledger.record(
            Counting(),
            [LedgerEntry(s, ledger.LOADED, 1, 1) for s in sources],
            load_id="l",
            target_table="t.t",
            partition_key=None,
            run_id=None,
        )
        conn.commit()
    assert len(statements) == 3
    assert warehouse.query("select count(*) from etl_audit.file_ledger") == [(1201,)]


@pytest.mark.parametrize("change", ["overwrite", "delete"])
def test_a_version_gone_since_listing_is_refused_by_name(
    warehouse, s3_client, bucket, change
) -> None:
    """The listed version is what the ledger would record: if S3 no longer has it, nothing
    of the newer bytes loads under the old ETag (issue 10 item 5, both dialects)."""
    ensure_tables(warehouse, t.ALL_TABLES)
    key = "songs/A/a.json"
    s3_client.put_object(Bucket=bucket, Key=key, Body=b'{"song_id": "S1"}\n')
    listed = list_objects(s3_client, bucket, "songs/")
    if change == "overwrite":
        s3_client.put_object(Bucket=bucket, Key=key, Body=b'{"song_id": "S2"}\n')
    else:
        s3_client.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(LoadError, match="is no longer in the bucket") as refused:
        ObjectLoader(warehouse, s3_client).load(
            LoadTarget("sparkify", "staging_songs"), listed, JsonAuto()
        )
    assert refused.value.key == key and listed[0].etag in str(refused.value)
    assert warehouse.query("select count(*) from sparkify.staging_songs") == [(0,)]
    assert [status for status, _ in ledger(warehouse, key)] == ["rejected"]
