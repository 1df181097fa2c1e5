"""The user-facing contract: `etl-assets demo --json`, exit status, `up`/`down`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl_assets.defs.sparkify.sample_data import write_sparkify
from etl_assets.loading.tables import ensure_tables
from etl_assets.local import stack as local_stack
from etl_assets.local.resources import warehouse_for

DEMO_TABLES = (
    {
        f"sparkify.{t}"
        for t in [
            "staging_events",
            "staging_songs",
            "songplays",
            "users",
            "songs",
            "artists",
            "time",
        ]
    }
    | {
        f"flights.{t}"
        for t in ["airlines", "airports", "flights", "flights_reporting", "delayed_flights_agg"]
    }
    | {"landing.tables", "dev.users", "dev.events"}
    | {
        f"darties.{t}"
        for t in [
            "workbook_sales",
            "workbook_stores",
            "stores",
            "product_families",
            "months",
            "sales",
            "sales_vs_objective",
        ]
    }
)


def etl_assets(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ETL_ASSETS_HOME": str(home)}
    env.pop("ETL_S3_BUCKET", None)
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "etl_assets.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def home(tmp_path: Path):
    yield tmp_path / "state"
    local_stack.down(tmp_path / "state")


def test_demo_json_report_on_generated_data(home: Path) -> None:
    done = etl_assets(home, "demo", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert set(report) >= {"tables", "checks", "elapsed_s"}
    assert set(report["tables"]) == DEMO_TABLES
    assert all(count > 0 for count in report["tables"].values())
    assert report["checks"] and all(c["passed"] for c in report["checks"])
    assert {c["severity"] for c in report["checks"]} <= {"ERROR", "WARN"}
    assert {"asset", "check", "passed", "severity", "detail"} <= set(report["checks"][0])
    assert report["elapsed_s"] > 0
    assert report["skipped"] == []
    # the landing sample's refused file: its key and the reason
    assert report["refused"] == [
        {
            "key": "landing/dev/truncate/events/02_reset.csv",
            "reason": "landing/dev/truncate/events/02_reset.csv: action truncate is not allowed"
            " for dev.events (allowed_operations: append, schema)",
        }
    ]
    assert report["tables"]["dev.users"] == 3 and report["tables"]["landing.tables"] == 2
    # 12 cities x 3 families x 24 months (2020 HISTO, 2021 budget, January and February 2021)
    assert report["tables"]["darties.sales"] == 12 * 3 * 24


def test_demo_exits_non_zero_when_an_error_check_fails(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_sparkify(data, days=2, events_per_day=50, songs=10, users=5)
    log = data / "sparkify/log_data/2018/11/2018-11-02-events.json"
    lines = log.read_text().splitlines()
    event = json.loads(lines[0])
    event["surprise"] = 1
    lines[0] = json.dumps(event)
    log.write_text("\n".join(lines))

    done = etl_assets(home, "demo", "--data", str(data), "--json")

    assert done.returncode == 1
    report = json.loads(done.stdout)
    failed = [c for c in report["checks"] if not c["passed"]]
    drift = next(c for c in failed if c["check"] == "no_source_key_drift")
    assert drift["asset"] == "sparkify/staging_events" and drift["severity"] == "ERROR"
    assert "2018-11-02-events.json" in drift["detail"] and "surprise" in drift["detail"]
    assert report["skipped"] == ["darties", "flights", "landing"]  # no folders in this data


def test_absent_domain_folders_are_reported_as_skipped(home: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = etl_assets(home, "demo", "--data", str(tmp_path / "empty"), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["skipped"] == ["darties", "flights", "landing", "sparkify"]


def test_up_is_idempotent_and_down_stops(home: Path) -> None:
    first = local_stack.up(home)
    assert local_stack.up(home) == first
    local_stack.down(home)
    assert local_stack.read_stack(home) is None
    assert not (home / "pgdata" / "postmaster.pid").exists()


def test_upload_puts_a_file_with_spaces_under_the_upload_prefix(home: Path, tmp_path: Path) -> None:
    info = local_stack.up(home)
    data = tmp_path / "flights 21 Nov.csv"
    data.write_text("YEAR\n2015\n")
    done = etl_assets(home, "upload", "--domain", "flights", str(data))
    assert done.returncode == 0, done.stderr
    key = "flights/uploads/flights 21 Nov.csv"
    assert key in done.stdout
    body = local_stack.s3_client(info).get_object(Bucket=info.bucket, Key=key)["Body"].read()
    assert body == b"YEAR\n2015\n"


def test_the_demo_prints_one_line_per_asset_and_keeps_dagsters_log_in_a_file(home: Path) -> None:
    """Issue 12 item 2: no Dagster DEBUG lines or warnings on the terminal."""
    done = etl_assets(home, "demo")
    assert done.returncode == 0, done.stderr[-3000:]
    terminal = done.stdout + done.stderr
    assert "DEBUG" not in terminal and "Warning" not in terminal, terminal[:3000]
    progress = done.stderr.splitlines()
    assert "flights:" in progress
    flights = next(line for line in progress if line.startswith("  ok    flights/flights "))
    assert " rows " in flights and " s   checks " in flights
    refused = [
        line for line in progress if line.startswith("  refused landing/tables [dev.events]")
    ]
    assert refused and "action truncate is not allowed" in refused[0]
    log = home / "demo-dagster.log"
    assert f"Dagster's own log of these runs: {log}" in done.stdout
    assert "STEP_SUCCESS" in log.read_text() and "Stack Trace" not in terminal


def test_upload_says_what_will_happen(home: Path, tmp_path: Path) -> None:
    """Issue 12 item 4: a new version starts a run of the domain's job; a version the ledger
    has loaded already is named with its run."""
    info = local_stack.up(home)
    data = tmp_path / "airports.csv"
    data.write_text("IATA_CODE,AIRPORT\nXXX,Nowhere\n")
    done = etl_assets(home, "upload", "--domain", "flights", str(data))
    assert done.returncode == 0, done.stderr
    assert "A run of flights_uploads will start within ~12 s" in done.stdout
    key = "flights/uploads/airports.csv"
    etag = local_stack.s3_client(info).head_object(Bucket=info.bucket, Key=key)["ETag"]
    warehouse = warehouse_for(info)
    ensure_tables(warehouse, [])
    warehouse.execute(
        "insert into etl_audit.file_ledger (load_id, bucket, object_key, etag, target_table,"
        " status, run_id, recorded_at) values ('l1', %s, %s, %s, 'flights.flights', 'loaded',"
        " 'run-42', now())",
        (info.bucket, key, etag.strip('"')),
    )
    again = etl_assets(home, "upload", "--domain", "flights", str(data))
    assert "already loaded into flights.flights (run run-42)" in again.stdout, again.stdout


def test_a_landing_upload_no_rule_routes_is_refused_before_uploading(
    home: Path, tmp_path: Path
) -> None:
    """Without --name the file landed on a key no rule routes, and the command still promised
    a run: it is refused, saying which key shape is expected, and nothing is uploaded."""
    info = local_stack.up(home)
    data = tmp_path / "users.csv"
    data.write_text("user_id,name\n1,Ada\n")
    refused = etl_assets(home, "upload", "--domain", "landing", str(data))
    assert refused.returncode == 2
    assert "--name <db>/<action>/<table>/<file>" in refused.stderr
    assert "e.g. --name dev/append/users/users.csv" in refused.stderr
    listed = local_stack.s3_client(info).list_objects_v2(Bucket=info.bucket, Prefix="landing/")
    assert listed.get("KeyCount", 0) == 0
    routed = etl_assets(
        home, "upload", "--domain", "landing", str(data), "--name", "dev/append/users/01.csv"
    )
    assert routed.returncode == 0, routed.stderr
    assert "A run of landing_uploads will start" in routed.stdout
