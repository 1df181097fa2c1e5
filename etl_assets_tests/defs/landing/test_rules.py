"""The landing zone's rules on combinations of actions, through the sensor and its runs: what
each file does to its table, the order files apply in, and one verdict per upload whatever
happens in the run."""

import json
import threading
import time
from datetime import timedelta

import psycopg2
import pytest
from dagster import DagsterInstance

from etl_assets.defs.landing.apply import Landed, apply_files
from etl_assets.defs.landing.keys import parse_key
from etl_assets.defs.landing.sample_data import USERS_V1
from etl_assets.loading.sources import list_objects
from etl_assets_tests.defs.landing.test_landing import land, ledger, tick, users

USERS_ONLY = {"dev/schema/users/users_v1.json": json.dumps(USERS_V1)}


@pytest.fixture
def instance():
    return DagsterInstance.ephemeral()


@pytest.fixture
def declared(warehouse, s3, s3_client, bucket, instance) -> str | None:
    """dev.users declared, with Ada (1) and Grace (2); returns the sensor's cursor."""
    land(s3_client, bucket, USERS_ONLY)
    _, cursor = tick(warehouse, s3, instance)
    land(s3_client, bucket, {"dev/append/users/00_seed.csv": "user_id,name\n1,Ada\n2,Grace\n"})
    _, cursor = tick(warehouse, s3, instance, cursor)
    assert users(warehouse) == [(1, "Ada", None), (2, "Grace", None)]
    return cursor


def verdicts(warehouse) -> dict[str, list[str]]:
    """file name -> the statuses the ledger recorded for it, oldest first."""
    rows = warehouse.query(
        "select object_key, status from etl_audit.file_ledger order by recorded_at"
    )
    found: dict[str, list[str]] = {}
    for key, status in rows:
        found.setdefault(key.rsplit("/", 1)[-1], []).append(status)
    return found


def land_in_one_second(s3_client, bucket: str, files: dict[str, str]) -> None:
    """Upload in the order given, all with the same LastModified second (S3 then tells no
    order: the landing rule decides). Uploads straddling a second are made again."""
    for _ in range(10):
        for name, body in files.items():
            s3_client.put_object(Bucket=bucket, Key=f"landing/{name}", Body=body.encode())
        stamps = {
            s3_client.head_object(Bucket=bucket, Key=f"landing/{name}")["LastModified"]
            for name in files
        }
        if len(stamps) == 1:
            return
        time.sleep(0.3)
    raise AssertionError("could not land the files within one second")


def test_an_append_repeating_a_key_an_upsert_just_added_is_refused_alone(
    declared, warehouse, s3, s3_client, bucket, instance
) -> None:
    """upsert (adds 7) then append (7 again, and 8) then append (9) in one batch: the second
    file alone is refused; it used to fail publish with a UniqueViolation that rolled back the
    whole batch, recorded nothing, and crashed every later tick."""
    land(s3_client, bucket, {"dev/upsert/users/01_up.csv": "user_id,name,level\n7,Seven,free\n"})
    time.sleep(1.1)  # the appends land a second later: ordered after the upsert by any rule
    land(
        s3_client,
        bucket,
        {
            "dev/append/users/02_add.csv": "user_id,name\n7,Again\n8,Eight\n",
            "dev/append/users/03_more.csv": "user_id,name\n9,Nine\n",
        },
    )
    (run,), _ = tick(warehouse, s3, instance, declared)
    assert not run.success  # it reports the refused file
    assert [u[0] for u in users(warehouse)] == [1, 2, 7, 9]
    assert verdicts(warehouse)["02_add.csv"] == ["rejected"]
    assert verdicts(warehouse)["01_up.csv"] == verdicts(warehouse)["03_more.csv"] == ["loaded"]
    ((_, error),) = ledger(warehouse, "02_add.csv")
    assert "repeat a key (user_id) already in dev.users" in error
    again, _ = tick(warehouse, s3, instance, cursor=None)  # a lost cursor: all listed again
    assert all(r.success for r in again)
    assert [u[0] for u in users(warehouse)] == [1, 2, 7, 9]


def test_a_partial_upsert_updates_only_the_columns_it_names(
    declared, warehouse, s3, s3_client, bucket, instance
) -> None:
    land(s3_client, bucket, {"dev/upsert/users/01_level.csv": "user_id,level\n1,paid\n"})
    tick(warehouse, s3, instance, declared)
    assert users(warehouse) == [(1, "Ada", "paid"), (2, "Grace", None)]  # Ada keeps her name
    # a new key would be a row without its required name: refused, nothing changes
    land(s3_client, bucket, {"dev/upsert/users/02_new.csv": "user_id,level\n2,free\n3,paid\n"})
    tick(warehouse, s3, instance)
    assert users(warehouse) == [(1, "Ada", "paid"), (2, "Grace", None)]
    ((status, error),) = ledger(warehouse, "02_new.csv")
    assert status == "rejected" and "a new row needs ['name']" in error


def test_two_upserts_of_one_key_in_one_tick_both_apply_in_order(
    declared, warehouse, s3, s3_client, bucket, instance
) -> None:
    land_in_one_second(
        s3_client,
        bucket,
        {
            "dev/upsert/users/01_a.csv": "user_id,name,level\n1,Ada,free\n",
            "dev/upsert/users/02_b.csv": "user_id,level\n1,gold\n",
        },
    )
    tick(warehouse, s3, instance, declared)
    assert users(warehouse)[0] == (1, "Ada", "gold")
    assert verdicts(warehouse)["01_a.csv"] == verdicts(warehouse)["02_b.csv"] == ["loaded"]


def test_a_truncate_and_an_append_landing_in_one_second_apply_by_file_name(
    declared, warehouse, s3, s3_client, bucket, instance
) -> None:
    """No notification queue (S3's default): LastModified has whole seconds. By key the append
    (`append/...`) sorted before the truncate (`truncate/...`) and was wiped by it, while the
    ledger said loaded. Within a second the file names decide."""
    land_in_one_second(
        s3_client,
        bucket,
        {
            "dev/truncate/users/01_reset.csv": "user_id,name\n10,Ten\n",
            "dev/append/users/02_add.csv": "user_id,name\n11,Eleven\n",
        },
    )
    tick(warehouse, s3, instance, declared)
    assert [u[0] for u in users(warehouse)] == [10, 11]


def test_a_schema_change_the_warehouse_refuses_is_rejected_and_the_batch_goes_on(
    declared, warehouse, s3, s3_client, bucket, instance
) -> None:
    """A view on dev.users keeps PostgreSQL from widening a column it reads: the evolution is
    recorded as rejected with the warehouse's reason, and the data file after it applies."""
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute("create view dev.user_names as select name from dev.users")
        conn.commit()
    wider = {**USERS_V1, "columns": [*USERS_V1["columns"][:1], {**USERS_V1["columns"][1]}]}
    wider["columns"][1]["type"] = "varchar(40)"
    wider["columns"].append(USERS_V1["columns"][2])
    land(s3_client, bucket, {"dev/schema/users/users_v2.json": json.dumps(wider)})
    land(s3_client, bucket, {"dev/append/users/05_after.csv": "user_id,name\n5,Five\n"})
    runs, _ = tick(warehouse, s3, instance, declared)
    assert [u[0] for u in users(warehouse)] == [1, 2, 5]
    ((status, error),) = ledger(warehouse, "users_v2.json")
    assert status == "rejected" and "not applied" in error and "view" in error
    assert verdicts(warehouse)["05_after.csv"] == ["loaded"]
    assert "Failing row" not in error and "DETAIL" not in error


def test_the_same_files_applied_by_two_runs_at_once_apply_once(
    declared, warehouse, s3_client, bucket
) -> None:
    """`etl-assets replay` or a manual materialization bypass the run queue: two runs apply
    the same truncate + append at once. The second waits for the table's lock, finds both
    verdicts and applies nothing (the truncate applied twice used to lose the append)."""
    land(
        s3_client,
        bucket,
        {
            "dev/truncate/users/01_reset.csv": "user_id,name\n10,Ten\n",
            "dev/append/users/02_add.csv": "user_id,name\n11,Eleven\n",
        },
    )
    listed = [
        o
        for o in list_objects(s3_client, bucket, "landing/dev/")
        if o.key.endswith(".csv") and "/00_seed" not in o.key
    ]
    landed = [Landed(o, parse_key(o.key)) for o in listed]
    errors: list[BaseException] = []

    def apply() -> None:
        try:
            apply_files(warehouse, s3_client, landed, run_id=None)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=apply) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert [u[0] for u in users(warehouse)] == [10, 11]
    assert verdicts(warehouse)["01_reset.csv"] == verdicts(warehouse)["02_add.csv"] == ["loaded"]


def test_a_re_upload_is_a_new_upload(declared, warehouse, s3, s3_client, bucket, instance):
    """A -> B -> A under one key: the third upload is applied (same content, landed later),
    as is a refused file uploaded again unchanged once its contract allows it."""
    key = "dev/truncate/users/snapshot.csv"
    contents = ["user_id,name\n1,A\n", "user_id,name\n2,B\n", "user_id,name\n1,A\n"]
    cursor = declared
    for body in contents:
        started = time.monotonic()
        land(s3_client, bucket, {key: body})
        _, cursor = tick(warehouse, s3, instance, cursor)
        # 2 s or more between LastModified seconds: a new upload, not the same one seen twice
        time.sleep(max(0.0, 3.1 - (time.monotonic() - started)))
        assert users(warehouse) == [(int(body[13]), body[15], None)]
    assert verdicts(warehouse)["snapshot.csv"] == ["loaded"] * 3

    append_only = {**USERS_V1, "allowed_operations": ["append", "schema"]}
    land(s3_client, bucket, {"dev/schema/users/users_v2.json": json.dumps(append_only)})
    _, cursor = tick(warehouse, s3, instance, cursor)
    time.sleep(3.1)
    land(s3_client, bucket, {key: "user_id,name\n3,C\n"})
    _, cursor = tick(warehouse, s3, instance, cursor)
    assert verdicts(warehouse)["snapshot.csv"][-1] == "rejected"
    land(s3_client, bucket, {"dev/schema/users/users_v3.json": json.dumps(USERS_V1)})
    _, cursor = tick(warehouse, s3, instance, cursor)
    time.sleep(3.1)
    land(s3_client, bucket, {key: "user_id,name\n3,C\n"})  # unchanged: the same ETag
    tick(warehouse, s3, instance, cursor)
    assert users(warehouse) == [(3, "C", None)]
    assert verdicts(warehouse)["snapshot.csv"][-2:] == ["rejected", "loaded"]


def test_a_contract_without_schema_in_its_operations_takes_no_new_contract(
    warehouse, s3, s3_client, bucket, instance
) -> None:
    """A table declared without `schema` in allowed_operations keeps its contract: a new
    schema file (here re-enabling truncate) is refused."""
    frozen = {**USERS_V1, "allowed_operations": ["append", "upsert"]}
    land(s3_client, bucket, {"dev/schema/users/v1.json": json.dumps(frozen)})
    _, cursor = tick(warehouse, s3, instance)
    land(s3_client, bucket, {"dev/schema/users/v2.json": json.dumps(USERS_V1)})
    tick(warehouse, s3, instance, cursor)
    ((status, error),) = ledger(warehouse, "v2.json")
    assert status == "rejected" and "action schema is not allowed for dev.users" in error
    (contract,) = warehouse.query("select contract from landing.tables")[0]
    assert json.loads(contract)["allowed_operations"] == ["append", "upsert"]


def test_a_table_named_with_63_characters_takes_upserts_and_appends(
    warehouse, s3, s3_client, bucket, instance
) -> None:
    """Its shadow used to be `<table>__shadow` cut to 63 characters: the table's own name, so
    the merge's column references were ambiguous and the run crashed."""
    name = "t" * 63
    contract = {**USERS_V1, "table": name}
    land(s3_client, bucket, {f"dev/schema/{name}/v1.json": json.dumps(contract)})
    _, cursor = tick(warehouse, s3, instance)
    land(s3_client, bucket, {f"dev/append/{name}/01.csv": "user_id,name\n1,Ada\n"})
    _, cursor = tick(warehouse, s3, instance, cursor)
    land(s3_client, bucket, {f"dev/upsert/{name}/02.csv": "user_id,level\n1,paid\n"})
    land(s3_client, bucket, {f"dev/append/{name}/03.csv": "user_id,name\n2,Grace\n"})
    (run,), _ = tick(warehouse, s3, instance, cursor)
    assert run.success
    rows = warehouse.query(f'select user_id, name, level from dev."{name}" order by 1')
    assert rows == [(1, "Ada", "paid"), (2, "Grace", None)]


def test_a_run_whose_files_are_gone_records_them_and_does_not_fail(
    declared, warehouse, s3, s3_client, bucket, instance
) -> None:
    """Files deleted between the sensor's tick and the run: superseded in the ledger, and the
    run says so instead of failing on a missing output."""
    from dagster import build_sensor_context

    from etl_assets.defs.landing import sensors
    from etl_assets_tests.helpers import execute_requests

    land(s3_client, bucket, {"dev/append/users/09_gone.csv": "user_id,name\n9,Gone\n"})
    resources = {"warehouse": warehouse, "s3": s3}
    sensor_def = sensors.landing_upload_sensor
    context = build_sensor_context(instance=instance, cursor=declared, resources=resources)
    requested = sensor_def(context)
    s3_client.delete_object(Bucket=bucket, Key="landing/dev/append/users/09_gone.csv")
    (run,) = execute_requests(sensor_def, requested, resources, instance)
    assert run.success
    ((status, error),) = ledger(warehouse, "09_gone.csv")
    assert status == "superseded" and "no longer in the bucket" in error


def evolution(added: str) -> dict:
    return {**USERS_V1, "columns": [*USERS_V1["columns"], {"name": added, "type": "varchar(9)"}]}


def test_an_evolution_waiting_for_a_long_reader_stalls_no_one(
    declared, warehouse, s3, s3_client, bucket, monkeypatch
) -> None:
    """A reader holds dev.users in a long transaction while a schema file adds a column. The
    ALTER waits at most a second at a time: new readers of dev.users are not queued behind it,
    loads of other tables go on, and it applies once the reader is gone. A reader's prepared
    select of named columns still works after the column is added."""
    monkeypatch.setenv("ETL_LANDING_DDL_WAIT_S", "60")
    stack_dsn = dict(
        host=warehouse.host, port=warehouse.port, dbname=warehouse.database, user=warehouse.user
    )
    reader = psycopg2.connect(**stack_dsn)
    with reader.cursor() as cur:
        cur.execute("prepare names as select user_id, name from dev.users order by 1")
        cur.execute("execute names")
        assert cur.fetchall() == [(1, "Ada"), (2, "Grace")]
    reader.commit()
    long_reader = psycopg2.connect(**stack_dsn)
    long_reader.cursor().execute("select count(*) from dev.users")  # holds it, transaction open
    land(s3_client, bucket, {"dev/schema/users/v2.json": json.dumps(evolution("city"))})
    other_contract = json.dumps({**USERS_V1, "table": "other"})
    land(s3_client, bucket, {"dev/schema/other/v1.json": other_contract})
    listed = list_objects(s3_client, bucket, "landing/dev/schema/users/v2.json")
    landed = [Landed(o, parse_key(o.key)) for o in listed]
    errors: list[BaseException] = []

    def evolve() -> None:
        try:
            apply_files(warehouse, s3_client, landed, run_id=None)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    evolving = threading.Thread(target=evolve)
    evolving.start()
    time.sleep(2)  # the evolution is trying now
    fresh = psycopg2.connect(**stack_dsn, options="-c statement_timeout=3000")
    with fresh.cursor() as cur:  # not queued behind the ALTER
        cur.execute("select count(*) from dev.users")
        assert cur.fetchone() == (2,)
    fresh.close()
    other = list_objects(s3_client, bucket, "landing/dev/schema/other/")
    apply_files(warehouse, s3_client, [Landed(o, parse_key(o.key)) for o in other], None)
    assert warehouse.query("select count(*) from dev.other") == [(0,)]  # another table: done
    assert evolving.is_alive()  # still waiting for the reader
    long_reader.rollback()
    long_reader.close()
    evolving.join(60)
    assert not errors and not evolving.is_alive()
    assert verdicts(warehouse)["v2.json"] == ["loaded"]
    with reader.cursor() as cur:
        cur.execute("execute names")
        assert cur.fetchall() == [(1, "Ada"), (2, "Grace")]
    reader.close()


def test_an_evolution_that_never_gets_its_table_is_rejected_with_the_reason(
    declared, warehouse, s3, s3_client, bucket, monkeypatch
) -> None:
    monkeypatch.setenv("ETL_LANDING_DDL_WAIT_S", "2")
    long_reader = psycopg2.connect(
        host=warehouse.host, port=warehouse.port, dbname=warehouse.database, user=warehouse.user
    )
    long_reader.cursor().execute("select count(*) from dev.users")
    land(s3_client, bucket, {"dev/schema/users/v2.json": json.dumps(evolution("city"))})
    listed = list_objects(s3_client, bucket, "landing/dev/schema/users/v2.json")
    run = apply_files(warehouse, s3_client, [Landed(o, parse_key(o.key)) for o in listed], None)
    long_reader.close()
    (outcome,) = run.outcomes
    assert outcome.status == "rejected" and "stayed in use by readers for 2 s" in outcome.detail
    ((status, error),) = ledger(warehouse, "v2.json")
    assert status == "rejected" and "etl-assets replay" in error


@pytest.mark.parametrize(
    ("line", "column"),
    [
        ("1,NaN,2026-11-01 10:00:00,1.5", "score"),
        ("1,-Infinity,2026-11-01 10:00:00,1.5", "score"),
        ("1,2.5,infinity,1.5", "at"),
        ("1,2.5,2026-11-01 10:00:00,NaN", "amount"),
    ],
)
def test_values_redshift_would_refuse_are_refused_here_too(
    warehouse, s3, s3_client, bucket, instance, line: str, column: str
) -> None:
    """PostgreSQL stores NaN and infinities in floats, numerics and timestamps; Redshift does
    not: the local warehouse refuses them with the line and column, as production would."""
    contract = {
        "table": "scores",
        "columns": [
            {"name": "id", "type": "integer", "nullable": False},
            {"name": "score", "type": "double precision"},
            {"name": "at", "type": "timestamp"},
            {"name": "amount", "type": "decimal(10,2)"},
        ],
        "allowed_operations": ["append", "schema"],
    }
    land(s3_client, bucket, {"dev/schema/scores/v1.json": json.dumps(contract)})
    _, cursor = tick(warehouse, s3, instance)
    land(s3_client, bucket, {"dev/append/scores/01.csv": f"id,score,at,amount\n{line}\n"})
    tick(warehouse, s3, instance, cursor)
    ((status, error),) = ledger(warehouse, "01.csv")
    assert status == "rejected" and f"line 2, column {column}: " in error, error
    assert "NaN or infinity" in error or "not a timestamp" in error
    assert warehouse.query("select count(*) from dev.scores") == [(0,)]


def test_a_version_whose_run_died_is_requested_again_then_rejected(
    declared, warehouse, s3, s3_client, bucket, instance, monkeypatch
) -> None:
    """A run killed before it recorded anything (out of memory, a crash) leaves its versions
    without a verdict: the sensor's next listing requests them again (no run of the partition
    in progress), and after three runs without a verdict records them as rejected. It never
    moves past a version without one."""
    from datetime import timedelta

    from dagster import build_sensor_context

    from etl_assets.defs.landing import sensors as landing_sensors
    from etl_assets.lib import sensors
    from etl_assets_tests.helpers import execute_requests

    monkeypatch.setattr(sensors, "STRANDED_AFTER", timedelta(0))
    resources = {"warehouse": warehouse, "s3": s3}
    sensor_def = landing_sensors.landing_upload_sensor

    def requested(cursor):
        context = build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        return sensor_def(context)

    land(s3_client, bucket, {"dev/append/users/07_died.csv": "user_id,name\n7,Seven\n"})
    first = requested(declared)  # its run is never executed: the process "died"
    assert len(first.run_requests) == 1
    again = requested(first.cursor)
    (retry,) = again.run_requests
    assert retry.run_key.endswith(":attempt-2") and retry.partition_key == "dev.users"
    execute_requests(sensor_def, again, resources, instance)
    assert verdicts(warehouse)["07_died.csv"] == ["loaded"]
    assert not requested(again.cursor).run_requests  # a verdict: nothing more to do

    land(s3_client, bucket, {"dev/append/users/08_crash.csv": "user_id,name\n8,Eight\n"})
    cursor = again.cursor
    for attempt in range(4):  # three runs that never record a verdict, then none
        tick_result = requested(cursor)
        cursor = tick_result.cursor
        assert len(tick_result.run_requests or []) == (1 if attempt < 3 else 0), attempt
    ((status, error),) = ledger(warehouse, "08_crash.csv")
    assert status == "rejected" and "no verdict after 3 runs" in error
    assert 8 not in [u[0] for u in users(warehouse)]


EVENTS_AT = {
    "table": "moments",
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "note", "type": "varchar(40)"},
        {"name": "at", "type": "timestamp"},
        {"name": "day", "type": "date"},
    ],
    "allowed_operations": ["append", "schema"],
}


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ('1,"a, b, c",today,2026-11-01', "at"),
        ("1,x,2026-11-01 10:00:00,epoch", "day"),
        ("1,x,2026-11-01 10:00:00+05:00,2026-11-01", "at"),
        ("1,x,2026-11-01 10:00:00-05,2026-11-01", "at"),
        ("1,x,2026-11-01T10:00:00Z,2026-11-01", "at"),
        ('1,"say ""now""",2026-11-01 10:00:00,"Nov 1, 2026"', "day"),
        ("1,x,now,2026-11-01", "at"),
    ],
)
def test_date_text_postgresql_would_read_otherwise_is_refused(
    warehouse, s3, s3_client, bucket, instance, row: str, column: str
) -> None:
    """PostgreSQL reads 'today', 'epoch', 'now' and month names into dates and drops a zone
    offset from a timestamp; Redshift refuses them or reads them otherwise: refused here with
    the line and column, whatever the quoting around them."""
    land(s3_client, bucket, {"dev/schema/moments/v1.json": json.dumps(EVENTS_AT)})
    _, cursor = tick(warehouse, s3, instance)
    good = '0,"today, epoch and now are words here",2026-11-01 10:00:00.5,2026-11-01'
    land(s3_client, bucket, {"dev/append/moments/01.csv": f"id,note,at,day\n{good}\n{row}\n"})
    tick(warehouse, s3, instance, cursor)
    ((status, error),) = ledger(warehouse, "01.csv")
    assert status == "rejected" and f"line 3, column {column}: not a" in error, error
    assert warehouse.query("select count(*) from dev.moments") == [(0,)]


def test_date_text_both_warehouses_read_alike_loads(warehouse, s3, s3_client, bucket, instance):
    land(s3_client, bucket, {"dev/schema/moments/v1.json": json.dumps(EVENTS_AT)})
    _, cursor = tick(warehouse, s3, instance)
    rows = [
        '1,"multi\nline, with a comma",2026-11-01 10:00:00,2026-11-01',
        '2,,"2026-11-02 11:00:00.123456",',
        "3,plain,,2026-11-03",
    ]
    land(s3_client, bucket, {"dev/append/moments/01.csv": "id,note,at,day\n" + "\n".join(rows)})
    tick(warehouse, s3, instance, cursor)
    ((status, error),) = ledger(warehouse, "01.csv")
    assert status == "loaded", error
    assert warehouse.query("select id from dev.moments order by 1") == [(1,), (2,), (3,)]


def test_a_run_for_a_table_that_never_existed_whose_file_is_gone_does_not_fail(
    warehouse, s3, s3_client, bucket, instance
) -> None:
    """The file of a table not declared yet, deleted before its run: recorded as superseded,
    and the run ends well, saying so (it failed on Dagster's missing output)."""
    from dagster import build_sensor_context

    from etl_assets.defs.landing import sensors as landing_sensors
    from etl_assets_tests.helpers import execute_requests, failure_message

    land(s3_client, bucket, {"dev/append/ghosts/01.csv": "id\n1\n"})
    resources = {"warehouse": warehouse, "s3": s3}
    sensor_def = landing_sensors.landing_upload_sensor
    requested = sensor_def(build_sensor_context(instance=instance, resources=resources))
    s3_client.delete_object(Bucket=bucket, Key="landing/dev/append/ghosts/01.csv")
    (run,) = execute_requests(sensor_def, requested, resources, instance)
    assert run.success, failure_message(run)
    assert not run.get_asset_materialization_events()
    ((status, _),) = ledger(warehouse, "ghosts/01.csv")
    assert status == "superseded"


def test_one_upload_announced_twice_is_applied_once(
    declared, warehouse, s3, s3_client, bucket, instance
) -> None:
    """Two notifications of one upload (a multipart upload's LastModified is when it began,
    its event time when it completed: seconds or minutes apart) are one upload: a 300 MB
    append was loaded twice."""
    from etl_assets.defs.landing.assets import landing_tables
    from etl_assets_tests.helpers import materialize_group

    key = "landing/dev/append/users/05_big.csv"
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"user_id,name\n5,Five\n")
    head = s3_client.head_object(Bucket=bucket, Key=key)
    etag, began = head["ETag"].strip('"'), head["LastModified"]
    files = [
        {"key": key, "etag": etag, "landed_at": began.isoformat()},
        {"key": key, "etag": etag, "landed_at": (began + timedelta(seconds=90)).isoformat()},
    ]
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
    assert [u[0] for u in users(warehouse)] == [1, 2, 5]
    assert verdicts(warehouse)["05_big.csv"] == ["loaded"]
    # a lost cursor lists it again later with its LastModified: judged already, not applied
    again, _ = tick(warehouse, s3, instance, cursor=None)
    assert again == [] and [u[0] for u in users(warehouse)] == [1, 2, 5]
