"""The landing zone on the real stack, driven as in production: files land in the bucket, the
landing sensor ticks, its runs apply each table's files in landing order."""

import json
from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance

from etl_assets.defs.landing.sample_data import EVOLUTION, FILES, USERS_V1
from etl_assets.loading.upload_queue import ensure_upload_queue
from etl_assets.local import stack as local_stack
from etl_assets.local.resources import bucket_for
from etl_assets_tests.helpers import sensor_tick_and_runs

SENSOR = "landing_upload_sensor"


@pytest.fixture
def instance():
    return DagsterInstance.ephemeral()


def land(s3_client, bucket: str, files: dict[str, str]) -> None:
    """Upload in key order, schema files first (the demo's order)."""
    for name in sorted(files, key=lambda n: (n.split("/")[1] != "schema", n)):
        s3_client.put_object(Bucket=bucket, Key=f"landing/{name}", Body=files[name].encode())


def tick(warehouse, s3, instance, cursor=None):
    return sensor_tick_and_runs(SENSOR, warehouse, s3, instance, cursor)


def users(warehouse) -> list[tuple]:
    return warehouse.query("select user_id, name, level from dev.users order by user_id")


def ledger(warehouse, key_part: str) -> list[tuple]:
    return warehouse.query(
        "select status, error from etl_audit.file_ledger where object_key like %s"
        " order by recorded_at",
        (f"%{key_part}%",),
    )


@pytest.fixture
def declared(warehouse, s3, s3_client, bucket, instance):
    """dev.users and dev.events declared and loaded from the sample's first files."""
    land(s3_client, bucket, FILES)
    results, cursor = tick(warehouse, s3, instance)
    return results, cursor


def test_sample_files_apply_in_landing_order(declared, warehouse) -> None:
    results, _ = declared
    by_table = {r.dagster_run.tags["dagster/partition"]: r for r in results}
    assert set(by_table) == {"dev.users", "dev.events"}
    assert by_table["dev.users"].success
    # appends (any column order), then the upsert: Ada promoted, Barbara added
    assert users(warehouse) == [
        (1, "Ada", "paid"),
        (2, "Grace", "paid"),
        (3, "Alan", "free"),
        (4, "Edsger", "paid"),
        (5, "Barbara", "free"),
    ]
    checks = {e.check_name: e for e in by_table["dev.users"].get_asset_check_evaluations()}
    assert checks["rows_match_source"].passed and checks["primary_key_unique_not_null"].passed
    assert "duplicated keys (up to 10): none" in checks["primary_key_unique_not_null"].description
    (materialization,) = by_table["dev.users"].get_asset_materialization_events()
    metadata = materialization.materialization.metadata
    assert metadata["dagster/row_count"].value == 5
    columns = [c.name for c in metadata["dagster/column_schema"].value.columns]
    assert columns == ["user_id", "name", "level"]
    # events allow append and schema only: the truncate is refused, the run says so
    assert not by_table["dev.events"].success
    assert warehouse.query("select count(*) from dev.events") == [(3,)]
    ((status, error),) = ledger(warehouse, "truncate/events/02_reset.csv")
    assert status == "rejected" and "action truncate is not allowed for dev.events" in error


def test_schema_evolution_then_truncate(declared, warehouse, s3, s3_client, bucket, instance):
    _, cursor = declared
    land(s3_client, bucket, EVOLUTION)
    results, _ = tick(warehouse, s3, instance, cursor)
    assert [r.success for r in results] == [True]
    columns = warehouse.query(
        "select column_name, data_type, character_maximum_length, is_nullable"
        " from information_schema.columns where table_schema = 'dev' and table_name = 'users'"
        " order by ordinal_position"
    )
    assert columns == [
        ("user_id", "integer", None, "NO"),
        ("name", "character varying", 40, "NO"),
        ("level", "character varying", 8, "YES"),
        ("city", "character varying", 30, "YES"),
    ]
    assert warehouse.query("select user_id, name, city from dev.users order by 1") == [
        (1, "Ada Lovelace", "London"),
        (2, "Grace Hopper", "New York"),
    ]


def test_the_same_files_again_add_nothing(declared, warehouse, s3, s3_client, bucket, instance):
    """A tick from an empty cursor re-lists every file, as a duplicated notification or a lost
    cursor (a new daemon) would: every version is in the ledger already, loaded or rejected,
    so no run starts and none is applied again (the first schema file would now be refused as
    a narrowing)."""
    _, cursor = declared
    land(s3_client, bucket, EVOLUTION)
    tick(warehouse, s3, instance, cursor)
    before = warehouse.query("select user_id, name, city from dev.users order by 1")
    ledger_before = warehouse.query("select status, count(*) from etl_audit.file_ledger group by 1")
    results, _ = tick(warehouse, s3, instance, cursor=None)
    assert results == []  # every version has its verdict: no run is even started
    assert warehouse.query("select user_id, name, city from dev.users order by 1") == before
    assert warehouse.query("select count(*) from dev.events") == [(3,)]
    ledger_after = warehouse.query("select status, count(*) from etl_audit.file_ledger group by 1")
    assert sorted(ledger_after) == sorted(ledger_before)


BAD_FILES = {
    "dev/append/orders/01.csv": ("order_id\n1\n", "table dev.orders is not declared"),
    "dev/append/users/10_drift.csv": (
        "user_id,name,nickname\n9,Zed,z\n",
        "columns not in the schema of dev.users: ['nickname']",
    ),
    "dev/append/users/11_required.csv": ("user_id,level\n9,free\n", "required columns absent"),
    "dev/append/users/12_value.csv": (
        "user_id,name,level\n9,Zed,free\nten,Ten,free\n",
        "line 3, column user_id: invalid input syntax for type integer",
    ),
    "dev/append/users/13_empty.csv": ("", "empty file"),
    "dev/append/users/14_long.csv": ("user_id,name,level\n9,Zed,platinum+\n", "line 2"),
    "dev/upsert/users/16_dupes.csv": (
        "user_id,name\n30,A\n30,B\n",
        "user_id_unique_not_null: 0 rows with a null key; duplicated keys (up to 10): 30 x2",
    ),
}


def test_bad_files_are_refused_logged_and_change_nothing(
    declared, warehouse, s3, s3_client, bucket, instance
) -> None:
    _, cursor = declared
    before = users(warehouse)
    land(s3_client, bucket, {name: body for name, (body, _) in BAD_FILES.items()})
    land(s3_client, bucket, {"dev/append/users/15_good.csv": "user_id,name\n20,Good\n"})
    s3_client.put_object(Bucket=bucket, Key="landing/dev/append/bad key.csv", Body=b"x")
    s3_client.put_object(Bucket=bucket, Key="landing/prod/append/users/x.csv", Body=b"x")
    results, _ = tick(warehouse, s3, instance, cursor)
    assert not any(r.success for r in results)  # each run reports its refusals
    for name, (_, reason) in BAD_FILES.items():
        ((status, error),) = ledger(warehouse, name)
        assert status == "rejected" and reason in error, (name, error)
        assert error.startswith(f"landing/{name}"), error
    assert users(warehouse) == [*before, (20, "Good", None)]  # the good file still loads
    users_run = next(r for r in results if r.dagster_run.tags["dagster/partition"] == "dev.users")
    key_check = next(
        e
        for e in users_run.get_asset_check_evaluations()
        if e.check_name == "primary_key_unique_not_null"
    )
    assert not key_check.passed and "30 x2" in key_check.description
    for key, reason in [
        ("landing/dev/append/bad key.csv", "expected landing/<db>/<action>/<table>/<file>"),
        ("landing/prod/append/users/x.csv", "'prod' is not in ETL_LANDING_DATABASES"),
    ]:
        ((status, error),) = ledger(warehouse, key)
        assert status == "rejected" and reason in error


def test_a_replayed_schema_file_and_a_rerun_partition_change_nothing(
    declared, warehouse, s3, s3_client, bucket, instance
) -> None:
    from etl_assets_tests.helpers import materialize_group

    before = users(warehouse)
    key = "landing/dev/schema/users/users_v1.json"
    etag = s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    appended = "landing/dev/append/users/01_first.csv"
    appended_etag = s3_client.head_object(Bucket=bucket, Key=appended)["ETag"].strip('"')
    files = [{"key": key, "etag": etag}, {"key": appended, "etag": appended_etag}]
    from etl_assets.defs.landing.assets import landing_tables

    result = materialize_group(
        "landing",
        warehouse,
        s3,
        selection=[landing_tables],
        run_config={"ops": {"landing__tables": {"config": {"files": files}}}},
        instance=instance,
        partition_key="dev.users",
    )
    assert result.success
    assert users(warehouse) == before
    (contract,) = warehouse.query("select contract from landing.tables where table_name = 'users'")[
        0
    ]
    declared = [c["name"] for c in json.loads(contract)["columns"]]
    assert declared == [c["name"] for c in USERS_V1["columns"]]


def transactions(warehouse, key_part: str) -> set:
    """The transactions that wrote the ledger rows of the loaded files matching `key_part`."""
    rows = warehouse.query(
        "select xmin::text from etl_audit.file_ledger where object_key like %s and status = %s",
        (f"%{key_part}%", "loaded"),
    )
    return {xid for (xid,) in rows}


def test_a_mix_of_actions_landing_together_publishes_in_one_transaction(
    declared, warehouse, s3_client, bucket, instance, stack
) -> None:
    """append, truncate, append (a value refused), append, upsert for one table in one tick:
    the refused file is left out and the others are published by ONE transaction, in landing
    order, so a reader sees the old rows or the final ones, never the truncated middle.
    Landing order is the notifications' event time (milliseconds): the uploads fall in one
    second, where LastModified would order them by key (every append before any truncate)."""
    _, cursor = declared
    sqs = local_stack.aws_client(stack, "sqs")
    url = ensure_upload_queue(s3_client, sqs, bucket, "landing/", f"q-{bucket}")
    announced = bucket_for(stack, bucket, upload_queues={"landing": url})
    mixed = {
        "dev/append/users/20_a.csv": "user_id,name\n20,Twenty\n",
        "dev/truncate/users/21_reset.csv": "user_id,name,level\n1,Ada,paid\n2,Grace,paid\n",
        "dev/append/users/22_bad.csv": "user_id,name\nnot-a-number,Bad\n",
        "dev/append/users/23_b.csv": "user_id,name\n23,TwentyThree\n",
        "dev/upsert/users/24_c.csv": "user_id,name,level\n2,Grace,free\n24,Z,paid\n",
    }
    for name in mixed:  # one upload at a time, in this order (not the keys' order)
        s3_client.put_object(Bucket=bucket, Key=f"landing/{name}", Body=mixed[name].encode())
    results, _ = tick(warehouse, announced, instance, cursor)
    (run,) = results
    assert not run.success  # it names its refused file
    # the landed time the ledger keeps is the notification's (milliseconds), not LastModified
    requested = run.dagster_run.run_config["ops"]["landing__tables"]["config"]["files"]
    landed = {f["key"]: datetime.fromisoformat(f["landed_at"]) for f in requested}
    kept = warehouse.query(
        "select object_key, last_modified from etl_audit.file_ledger where object_key in %s",
        (tuple(landed),),
    )
    assert {key: at.replace(tzinfo=UTC) for key, at in kept} == landed
    assert users(warehouse) == [
        (1, "Ada", "paid"),
        (2, "Grace", "free"),
        (23, "TwentyThree", None),
        (24, "Z", "paid"),
    ]
    ((status, error),) = ledger(warehouse, "22_bad.csv")
    assert status == "rejected" and "line 2, column user_id" in error
    (xid,) = transactions(warehouse, "/users/2")  # the four loaded files: one transaction
    assert (
        len(warehouse.query("select 1 from etl_audit.file_ledger where xmin::text = %s", (xid,)))
        == 4
    )
    assert {x for (x,) in warehouse.query("select distinct xmin::text from dev.users")} == {xid}


def test_files_landed_in_one_second_keep_the_sensors_order(warehouse, s3_client, bucket) -> None:
    """A notification's event time has milliseconds, a listing's none: sorting the run's files
    by full time moved the listed file of a second behind ones that landed after it (the
    1,000-file burst of `make bench` loaded rows out of landing order)."""
    from etl_assets.defs.landing.apply import in_landing_order
    from etl_assets.defs.landing.assets import LandedFiles, LandedVersion, _landed

    keys = [f"landing/dev/append/people/{i}.csv" for i in range(3)]
    etags = []
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=key, Body=key.encode())
        etags.append(s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"'))
    landed_at = [
        "2026-11-22T12:00:00.900+00:00",  # read from the queue
        "2026-11-22T12:00:00+00:00",  # listed: landed later in the same second
        "2026-11-22T12:00:01.100+00:00",
    ]
    versions = zip(keys, etags, landed_at, strict=True)
    config = LandedFiles(files=[LandedVersion(key=k, etag=e, landed_at=a) for k, e, a in versions])
    chosen, gone = _landed(warehouse, s3_client, bucket, "dev.people", config)
    assert [item.source.key for item in in_landing_order(chosen)] == keys and not gone
