"""The file history: `etl-assets files` in a terminal and the read-only HTTP API, with real
requests to a real server process."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import psycopg2
import pytest
from dagster import DagsterInstance

from etl_assets.defs.landing.sample_data import FILES
from etl_assets.history import READER_ROLE, ensure_reader_role
from etl_assets.local.stack import free_port
from etl_assets.resources.warehouse import WarehouseResource
from etl_assets_tests.defs.landing.test_landing import land, tick


@pytest.fixture
def landed(warehouse, s3, s3_client, bucket):
    land(s3_client, bucket, FILES)
    tick(warehouse, s3, DagsterInstance.ephemeral())
    return warehouse


def cli_env(warehouse) -> dict:
    return {**os.environ, "ETL_WAREHOUSE_DATABASE": warehouse.database}


def test_files_prints_each_version_with_its_status(landed) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "etl_assets.cli", "files", "--table", "dev.events", "--json"],
        env=cli_env(landed),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    files = json.loads(done.stdout)
    # landing order: by the second each landed, and within one second (S3 orders nothing
    # inside one) schema files first, then by file name; the files land in one second or not,
    # as the upload's timing has it
    landed_at = {f["key"].split("/")[-1]: f["landed_at"][:19] for f in files}
    rank = {"events.json": 0, "01_events.csv": 1, "02_reset.csv": 2}
    expected = sorted(rank, key=lambda name: (landed_at[name], rank[name]))
    assert [f["key"].split("/")[-1] for f in files] == expected
    verdicts = {f["key"].split("/")[-1]: (f["action"], f["status"]) for f in files}
    assert verdicts == {
        "events.json": ("schema", "loaded"),
        "02_reset.csv": ("truncate", "rejected"),
        "01_events.csv": ("append", "loaded"),
    }
    assert [f["landed_at"] for f in files] == sorted(f["landed_at"] for f in files)
    by_name = {f["key"].split("/")[-1]: f for f in files}
    appended, reset = by_name["01_events.csv"], by_name["02_reset.csv"]
    assert appended["rows"] == 3 and appended["etag"] and appended["size"] > 0
    assert "not allowed" in reset["error"] and reset["run_id"]
    text = subprocess.run(
        [sys.executable, "-m", "etl_assets.cli", "files", "--table", "dev.events"],
        env=cli_env(landed),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "3 file version(s) for dev.events" in text.stdout
    assert "action truncate is not allowed" in text.stdout


@contextmanager
def api_server(env: dict, stderr: IO[str] | None = None) -> Iterator[str]:
    """`etl-assets api` in a process of its own; its base URL once it answers /health.
    `stderr`: a file the server's standard error goes to (a pipe nobody reads could fill)."""
    port = free_port()
    stderr = stderr or tempfile.TemporaryFile("w+")  # noqa: SIM115 - the server's, closed by GC
    server = subprocess.Popen(
        [sys.executable, "-m", "etl_assets.cli", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, _read(stderr)
                assert time.monotonic() < deadline, "the API did not answer /health"
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(10)


def _read(file: IO[str]) -> str:
    file.seek(0)
    return file.read()


@pytest.fixture
def api(landed):
    with api_server(cli_env(landed)) as base:
        yield base


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_api_pages_through_a_table_history(api) -> None:
    status, page = get(f"{api}/files?table=dev.users&limit=2")
    assert status == 200 and len(page["files"]) == 2 and page["next"]
    keys = [f["key"] for f in page["files"]]
    while page["next"]:
        status, page = get(f"{api}/files?table=dev.users&limit=2&cursor={page['next']}")
        keys += [f["key"] for f in page["files"]]
    assert keys == [
        "landing/dev/schema/users/users_v1.json",
        "landing/dev/append/users/01_first.csv",
        "landing/dev/append/users/02_more.csv",
        "landing/dev/upsert/users/03_levels.csv",
    ]
    status, later = get(f"{api}/files?table=dev.users&landed_since=2999-01-01T00:00")
    assert (status, later) == (200, {"files": [], "next": None})


def test_the_api_refuses_what_it_cannot_answer_and_never_writes(api, landed, stack) -> None:
    assert get(f"{api}/files")[0] == 400
    status, body = get(f"{api}/files?table=dev;drop")
    assert status == 400 and "expected <db>.<table>" in body["error"]
    assert get(f"{api}/files?table=dev.users&landed_since=yesterday")[0] == 400
    assert get(f"{api}/files?table=dev.users&cursor=forged")[0] == 400
    assert get(f"{api}/nothing")[0] == 404
    request = urllib.request.Request(f"{api}/files?table=dev.users", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    status, health = get(f"{api}/health")
    assert health == {"ok": True, "user": "etl_assets_reader", "read_only": True}
    reader = psycopg2.connect(stack.dsn(), dbname=landed.database, user="etl_assets_reader")
    with reader, reader.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cur.execute("delete from etl_audit.file_ledger")
    reader.close()


def replay(warehouse, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "etl_assets.cli", "replay", *args],
        env=cli_env(warehouse),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_replay_applies_a_refused_file_after_its_contract_was_fixed(
    landed, s3, s3_client, bucket
) -> None:
    from etl_assets.defs.landing.sample_data import EVENTS

    refused = f"s3://{bucket}/landing/dev/truncate/events/02_reset.csv"
    still = replay(landed, refused)
    assert still.returncode == 1 and "action truncate is not allowed" in still.stdout
    fixed = {**EVENTS, "allowed_operations": ["append", "truncate", "schema"]}
    land(s3_client, bucket, {"dev/schema/events/events_v2.json": json.dumps(fixed)})
    tick(landed, s3, DagsterInstance.ephemeral())
    done = replay(landed, refused)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replayed" in done.stdout and "landing/tables [dev.events]" in done.stdout
    assert landed.query("select event_id from dev.events") == [(1,)]


def test_replaying_a_loaded_append_adds_nothing_unless_forced(landed, bucket) -> None:
    appended = f"s3://{bucket}/landing/dev/append/events/01_events.csv"
    unforced = replay(landed, appended)
    assert unforced.returncode == 0
    assert "nothing applied" in unforced.stdout and "already loaded" in unforced.stdout
    assert "DEBUG" not in unforced.stderr and "STEP_START" not in unforced.stderr
    assert landed.query("select count(*) from dev.events") == [(3,)]
    assert replay(landed, appended, "--force").returncode == 0
    assert landed.query("select count(*) from dev.events") == [(6,)]  # asked for: twice
    assert replay(landed, f"s3://{bucket}/landing/dev/append/events/nope.csv").returncode == 2
    assert replay(landed, "s3://another-bucket/landing/x.csv").returncode == 2


def production_env(warehouse, tmp_path, **extra: str) -> dict:
    """The variables a production deployment sets (README), at their production defaults
    (dialect redshift) but for where the warehouse is: this stack's PostgreSQL, which runs
    the history's queries as Redshift would. No local stack to fall back on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_WAREHOUSE_")}
    return {
        **env,
        "ETL_ASSETS_HOME": str(tmp_path / "no-local-stack"),
        "ETL_WAREHOUSE_HOST": warehouse.host,
        "ETL_WAREHOUSE_PORT": str(warehouse.port),
        "ETL_WAREHOUSE_DATABASE": warehouse.database,
        "ETL_WAREHOUSE_USER": warehouse.user,
        "ETL_WAREHOUSE_PASSWORD": "from-the-secret-store",
        "ETL_REDSHIFT_IAM_ROLE": "arn:aws:iam::123456789012:role/redshift-copy",
        "AWS_REGION": "eu-west-1",
        **extra,
    }


def test_files_runs_on_the_production_settings(landed, tmp_path) -> None:
    """The password is a Dagster EnvVar: read outside a run, it used to fail the command."""
    done = subprocess.run(
        [sys.executable, "-m", "etl_assets.cli", "files", "--table", "dev.events", "--json"],
        env=production_env(landed, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(f["status"] for f in json.loads(done.stdout)) == ["loaded", "loaded", "rejected"]
    unset = production_env(landed, tmp_path)
    del unset["ETL_WAREHOUSE_PASSWORD"]
    refused = subprocess.run(
        [sys.executable, "-m", "etl_assets.cli", "files", "--table", "dev.events"],
        env=unset,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip() == "etl-assets files: ETL_WAREHOUSE_PASSWORD is not set"


def test_the_api_serves_on_the_production_settings(landed, tmp_path) -> None:
    """Every request used to close the connection (the EnvVar password read per request)."""
    ensure_reader_role(landed)  # what the README asks of whoever sets up the API's user
    env = production_env(
        landed,
        tmp_path,
        ETL_API_WAREHOUSE_USER=READER_ROLE,
        ETL_API_WAREHOUSE_PASSWORD="the-readers-secret",
    )
    with api_server(env) as base:
        status, health = get(f"{base}/health")
        assert (status, health) == (200, {"ok": True, "user": READER_ROLE, "read_only": None})
        status, page = get(f"{base}/files?table=dev.users")
        assert status == 200 and len(page["files"]) == 4 and page["next"] is None


def test_a_read_only_session_begins_read_only_transactions(landed) -> None:
    """BEGIN READ ONLY, which Redshift understands, rather than a startup option it lacks."""
    reader = WarehouseResource(
        host=landed.host, port=landed.port, database=landed.database, read_only=True
    )
    settings = reader.query(
        "select current_setting('transaction_read_only'),"
        " current_setting('default_transaction_read_only')"
    )
    assert settings == [("on", "off")]


def test_a_refused_rows_values_are_not_served(landed, s3, s3_client, bucket, api) -> None:
    bad = {
        "dev/append/users/05_null.csv": "user_id,name,level\n6,Ok,free\n77,,secret\n",
        "dev/append/users/06_type.csv": "user_id,name,level\nsecret77,Bob,free\n",
    }
    land(s3_client, bucket, bad)
    tick(landed, s3, DagsterInstance.ephemeral())
    status, page = get(f"{api}/files?table=dev.users")
    errors = {f["key"].rsplit("/", 1)[-1]: f["error"] for f in page["files"] if f["error"]}
    assert set(errors) == {"05_null.csv", "06_type.csv"}, page
    assert "05_null.csv: line 3, column name: null value in column" in errors["05_null.csv"]
    assert "06_type.csv: line 2, column user_id: invalid input" in errors["06_type.csv"]
    for error in errors.values():
        assert "secret" not in error and "77" not in error and "Bob" not in error, error


FORBIDDEN = {
    "an advisory lock, as loads take": "select pg_advisory_xact_lock(hashtext('etl_assets:x'))",
    "a session advisory lock": "select pg_try_advisory_lock(1)",
    "a shared advisory lock": "select pg_advisory_lock_shared(1, 2)",
    "a temporary table": "create temp table scratch (a integer)",
    "a table in public": "create table public.scratch (a integer)",
    "a schema": "create schema scratch",
    "a ledger row": "insert into etl_audit.file_ledger (object_key) values ('x')",
    "deleting the ledger": "delete from etl_audit.file_ledger",
    "a landing table's rows": "select * from dev.users",
    "writing a landing table": "insert into dev.users values (9, 'Eve', 'free')",
}


@pytest.mark.parametrize("attempt", sorted(FORBIDDEN))
def test_the_readers_role_may_read_the_ledger_and_nothing_else(landed, stack, attempt) -> None:
    """As the role itself, in a session of its own that is not read-only: what the API's
    read-only session prevents must be refused by the role's privileges too."""
    ensure_reader_role(landed)
    reader = psycopg2.connect(stack.dsn(), dbname=landed.database, user=READER_ROLE)
    try:
        with reader.cursor() as cur:
            cur.execute("select count(*) from etl_audit.file_ledger")
            assert cur.fetchone()[0] > 0
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(FORBIDDEN[attempt])
    finally:
        reader.close()


def test_the_loader_keeps_what_was_withheld_from_the_reader(landed) -> None:
    ensure_reader_role(landed)
    with landed.get_connection() as conn, conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('etl_assets:x'))")
        cur.execute("create temp table scratch (a integer)")
    (limits,) = landed.query(
        "select rolconnlimit, rolconfig from pg_roles where rolname = %s", (READER_ROLE,)
    )
    assert limits[0] == 10 and "statement_timeout=30s" in limits[1]


def _cursor(document: str) -> str:
    return base64.urlsafe_b64encode(document.encode()).decode()


HOSTILE = {
    "a cursor 5,000 arrays deep": "table=dev.users&cursor=" + _cursor("[" * 5000 + "]" * 5000),
    "a cursor 5,000 objects deep": "table=dev.users&cursor="
    + _cursor('{"a":' * 5000 + "1" + "}" * 5000),
    "a cursor whose key is a number": "table=dev.users&cursor="
    + _cursor('["2026-11-01T00:00:00", "2026-11-01T00:00:00", 5]'),
    "a cursor whose key holds a NUL": "table=dev.users&cursor="
    + _cursor('["2026-11-01T00:00:00", "2026-11-01T00:00:00", "a\\u0000b"]'),
    "a cursor at year 1 east of UTC": "table=dev.users&cursor="
    + _cursor('["0001-01-01T00:00+05:00", "0001-01-01T00:00+05:00", "k"]'),
    "a huge cursor": "table=dev.users&cursor=" + "A" * 50_000,
    "landed_since at year 1 east of UTC": "table=dev.users&landed_since=0001-01-01T00:00%2B05:00",
    "landed_since at year 9999 west of UTC": "table=dev.users&landed_since=9999-12-31T23:59-05:00",
    "landed_since with a NUL": "table=dev.users&landed_since=2026-11-01%00",
    "landed_since not UTF-8": "table=dev.users&landed_since=%ff%fe",
    "a huge limit": "table=dev.users&limit=" + "9" * 100,
    "a limit of 5,000 digits": "table=dev.users&limit=" + "9" * 5000,
    "a negative limit": "table=dev.users&limit=-1",
    "a table not UTF-8": "table=dev.%ff%c3%28",
    "a table with a newline": "table=dev.users%0a",
    "a very long table name": "table=dev." + "u" * 5000,
    "a request line over 64 KB": "table=dev." + "u" * 70_000,
}


def test_hostile_queries_get_a_json_4xx_and_the_server_lives_on(warehouse, tmp_path) -> None:
    """Each used to close the connection with a traceback on the server (or, for the request
    line, answer with the standard library's HTML page)."""
    from etl_assets.loading.tables import ensure_tables

    ensure_tables(warehouse, [])  # the ledger: every question reaches the database
    answers = {}
    stderr = open(tmp_path / "api.stderr", "w+")  # noqa: SIM115 - read after the server ends
    with stderr, api_server(cli_env(warehouse), stderr) as api:
        for case, query in HOSTILE.items():
            try:
                answers[case] = get(f"{api}/files?{query}")
            except (OSError, ValueError) as error:  # closed, or not JSON
                answers[case] = (None, repr(error))
            assert get(f"{api}/health")[0] == 200, case
        log = _read(stderr)
    wrong = {c: a for c, a in answers.items() if not (400 <= (a[0] or 0) < 500 and a[1]["error"])}
    assert not wrong, "\n".join(f"{case}: {answer}" for case, answer in wrong.items())
    assert "Traceback" not in log, log


def test_the_api_does_not_advertise_its_python(api) -> None:
    for path in ("/health", "/nothing"):
        try:
            response = urllib.request.urlopen(f"{api}{path}", timeout=10)
        except urllib.error.HTTPError as error:
            response = error
        server = response.headers["Server"]
        assert server == "etl-assets", server
        response.close()
