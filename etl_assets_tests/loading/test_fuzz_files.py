"""Seeded hostile files per format (CSV, newline-delimited JSON, pretty JSON) through the loader
on the real local stack. For each file: the process survives (no exception but a refusal,
no signal), the file gets exactly one verdict in the ledger, a refusal names where, and the
published rows are either unchanged or exactly the file's.

`ETL_FUZZ_CASES` (default 30 per format) and `ETL_FUZZ_SEED` widen the run (`make test-fuzz`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
from collections.abc import Callable

import pytest
from psycopg2 import sql

from etl_assets.lib.checks import combine, no_key_drift, rows_match_source
from etl_assets.loading.errors import LoadError
from etl_assets.loading.formats import Csv, JsonAuto, JsonPaths
from etl_assets.loading.loader import LoadTarget, ObjectLoader
from etl_assets.loading.sources import list_objects
from etl_assets.loading.tables import as_on_redshift, ensure_tables

CASES = int(os.environ.get("ETL_FUZZ_CASES", "30"))
SEED = int(os.environ.get("ETL_FUZZ_SEED", "20261206"))
COLUMNS = ("id", "name", "amount", "flag", "at")
DDL = (
    "create table fuzz.t (id integer not null, name varchar(8), amount double precision,"
    " flag boolean, at timestamp)"
)
JSONPATHS = JsonPaths.parse(
    "fuzz/paths.json", json.dumps({"jsonpaths": [f"$['{c}']" for c in COLUMNS]})
)


def good_record(rng: random.Random, i: int) -> dict:
    return {
        "id": i,
        "name": rng.choice(["Ann", "Bo", "Zoë", "a,b", 'q"t', ""]),
        "amount": rng.choice([0.5, -1.25, 1e-7, 12.0]),
        "flag": rng.choice([True, False]),
        "at": rng.choice(["2026-11-01 10:00:00", "2026-11-02 23:59:59.5"]),
    }


# ---- hostile mutations, each (rng, text) -> text ------------------------------------------

HOSTILE_VALUES = [
    "NaN",
    "Infinity",
    "-inf",
    "1e309",
    "9223372036854775808",
    "0x10",
    "today",
    "epoch",
    "2026-11-01 10:00:00+05:00",
    "é" * 9,
    "\x00",
    "\x1b[31m",
    "\\.",
    "true",
    "",
    " ",
    "1" * 5000,
    '"',
    "\ufeff",
    "\u2028",
    "--1",
]


def _csv_text(records: list[dict], rng: random.Random) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=rng.choice(["\n", "\r\n"]))
    writer.writerow(COLUMNS)
    for r in records:
        writer.writerow(["" if r[c] is None else r[c] for c in COLUMNS])
    return out.getvalue()


def hostile_csv(rng: random.Random) -> bytes:
    records = [good_record(rng, i) for i in range(rng.randint(1, 30))]
    for _ in range(rng.randint(0, 3)):
        record = rng.choice(records)
        record[rng.choice(COLUMNS)] = rng.choice(HOSTILE_VALUES)
    text = _csv_text(records, rng)
    return _byte_damage(rng, text.encode())


def hostile_ndjson(rng: random.Random) -> bytes:
    records = [good_record(rng, i) for i in range(rng.randint(1, 30))]
    lines = [json.dumps(r) for r in records]
    for _ in range(rng.randint(0, 3)):
        i = rng.randrange(len(lines))
        kind = rng.randrange(8)
        if kind == 0:
            depth = rng.choice([70, 1000, 5000])  # past the fast path, near each parser's limit
            lines[i] = '{"id": 1, "deep": ' + '{"a":' * depth + "1" + "}" * depth + "}"
        elif kind == 1:
            lines[i] = lines[i].replace('"amount": ', '"amount": NaN, "x": ', 1)
        elif kind == 2:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif kind == 3:
            lines[i] = '{"id": 1, "id": 2}'
        elif kind == 4:
            lines[i] = json.dumps([1, 2, 3])
        elif kind == 5:
            try:
                record = json.loads(lines[i])
                record[rng.choice(COLUMNS)] = rng.choice(HOSTILE_VALUES)
                lines[i] = json.dumps(record)
            except (ValueError, TypeError, RecursionError):
                pass  # an earlier mutation made it something else
        elif kind == 6:
            lines[i] = ""
        else:
            lines[i] = lines[i].replace('"name": ', '"name": {"nested": ', 1)[:-1] + "}}"
    return _byte_damage(rng, "\n".join(lines).encode())


def hostile_pretty_json(rng: random.Random) -> bytes:
    record = good_record(rng, rng.randint(0, 9))
    if rng.random() < 0.5:
        record[rng.choice(COLUMNS)] = rng.choice(HOSTILE_VALUES)
    if rng.random() < 0.2:
        record["name"] = {"a": [[[[1]]]]}
    text = json.dumps(record, indent=rng.choice([2, 4]), ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.15:
        text = text + "\n" + text  # two documents
    return _byte_damage(rng, text.encode())


def _byte_damage(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(10)
    if kind == 0 and data:
        return data[: rng.randrange(len(data))]  # truncated
    if kind == 1:
        return data.replace(b"o", b"\xff\xfe", 1)  # not UTF-8
    if kind == 2:
        return b"\xef\xbb\xbf" + data  # a BOM
    if kind == 3:
        return data.decode("utf-8", "replace").encode("utf-16")
    if kind == 4:
        return b""
    return data


# ---- the run ------------------------------------------------------------------------------


FORMATS: dict[str, tuple[Callable[[random.Random], bytes], object]] = {
    "csv": (hostile_csv, Csv(columns=COLUMNS)),
    "ndjson": (hostile_ndjson, JSONPATHS),
    "pretty-json": (hostile_pretty_json, JsonAuto()),
}


@pytest.fixture
def fuzz_table(warehouse, s3_client, bucket):
    ensure_tables(warehouse, [])  # the ledger
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute("create schema fuzz")
        cur.execute(DDL)
        as_on_redshift(cur, "fuzz", "t")
        cur.execute(
            "insert into fuzz.t values (-1, 'kept', 1.5, true, '2026-01-01 00:00:00')"
        )  # published rows a refusal must leave as they are
        conn.commit()
    s3_client.put_object(Bucket=bucket, Key="fuzz/paths.json", Body=b"{}")
    return warehouse


def published(warehouse) -> list[tuple]:
    return warehouse.query(sql.SQL("select * from fuzz.t order by id, name"))


@pytest.mark.parametrize("kind", list(FORMATS))
def test_hostile_files_end_with_one_verdict_and_never_half_a_file(
    fuzz_table, s3_client, bucket, kind: str
) -> None:
    make, file_format = FORMATS[kind]
    rng = random.Random(f"{SEED}:{kind}")
    loader = ObjectLoader(fuzz_table, s3_client, run_id="fuzz")
    checks = combine(rows_match_source(), no_key_drift())
    refusals = 0
    for case in range(CASES):
        body = make(rng)
        key = f"fuzz/{kind}/{case:04d}.data"
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)
        objects = [o for o in list_objects(s3_client, bucket, f"fuzz/{kind}/") if o.key == key]
        before = published(fuzz_table)
        what = f"{kind} case {case} (seed {SEED}): {body[:300]!r}"
        try:
            result = loader.load(LoadTarget("fuzz", "t"), objects, file_format, checks)
        except LoadError as error:
            refusals += 1
            assert error.key == key and (error.line or "file" in str(error)), what
            assert published(fuzz_table) == before, what
            status = "rejected"
        else:
            status = "loaded" if result.status == "published" else "rejected"
            if status == "loaded":
                assert len(published(fuzz_table)) == result.records, what
            else:
                assert published(fuzz_table) == before, what
        verdicts = fuzz_table.query(
            "select status from etl_audit.file_ledger where object_key = %s", (key,)
        )
        assert verdicts == [(status,)], what
    assert 0 < refusals < CASES  # the generator made both good and hostile files
