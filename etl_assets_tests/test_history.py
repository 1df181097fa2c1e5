"""The file history: `etl-assets files` in a terminal and the read-only HTTP API, with real
requests to a real server process."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psycopg2
import pytest
from dagster import DagsterInstance

from etl_assets.defs.landing.sample_data import FILES
from etl_assets.local.stack import free_port
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


@pytest.fixture
def api(landed):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "etl_assets.cli", "api", "--port", str(port)],
        env=cli_env(landed),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2).close()
            break
        except OSError:
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
    yield base
    server.terminate()
    server.wait(10)


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
    assert replay(landed, appended).returncode == 0
    assert landed.query("select count(*) from dev.events") == [(3,)]
    assert replay(landed, appended, "--force").returncode == 0
    assert landed.query("select count(*) from dev.events") == [(6,)]  # asked for: twice
    assert replay(landed, f"s3://{bucket}/landing/dev/append/events/nope.csv").returncode == 2
    assert replay(landed, "s3://another-bucket/landing/x.csv").returncode == 2
