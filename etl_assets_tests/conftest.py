"""Fixtures: one real local stack (PostgreSQL + moto S3) per test session, in a temp folder;
a fresh database and a fresh bucket per test so tests never see each other's tables."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from etl_assets import domains
from etl_assets.local import stack as local_stack
from etl_assets.local.resources import bucket_for
from etl_assets.local.stack import StackInfo
from etl_assets.resources.landing_bucket import LandingBucketResource
from etl_assets.resources.warehouse import WarehouseResource

# the real sample data, read in place (never copied): ETL_SHARED_DATASETS, else the shared
# folder beside the clone
SHARED_DATASETS = Path(
    os.environ.get("ETL_SHARED_DATASETS")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets"
)


@pytest.fixture(scope="session")
def stack() -> Iterator[StackInfo]:
    # not under pytest's basetemp: a second pytest session on the machine prunes old basetemp
    # folders, and with them this session's live PostgreSQL data directory
    home = Path(tempfile.mkdtemp(prefix="etl-assets-test-stack-"))
    previous = os.environ.get("ETL_ASSETS_HOME")
    os.environ["ETL_ASSETS_HOME"] = str(home)  # settings read this stack, never a developer's
    info = local_stack.up(home, upload_prefixes=domains.upload_prefixes())
    yield info
    local_stack.down(home)
    shutil.rmtree(home, ignore_errors=True)
    if previous is None:
        os.environ.pop("ETL_ASSETS_HOME", None)
    else:
        os.environ["ETL_ASSETS_HOME"] = previous


@pytest.fixture
def database(stack: StackInfo) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(stack.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    yield name
    with admin.cursor() as cur:
        cur.execute(f'drop database "{name}" with (force)')
    admin.close()


@pytest.fixture
def warehouse(stack: StackInfo, database: str) -> WarehouseResource:
    return WarehouseResource(
        dialect="postgres",
        host=stack.pg_host,
        port=stack.pg_port,
        database=database,
        user=stack.pg_user,
    )


@pytest.fixture
def bucket(stack: StackInfo, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    local_stack.s3_client(stack).create_bucket(Bucket=name)
    monkeypatch.setenv("ETL_S3_BUCKET", name)
    return name


@pytest.fixture
def s3(stack: StackInfo, bucket: str) -> LandingBucketResource:
    """The landing bucket resource on this test's own bucket (no notification queue)."""
    return bucket_for(stack, bucket)


@pytest.fixture
def s3_client(stack: StackInfo):
    return local_stack.s3_client(stack)


@pytest.fixture
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATASETS} (set ETL_SHARED_DATASETS)")
    return SHARED_DATASETS


def query(warehouse: WarehouseResource, statement: str, params=None) -> list[tuple]:
    return warehouse.query(statement, params)
