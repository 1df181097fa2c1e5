"""The loader, publish modes, checks, refusals and every domain, run on a real warehouse: the
local PostgreSQL in `make test`, a Redshift cluster or Serverless workgroup in
`make test-redshift` (see conftest). Each test works in a schema of its own and drops it."""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg2 import sql

from etl_assets import domains
from etl_assets.demo import Report, reset_domain, run_domain
from etl_assets.lib.checks import combine, rows_match_source, unique_not_null
from etl_assets.loading.errors import LoadError
from etl_assets.loading.formats import Csv, FileFormat, JsonAuto
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.loader import LoadResult, LoadTarget, ObjectLoader
from etl_assets.loading.publish import Append, MergeByKey, Replace, ReplacePartition, Snapshot
from etl_assets.loading.sources import list_objects
from etl_assets.loading.tables import ensure_tables, widths_in_bytes
from etl_assets_tests.on_warehouse.conftest import Target

HEADER = b"id,day,name\n"
CSV = Csv()


@pytest.fixture
def schema(target: Target) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    ensure_tables(target.warehouse, [])  # the ledger
    with target.warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("create schema {}").format(sql.Identifier(name)))
        cur.execute(
            sql.SQL("create table {} (id integer, day varchar(10), name varchar(8))").format(
                sql.Identifier(name, "events")
            )
        )
        if not target.warehouse.is_redshift:
            widths_in_bytes(cur, name, "events")
        conn.commit()
    yield name
    target.warehouse.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))


def _put(target: Target, name: str, body: bytes) -> list[SourceObject]:
    key = target.prefix + name
    target.s3.put_object(Bucket=target.bucket.bucket, Key=key, Body=body)
    return list_objects(target.s3, target.bucket.bucket, key)


def _load(target: Target, schema: str, mode, objects, file_format: FileFormat = CSV) -> LoadResult:
    checks = combine(rows_match_source(), unique_not_null("id", "day"))
    return ObjectLoader(target.warehouse, target.s3).load(
        LoadTarget(schema, "events", mode), objects, file_format, checks
    )


def _rows(target: Target, schema: str) -> list[tuple]:
    return target.warehouse.query(
        sql.SQL("select id, day, name from {} order by day, id").format(
            sql.Identifier(schema, "events")
        )
    )


def _csv(*rows: tuple) -> bytes:
    return HEADER + b"".join(f"{i},{d},{n}\n".encode() for i, d, n in rows)


@pytest.mark.parametrize("mode", [Replace(), Snapshot()], ids=["replace", "snapshot"])
def test_a_whole_table_replace(target, schema, mode) -> None:
    first = _put(target, "a.csv", _csv((1, "d1", "a"), (2, "d1", "b"), (3, "d2", "c")))
    result = _load(target, schema, mode, first)
    assert result.status == "published" and [f.records for f in result.files] == [3]
    assert all(o.passed for o in result.checks)
    assert _load(target, schema, mode, first).status == "up_to_date"
    second = _put(target, "b.csv", _csv((7, "d3", "z")))
    assert _load(target, schema, mode, second).status == "published"
    assert _rows(target, schema) == [(7, "d3", "z")]


def test_a_partition_replace_keeps_the_other_partitions(target, schema) -> None:
    def day(d: str) -> ReplacePartition:
        return ReplacePartition(d, sql.SQL("day = {}").format(sql.Literal(d)))

    _load(target, schema, day("d1"), _put(target, "d1.csv", _csv((1, "d1", "a"), (2, "d1", "b"))))
    _load(target, schema, day("d2"), _put(target, "d2.csv", _csv((1, "d2", "c"))))
    again = _put(target, "d1.csv", _csv((3, "d1", "new")))
    assert _load(target, schema, day("d1"), again).status == "published"
    assert _rows(target, schema) == [(3, "d1", "new"), (1, "d2", "c")]
    outside = _put(target, "d1.csv", _csv((4, "d9", "x")))
    with pytest.raises(LoadError, match="fall outside the partition"):
        _load(target, schema, day("d1"), outside)
    assert _rows(target, schema) == [(3, "d1", "new"), (1, "d2", "c")]


def test_appends_and_merges_apply_each_file_once(target, schema) -> None:
    one = _put(target, "1.csv", _csv((1, "d1", "a"), (2, "d1", "b")))
    two = _put(target, "2.csv", _csv((3, "d1", "c")))
    assert _load(target, schema, Append(), one + two).status == "published"
    assert _load(target, schema, Append(), one + two).status == "up_to_date"
    assert len(_rows(target, schema)) == 3
    merge = MergeByKey(("id", "day"))
    update = _put(target, "3.csv", _csv((3, "d1", "C"), (4, "d1", "d")))
    assert _load(target, schema, merge, update).status == "published"
    assert _rows(target, schema) == [(1, "d1", "a"), (2, "d1", "b"), (3, "d1", "C"), (4, "d1", "d")]


def test_json_records_are_counted_as_records(target, schema) -> None:
    lines = _put(target, "a.json", b'{"id": 1, "day": "d1", "name": "a"}\n{"id": 2, "day": "d1"}\n')
    pretty = _put(target, "b.json", b'{\n  "id": 3,\n  "day": "d2",\n  "name": "c"\n}\n')
    result = _load(target, schema, Replace(), lines + pretty, JsonAuto())
    assert result.status == "published", result.checks
    assert sorted(f.records for f in result.files) == [1, 2]
    assert _rows(target, schema) == [(1, "d1", "a"), (2, "d1", None), (3, "d2", "c")]


def test_a_bad_value_is_refused_with_its_file_line_and_column(target, schema) -> None:
    published = _put(target, "good.csv", _csv((1, "d1", "a")))
    _load(target, schema, Replace(), published)
    bad = _put(target, "bad.csv", HEADER + b"2,d1,b\n3,d1,c\nx,d1,d\n")
    with pytest.raises(LoadError) as refused:
        _load(target, schema, Replace(), bad)
    error = refused.value
    assert (error.key, error.line, error.column) == (bad[0].key, 4, "id")
    assert _rows(target, schema) == [(1, "d1", "a")]  # what was published stays
    statuses = target.warehouse.query(
        "select status from etl_audit.file_ledger where object_key = %s", (bad[0].key,)
    )
    assert statuses == [("rejected",)]


def test_a_value_wider_in_bytes_than_its_column_is_refused(target, schema) -> None:
    """name is VARCHAR(8): 'Fémininé' is 8 characters and 10 bytes."""
    wide = _put(target, "wide.csv", "id,day,name\n1,d1,ok\n2,d1,Fémininé\n".encode())
    with pytest.raises(LoadError) as refused:
        _load(target, schema, Replace(), wide)
    assert (refused.value.line, refused.value.column) == (3, "name")


def test_a_reordered_header_and_an_empty_file_are_refused(target, schema) -> None:
    fmt = Csv(expected_header="id,day,name")
    reordered = _put(target, "r.csv", b"day,id,name\nd1,1,a\n")
    with pytest.raises(LoadError, match="header is 'day,id,name'"):
        _load(target, schema, Replace(), reordered, fmt)
    empty = _put(target, "e.json", b"\n")
    with pytest.raises(LoadError, match="empty file"):
        _load(target, schema, Replace(), empty, JsonAuto())


def test_two_loads_of_one_table_at_once_publish_one_after_the_other(target, schema) -> None:
    files = [_put(target, f"{n}.csv", _csv((n, "d1", "x"), (n + 10, "d1", "y"))) for n in (1, 2)]
    results: list[LoadResult] = []
    errors: list[BaseException] = []

    def load(objects) -> None:
        try:
            results.append(_load(target, schema, Append(), objects))
        except BaseException as error:  # a thread's failure must fail the test
            errors.append(error)

    threads = [threading.Thread(target=load, args=(f,)) for f in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.status for r in results) == ["published", "published"]
    assert len(_rows(target, schema)) == 4


@pytest.mark.parametrize("name", [d.name for d in domains.discover() if d.write_sample])
def test_every_domain_runs_end_to_end_on_its_sample(target, name) -> None:
    """Each domain's generated sample, uploaded and run as the demo does. On Redshift this
    drops and recreates the domain's schema: a scratch database and bucket only."""
    domain = next(d for d in domains.discover() if d.name == name)
    report = Report()
    with tempfile.TemporaryDirectory() as folder:
        domain.write_sample(Path(folder))
        reset_domain(target.warehouse, target.s3, target.bucket.bucket, domain)
        run_domain(report, domain, target.warehouse, target.bucket, Path(folder) / name)
    assert report.failed_errors == []
    assert report.tables and all(rows > 0 for rows in report.tables.values()), report.tables
