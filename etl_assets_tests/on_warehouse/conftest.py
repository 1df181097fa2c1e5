"""Where the warehouse suite runs: the local PostgreSQL and S3 (`make test`), or a real
Redshift cluster or Serverless workgroup and a real bucket (`make test-redshift`, with
ETL_TEST_WAREHOUSE=redshift and the ETL_TEST_REDSHIFT_* variables)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from etl_assets.resources.landing_bucket import LandingBucketResource
from etl_assets.resources.warehouse import WarehouseResource

REQUIRED = ("HOST", "USER", "PASSWORD", "IAM_ROLE", "BUCKET")
NOT_CONFIGURED = (
    "Redshift suite not run: set ETL_TEST_REDSHIFT_HOST, _USER, _PASSWORD, _IAM_ROLE and"
    " _BUCKET (optional _PORT, _DATABASE, _REGION) to run it on a cluster (README, 'make"
    " test-redshift')"
)


@dataclass(frozen=True)
class Target:
    """A warehouse and a bucket the suite may write to, and a prefix of its own in it."""

    warehouse: WarehouseResource
    bucket: LandingBucketResource
    prefix: str

    @property
    def s3(self):
        return self.bucket.get_client()


def redshift_settings() -> dict[str, str] | None:
    env = {k: os.environ.get(f"ETL_TEST_REDSHIFT_{k}", "") for k in REQUIRED}
    return env if all(env.values()) else None


@pytest.fixture
def target(request) -> Iterator[Target]:
    prefix = f"etl-assets-test/{uuid.uuid4().hex[:12]}/"
    if os.environ.get("ETL_TEST_WAREHOUSE", "postgres") != "redshift":
        warehouse = request.getfixturevalue("warehouse")
        bucket = request.getfixturevalue("s3")
        yield Target(warehouse, bucket, prefix)
        return
    settings = redshift_settings()
    if settings is None:
        pytest.skip(NOT_CONFIGURED)
    region = os.environ.get("ETL_TEST_REDSHIFT_REGION") or os.environ.get("AWS_REGION", "us-east-1")
    warehouse = WarehouseResource(
        dialect="redshift",
        host=settings["HOST"],
        port=int(os.environ.get("ETL_TEST_REDSHIFT_PORT", "5439")),
        database=os.environ.get("ETL_TEST_REDSHIFT_DATABASE", "dev"),
        user=settings["USER"],
        password=settings["PASSWORD"],
        iam_role=settings["IAM_ROLE"],
        region=region,
        connect_timeout_s=30,
    )
    bucket = LandingBucketResource(bucket=settings["BUCKET"], region_name=region)
    yield Target(warehouse, bucket, prefix)
    _delete_prefix(bucket, prefix)


def _delete_prefix(bucket: LandingBucketResource, prefix: str) -> None:
    client = bucket.get_client()
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket.bucket, Prefix=prefix
    ):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket.bucket, Delete={"Objects": keys})
