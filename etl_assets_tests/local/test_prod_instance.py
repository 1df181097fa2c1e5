"""Issue 11: the production instance (deploy/dagster.yaml) proven locally — the dev-prod file is
the production one but for the run launcher, and a domain materialized through it with the
multiprocess executor is read back from its PostgreSQL storage."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.instance.config import dagster_instance_config

from etl_assets.demo import upload_folder
from etl_assets.domains import discover
from etl_assets.local.prod_instance import DEV_PROD_CONFIG, REPOSITORY, prepare

PRODUCTION_CONFIG = REPOSITORY / "deploy" / "dagster.yaml"


def test_dev_prod_is_the_production_instance_but_for_the_run_launcher(monkeypatch) -> None:
    production = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    dev_prod = yaml.safe_load(DEV_PROD_CONFIG.read_text())
    assert production.pop("run_launcher")["class"] == "EcsRunLauncher"
    assert dev_prod.pop("run_launcher")["class"] == "DefaultRunLauncher"
    assert production == dev_prod
    assert production["storage"]["postgres"]["postgres_db"]["password"] == {
        "env": "DAGSTER_PG_PASSWORD"
    }  # never a literal
    flights_limit = production["concurrency"]["runs"]["tag_concurrency_limits"][0]
    assert flights_limit == {
        "key": "dagster/sensor_name",
        "value": "flights_upload_sensor",
        "limit": 1,
    }
    for name in ("HOST", "PORT", "DB", "USERNAME", "PASSWORD"):
        monkeypatch.setenv(f"DAGSTER_PG_{name}", "5432" if name == "PORT" else "x")
    for path in (PRODUCTION_CONFIG, DEV_PROD_CONFIG):  # Dagster's own schema accepts both
        config, _ = dagster_instance_config(str(path.parent), path.name)
        assert config["concurrency"]["pools"]["default_limit"] == 1


def test_a_domain_materialized_through_the_production_instance_is_read_back(
    stack, database, bucket, s3_client, tmp_path, monkeypatch
) -> None:
    storage = f"dagster_{uuid.uuid4().hex[:8]}"
    env = prepare(tmp_path / "dagster_home", stack, database=storage)
    flights = next(d for d in discover() if d.name == "flights")
    flights.write_sample(tmp_path / "data")
    upload_folder(flights, s3_client, bucket, tmp_path / "data" / "flights")
    run_env = {**os.environ, **env, "ETL_WAREHOUSE_DATABASE": database}
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "--select", "key:flights/*"]
        + ["-m", "etl_assets.definitions"],
        env=run_env,
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        (run,) = instance.get_runs()
        assert run.status == DagsterRunStatus.SUCCESS
        logs = [e.message for e in instance.all_logs(run.run_id) if e.message]
        assert any("multiprocess executor" in message for message in logs), logs[:5]
        for table in ("flights", "airlines", "airports"):
            assert instance.get_latest_materialization_event(AssetKey(["flights", table]))
    assert Path(env["DAGSTER_HOME"], "dagster.yaml").read_text() == DEV_PROD_CONFIG.read_text()
