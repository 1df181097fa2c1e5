"""Issue 12: the pyarrow fast path for newline-delimited JSON gives what the line-by-line reader
gives — the same rows, record numbers, key sets (drift) and refusals — or declines the chunk."""

from __future__ import annotations

import io
import json
import random
import threading
from datetime import date
from unittest import mock

import pytest

from etl_assets.defs.sparkify import tables as t
from etl_assets.defs.sparkify.sample_data import iter_day_events, make_songs, make_users
from etl_assets.lib.checks import no_key_drift
from etl_assets.loading.errors import LoadError
from etl_assets.loading.json_arrow import ArrowRows
from etl_assets.loading.json_stream import JsonRowReader
from etl_assets.loading.loader import ObjectLoader
from etl_assets.loading.sources import list_objects
from etl_assets.loading.tables import ensure_tables
from etl_assets_tests.loading.test_loader import EVENTS, JSONPATHS

# (key, PostgreSQL type OID): text, integer, double, boolean, bigint, a date read as text
COLUMNS = [("name", 1043), ("n", 23), ("x", 701), ("ok", 16), ("ts", 20), ("day", 1082)]
PATHS = [(key,) for key, _ in COLUMNS]
FLOATS = {i for i, (_, oid) in enumerate(COLUMNS) if oid == 701}


def clean_record(rng: random.Random) -> dict:
    return {
        "name": rng.choice(["Ann", "Bo", "", "Zoë", 'say "hi"', "a,b", "x:null"]),
        "n": rng.randint(-5, 10**6),
        "x": rng.choice([0.5, 1.0, 1e-7, 1540919166796.0, -0.0, 3.0000000000000004, 12]),
        "ok": rng.choice([True, False]),
        "ts": rng.randint(0, 2**62),
        "day": rng.choice(["2018-11-01", None]),
    }


def hazard(rng: random.Random, record: dict) -> bytes:
    """One line a real file might hold and COPY accepts, clean most of the time."""
    kind = rng.randrange(300)  # one line in 30 has a hazard: some chunks have none
    if kind == 0:
        record.pop(rng.choice(list(record)))  # a key absent (drift)
    elif kind == 1:
        record["extra"] = rng.choice([1, "x", None, {"n": 1}])  # a key no column maps
    elif kind == 2:
        record["name"] = "tab\there\\back\nnew\rret\u0001"  # COPY escapes
    elif kind == 3:
        record["name"] = rng.choice(['a "name":null inside', "a 'name':null"])
    elif kind == 4:
        record["n"] = rng.choice(["12", 1.5, 2**63, None, True])  # a value of another type
    elif kind == 5:
        return b""  # a blank line
    elif kind == 6:
        return b"  " + json.dumps(record).encode()  # leading spaces
    elif kind == 7:
        return json.dumps(record).encode().replace(b'"x": ', b'"x" :', 1)  # spaced key
    elif kind == 8:
        record["name"] = {"nested": "object"}
    elif kind == 9:
        record["x"] = None
    compact = rng.random() < 0.5
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(record, ensure_ascii=not compact, separators=separators).encode()


def refused_line(rng: random.Random, kind: int) -> bytes:
    """A whole record but for one fault no reader accepts."""
    record = clean_record(rng) | {"day": "2018-11-01"}  # no null: nothing else declines it
    if kind == 5:
        record["x"] = float("nan")  # json.dumps writes NaN, which JSON does not have
    if kind == 6:
        record["x"] = float("inf")
    full = json.dumps(record).encode()
    faults = [
        full[: len(full) // 2],  # cut
        full.replace(b'"name": "', b'"name": "\xff', 1),  # not UTF-8
        b"[" + full + b"]",
        full.replace(b'"n": ', b'"n": 0', 1),  # a leading zero
        full.replace(b'"n": ', b'"n": 1, "n": ', 1),  # a key named twice
        full,
        full,
        full + b" " + full,  # two objects on a line
        full + b" " + full + b"\n",  # the same, then a blank line
    ]
    return faults[kind]


def random_file(seed: int, lines: int, broken: bool) -> bytes:
    rng = random.Random(seed)
    out = [hazard(rng, clean_record(rng)) for _ in range(lines)]
    if broken:  # a line no reader accepts, after the first chunks, among clean lines
        at = rng.randrange(lines // 2, lines - 100)
        out[at - 100 : at + 100] = [json.dumps(clean_record(rng)).encode() for _ in range(200)]
        out[at] = refused_line(rng, seed // 2 % 9)
    return b"\n".join(out) + rng.choice([b"\n", b""])


def read_everything(data: bytes, fast: ArrowRows | None, chunk: int) -> dict:
    reader = JsonRowReader(io.BytesIO(data), "k.json", PATHS, chunk, fast=fast)
    out, error = b"", None
    try:
        while piece := reader.read(1 << 16):
            out += piece
    except LoadError as refused:
        error = (refused.key, refused.line, refused.reason)
    finally:
        reader.close()
    return {
        "rows": [_comparable(row) for row in out.decode().split("\n")[:-1]],
        "error": error,
        "records": reader.records,
        "lines": [reader.source_line(n) for n in range(1, reader.records + 1)],
        "key_sets": reader.key_sets,
    }


def _comparable(row: str) -> list:
    """A row's fields; doubles as numbers (pyarrow writes 1.0 as '1', Python as '1.0', and
    PostgreSQL reads both as the same double)."""
    fields: list = row.split("\t")
    for i in FLOATS:
        if fields[i] != "\\N":
            fields[i] = float(fields[i])
    return fields


def fast_path() -> ArrowRows:
    fast = ArrowRows.for_columns(PATHS, [oid for _, oid in COLUMNS], ignore_case=False)
    assert fast is not None
    return fast


@pytest.mark.parametrize("seed", range(18))
def test_the_fast_path_reads_what_the_line_by_line_reader_reads(seed: int, monkeypatch) -> None:
    data = random_file(seed, lines=3_000, broken=seed % 2 == 0)
    chunk = random.Random(seed).choice([2_000, 4_096, 8_192])
    expected = read_everything(data, None, chunk)
    taken: list[bool] = []
    monkeypatch.setattr(ArrowRows, "rows", _spy(ArrowRows.rows, taken))
    got = read_everything(data, fast_path(), chunk)
    if expected["error"] is not None:  # COPY is cancelled: how far it had got may differ
        shorter = min(len(got["rows"]), len(expected["rows"]))
        assert got.pop("rows")[:shorter] == expected.pop("rows")[:shorter]
    assert got == expected
    assert True in taken and False in taken  # both readers had a share of the file
    if seed % 2 == 0:
        assert expected["error"] is not None


def test_clean_chunks_take_the_fast_path_and_a_bad_one_is_read_line_by_line(
    monkeypatch,
) -> None:
    records = [clean_record(random.Random(i)) for i in range(2_000)]
    records[1_500]["n"] = str(records[1_500]["n"])  # a JSON string for an integer column
    taken: list[bool] = []
    monkeypatch.setattr(ArrowRows, "rows", _spy(ArrowRows.rows, taken))
    data = b"\n".join(json.dumps(record).encode() for record in records) + b"\n"
    result = read_everything(data, fast_path(), 16_384)
    assert result["records"] == 2_000 and result["error"] is None
    assert len(taken) > 10 and taken.count(False) == 1  # only the chunk holding line 1,501
    assert result["rows"][1_500][1] == records[1_500]["n"]  # as text, for COPY to read


def _spy(rows, taken: list[bool]):
    def spying(self, text):
        converted = rows(self, text)
        taken.append(converted is not None)
        return converted

    return spying


def test_a_missing_key_in_a_fast_chunk_is_drift_not_a_null() -> None:
    lines = [json.dumps(clean_record(random.Random(i))) for i in range(1_000)]
    record = json.loads(lines[700])
    del record["ts"]
    lines[700] = json.dumps(record)
    result = read_everything("\n".join(lines).encode(), fast_path(), 1 << 20)
    assert frozenset(key for key, _ in COLUMNS) - {"ts"} in result["key_sets"]


def test_the_fast_path_applies_to_top_level_keys_only() -> None:
    oids = [1043, 1043]
    assert ArrowRows.for_columns([("a",), ("b",)], oids, ignore_case=False) is not None
    assert ArrowRows.for_columns([("a",), ("b", "c")], oids, ignore_case=False) is None
    assert ArrowRows.for_columns([("a",), ("a",)], oids, ignore_case=False) is None
    assert ArrowRows.for_columns([("a",), ("b",)], oids, ignore_case=True) is None


def test_a_reader_closed_mid_file_leaves_no_thread_behind() -> None:
    data = b"\n".join(json.dumps(clean_record(random.Random(i))).encode() for i in range(5_000))
    reader = JsonRowReader(io.BytesIO(data), "k.json", PATHS, 8_192, fast=fast_path())
    reader.read(100)
    assert any(t.name.startswith("json-fast-path") for t in threading.enumerate())
    reader.close()
    assert not any(t.name.startswith("json-fast-path") for t in threading.enumerate())


def no_nulls(i: int) -> bytes:
    return json.dumps(clean_record(random.Random(i)) | {"day": "2018-11-01"}).encode()


@pytest.mark.parametrize(
    "odd_line",
    [
        no_nulls(0) + b" " + no_nulls(1),  # two records on one line
        no_nulls(0) + b" " + no_nulls(1) + b"\n",  # the same, and a blank line after it
        no_nulls(0).replace(b'"ts": ', b'"ts": NaN, "t": '),
        no_nulls(0).replace(b'"name": "', b'"name": "\xe9'),  # Latin-1, not UTF-8
        no_nulls(0).replace(b'"ts": ', b'"other": 1, "ts": '),  # a key no column maps
        no_nulls(0).replace(b'"ts": ', b'"t": '),  # a key missing, no null to hint at it
        no_nulls(0).replace(b'"ts": ', b'"ts": 1, "ts": '),  # a key named twice
    ],
)
def test_a_chunk_with_a_line_that_is_not_one_plain_record_is_declined(odd_line: bytes) -> None:
    lines = [no_nulls(i) for i in range(2, 40)]
    lines[20] = odd_line
    assert fast_path().rows(b"\n".join(lines) + b"\n") is None
    clean = [no_nulls(i) for i in range(2, 40)]
    assert fast_path().rows(b"\n".join(clean) + b"\n") is not None


def app_events(count: int) -> list[dict]:
    """Events as the app logs them (nulls for logged-out users, quoted user agents)."""
    rng = random.Random(7)
    songs, users = make_songs(rng, 50), make_users(rng, 20)
    return list(iter_day_events(rng, date(2018, 11, 3), count, users, songs))


def load_logs(warehouse, s3_client, bucket: str, key: str, body: bytes, fast: bool):
    s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    loader = ObjectLoader(warehouse, s3_client, run_id="test-run")
    objects = [o for o in list_objects(s3_client, bucket, "logs/") if o.key == key]
    if fast:
        return loader.load(EVENTS, objects, JSONPATHS, no_key_drift())
    with mock.patch.object(ArrowRows, "for_columns", return_value=None):
        return loader.load(EVENTS, objects, JSONPATHS, no_key_drift())


def test_the_warehouse_gets_the_same_rows_and_drift_report_either_way(
    warehouse, s3_client, bucket, monkeypatch
) -> None:
    ensure_tables(warehouse, t.ALL_TABLES)
    lines = [json.dumps(e, separators=(",", ":")) for e in app_events(30_000)]
    lines[10] = json.dumps(json.loads(lines[10]) | {"song": "tab\there", "artist": "back\\"})
    taken: list[bool] = []
    monkeypatch.setattr(ArrowRows, "rows", _spy(ArrowRows.rows, taken))
    snapshot = "select * from sparkify.staging_events order by ts, session_id, item_in_session"
    clean = "\n".join(lines).encode()
    load_logs(warehouse, s3_client, bucket, "logs/fast.json", clean, fast=True)
    fast_rows = warehouse.query(snapshot)
    assert True in taken  # that load did take the fast path
    load_logs(warehouse, s3_client, bucket, "logs/slow.json", clean, fast=False)
    assert len(fast_rows) == 30_000 and warehouse.query(snapshot) == fast_rows

    lines[25_000] = lines[25_000].replace('"song":', '"title":')  # a renamed key: drift
    drifted = "\n".join(lines).encode()
    reports = [
        load_logs(warehouse, s3_client, bucket, f"logs/drift-{fast}.json", drifted, fast)
        for fast in (True, False)
    ]
    details = [result.checks[0].detail.split(": ", 1)[1] for result in reports]
    assert details == ["missing ['song'], unknown ['title']"] * 2
    assert all(result.status == reports[0].status != "published" for result in reports)


def test_a_value_the_warehouse_refuses_in_a_fast_chunk_is_named_by_its_file_line(
    warehouse, s3_client, bucket
) -> None:
    ensure_tables(warehouse, t.ALL_TABLES)
    lines = [json.dumps(e, separators=(",", ":")) for e in app_events(20_000)]
    record = json.loads(lines[15_000])
    record["sessionId"] = 2**40  # integer column: PostgreSQL refuses it, pyarrow does not
    lines[15_000] = json.dumps(record, separators=(",", ":"))
    lines.insert(2, "")  # a blank line: every later record is one line further down
    with pytest.raises(LoadError) as refused:
        load_logs(warehouse, s3_client, bucket, "logs/big.json", "\n".join(lines).encode(), True)
    assert (refused.value.line, refused.value.column) == (15_002, "session_id")
    assert "out of range" in refused.value.reason


class CountingBody(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


@pytest.mark.parametrize("fast", [True, False])
def test_a_line_over_4_mb_is_refused_without_reading_the_rest(fast: bool) -> None:
    """A file without newlines (objects separated by spaces, or one huge object) would
    otherwise be held whole in memory before its first line could be read."""
    head = b"\n".join(no_nulls(i) for i in range(2)) + b"\n"
    body = CountingBody(head + (b'{"name": "' + b"x" * 200 + b'"} ') * 100_000)
    reader = JsonRowReader(body, "k.json", PATHS, 1 << 20, fast=fast_path() if fast else None)
    with pytest.raises(LoadError) as refused:
        while reader.read(1 << 20):
            pass
    reader.close()
    assert refused.value.line == 3 and "line longer than 4194304 bytes" in refused.value.reason
    assert body.bytes_read <= 4 * 1024 * 1024 + 2 * (1 << 20)  # of a 21 MB file


def test_an_unexpected_error_in_the_fast_path_fails_the_read(monkeypatch) -> None:
    """The converting thread's exception reaches COPY's reader: nothing is loaded quietly."""

    def broken(self, text):
        raise MemoryError("pyarrow ran out")

    monkeypatch.setattr(ArrowRows, "rows", broken)
    data = b"\n".join(no_nulls(i) for i in range(100)) + b"\n"
    reader = JsonRowReader(io.BytesIO(data), "k.json", PATHS, 1 << 20, fast=fast_path())
    with pytest.raises(MemoryError, match="pyarrow ran out"):
        reader.read(1 << 20)
    reader.close()


@pytest.mark.parametrize("where", ["unmapped", "mapped", "after a string of ]"])
def test_a_value_nested_100000_deep_never_reaches_pyarrow(where: str) -> None:
    """pyarrow's JSON parser recurses per level: a line nesting an unmapped value 100,000 deep
    killed the process with SIGSEGV. Such a chunk is declined (the line-by-line reader
    refuses it with its line number). Run in a child process: a crash is a signal there."""
    import subprocess
    import sys

    deep = "[" * 100_000 + "]" * 100_000
    fields = '"n": 1, "x": 0.5, "ok": true, "ts": 1, "day": null'
    record = {
        "unmapped": f'{{"name": "Ann", {fields}, "deep": {deep}}}',
        "mapped": f'{{"name": {deep}, {fields}}}',
        "after a string of ]": f'{{"name": "{"]" * 200_000}", {fields}, "d": {deep}}}',
    }[where]
    code = (
        "import sys\n"
        "from etl_assets.loading.json_arrow import ArrowRows\n"
        "from etl_assets_tests.loading.test_json_fast_path import COLUMNS, PATHS\n"
        "rows = ArrowRows.for_columns(PATHS, [oid for _, oid in COLUMNS], False)\n"
        "text = sys.stdin.buffer.read()\n"
        "print(rows.rows(text) is None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=(record + "\n").encode(),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == b"True"
    reader = JsonRowReader(io.BytesIO((record + "\n").encode()), "deep.json", PATHS, 1 << 20)
    with pytest.raises(LoadError) as refused:
        reader.read()
    assert refused.value.line == 1
