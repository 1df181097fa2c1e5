"""`make dev-prod`: the production Dagster instance (deploy/dagster.yaml: PostgreSQL storage,
run queue, pools) on this machine — storage in a `dagster` database of the embedded
PostgreSQL, runs launched as local processes, the multiprocess executor."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import psycopg2
from psycopg2 import sql

from etl_assets.local import stack as local_stack

REPOSITORY = Path(__file__).resolve().parents[2]
DEV_PROD_CONFIG = REPOSITORY / "deploy" / "dagster.dev-prod.yaml"
STORAGE_DATABASE = "dagster"


def prepare(home: Path, info: local_stack.StackInfo, database: str = STORAGE_DATABASE) -> dict:
    """A DAGSTER_HOME with the dev-prod instance, its storage database created; returns the
    environment Dagster's processes need."""
    admin = psycopg2.connect(info.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("select 1 from pg_database where datname = %s", (database,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    admin.close()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEV_PROD_CONFIG, home / "dagster.yaml")
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": info.pg_host,
        "DAGSTER_PG_PORT": str(info.pg_port),
        "DAGSTER_PG_DB": database,
        "DAGSTER_PG_USERNAME": info.pg_user,
        "DAGSTER_PG_PASSWORD": os.environ.get("DAGSTER_PG_PASSWORD", "local"),
        "ETL_EXECUTOR": "multiprocess",
    }


def run_dagster_dev(home: Path, info: local_stack.StackInfo) -> None:
    """Replace this process with `dagster dev` on the dev-prod instance."""
    env = {**os.environ, **prepare(home.resolve(), info)}
    print(f"dev-prod: instance {home}/dagster.yaml, storage database {STORAGE_DATABASE!r}")
    dagster = Path(sys.executable).with_name("dagster")
    os.execve(dagster, [str(dagster), "dev", "-w", str(REPOSITORY / "workspace.yaml")], env)
