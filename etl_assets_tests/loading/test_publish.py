"""Publish modes and writer safety on the real local PostgreSQL."""

import threading
from pathlib import Path

import pytest
from psycopg2 import sql

from etl_assets.lib.checks import combine, rows_match_source, unique_not_null
from etl_assets.loading.formats import Csv
from etl_assets.loading.loader import LoadTarget, ObjectLoader, rebuild_table
from etl_assets.loading.publish import Append, MergeByKey, Replace, ReplacePartition
from etl_assets.loading.sources import list_objects
from etl_assets.loading.tables import TableSpec, ensure_tables


@pytest.fixture
def items(warehouse):
    ensure_tables(warehouse, [])  # the ledger
    warehouse.execute("create table public.items (id integer, day integer, v varchar(8))")
    return warehouse


def put(s3_client, bucket: str, key: str, rows: list[tuple]) -> None:
    body = "id,day,v\n" + "".join(f"{i},{d},{v}\n" for i, d, v in rows)
    s3_client.put_object(Bucket=bucket, Key=key, Body=body.encode())


def load(warehouse, s3_client, bucket: str, mode, prefix: str = "items/", checks=None):
    objects = list_objects(s3_client, bucket, prefix)
    return ObjectLoader(warehouse, s3_client).load(
        LoadTarget("public", "items", mode), objects, Csv(), checks or rows_match_source()
    )


def rows(warehouse) -> list[tuple]:
    return warehouse.query("select id, day, v from public.items order by id, day, v")


def test_append_adds_each_file_version_once(items, s3_client, bucket):
    put(s3_client, bucket, "items/a.csv", [(1, 1, "a"), (2, 1, "a")])
    assert load(items, s3_client, bucket, Append()).rows_published == 2
    put(s3_client, bucket, "items/b.csv", [(3, 2, "b")])
    second = load(items, s3_client, bucket, Append())
    assert (second.status, [f.source.key for f in second.files]) == ("published", ["items/b.csv"])
    again = load(items, s3_client, bucket, Append())
    assert again.status == "up_to_date" and all(o.passed for o in again.checks)
    assert rows(items) == [(1, 1, "a"), (2, 1, "a"), (3, 2, "b")]
    put(s3_client, bucket, "items/b.csv", [(4, 2, "b2")])  # a new version of b: appended too
    load(items, s3_client, bucket, Append())
    assert [r[0] for r in rows(items)] == [1, 2, 3, 4]


def test_merge_updates_existing_keys_and_inserts_the_others(items, s3_client, bucket):
    merge = MergeByKey(("id",))
    checks = combine(rows_match_source(), unique_not_null("id"))
    put(s3_client, bucket, "items/a.csv", [(1, 1, "x"), (2, 1, "y")])
    load(items, s3_client, bucket, merge, checks=checks)
    put(s3_client, bucket, "items/b.csv", [(2, 2, "z"), (3, 2, "w")])
    result = load(items, s3_client, bucket, merge, checks=checks)
    assert result.status == "published"
    assert rows(items) == [(1, 1, "x"), (2, 2, "z"), (3, 2, "w")]


def test_merge_refuses_a_file_with_a_duplicated_key_and_changes_nothing(items, s3_client, bucket):
    checks = combine(rows_match_source(), unique_not_null("id"))
    put(s3_client, bucket, "items/a.csv", [(1, 1, "x")])
    load(items, s3_client, bucket, MergeByKey(("id",)), checks=checks)
    put(s3_client, bucket, "items/b.csv", [(5, 2, "p"), (5, 2, "q")])
    result = load(items, s3_client, bucket, MergeByKey(("id",)), checks=checks)
    assert result.status == "rejected"
    assert "5 x2" in next(o.detail for o in result.checks if not o.passed)
    assert rows(items) == [(1, 1, "x")]


def test_replace_partition_keeps_the_other_partitions(items, s3_client, bucket):
    put(s3_client, bucket, "items/all.csv", [(1, 1, "a"), (2, 2, "a")])
    load(items, s3_client, bucket, Replace())
    put(s3_client, bucket, "day2/d.csv", [(3, 2, "b"), (4, 2, "b")])
    day2 = ReplacePartition("2", sql.SQL("day = 2"))
    load(items, s3_client, bucket, day2, prefix="day2/")
    assert rows(items) == [(1, 1, "a"), (3, 2, "b"), (4, 2, "b")]


def test_two_concurrent_rebuilds_of_one_table_publish_one_after_the_other(items):
    """Without a writer lock both transactions delete the old rows and insert their own: every
    row twice (the shadow fill sleeps so the two always overlap)."""
    items.execute("insert into public.items values (1, 1, 'a'), (2, 1, 'b')")
    items.execute("create table public.copy (id integer, day integer, v varchar(8))")
    select = sql.SQL("select id, day, v from public.items, (select pg_sleep(0.3)) as wait")
    start = threading.Barrier(2)
    results = []

    def rebuild() -> None:
        start.wait()
        results.append(rebuild_table(items, LoadTarget("public", "copy"), select))

    threads = [threading.Thread(target=rebuild) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status for r in results] == ["published", "published"]
    assert items.query("select count(*) from public.copy") == [(2,)]


def test_concurrent_first_runs_create_schemas_and_tables_once(warehouse, tmp_path: Path):
    """Two first runs on an empty warehouse raced on `create schema if not exists`."""
    specs = []
    for i in range(6):
        (tmp_path / f"t{i}.ddl.sql").write_text(f"create table if not exists s{i}.t{i} (a int)")
        specs.append(TableSpec(f"s{i}", f"t{i}", tmp_path))
    errors: list[BaseException] = []

    def first_run(spec: TableSpec, start: threading.Barrier) -> None:
        start.wait()
        try:
            ensure_tables(warehouse, [spec])
        except BaseException as error:  # collected: the assertion below names it
            errors.append(error)

    for spec in specs:
        start = threading.Barrier(3)
        threads = [threading.Thread(target=first_run, args=(spec, start)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert warehouse.query("select count(*) from pg_namespace where nspname like 's_'") == [(6,)]


@pytest.mark.parametrize("mode", [Replace(), ReplacePartition("d1", sql.SQL("day = 1"))])
def test_a_publish_keeps_the_tables_grants_and_its_readers_views(
    items, s3_client, bucket, mode
) -> None:
    """Issue 10 item 6: a renamed-in table had default privileges and broke schema-bound views
    of other users; publishing by DELETE and INSERT keeps the table, so both stay."""
    reader = f"reader_{bucket.replace('-', '_')}"
    items.execute(f"create role {reader}")
    items.execute(f"grant select on public.items to {reader}")
    items.execute("create view public.items_report as select count(*) as n from public.items")
    for version in ("a", "b"):
        put(s3_client, bucket, "items/1.csv", [(1, 1, version), (2, 1, version)])
        assert load(items, s3_client, bucket, mode).status == "published"
    granted = items.query("select has_table_privilege(%s, 'public.items', 'select')", (reader,))
    assert granted == [(True,)]
    assert items.query("select n from public.items_report") == [(2,)]
    items.execute(f"drop owned by {reader}")
    items.execute(f"drop role {reader}")
