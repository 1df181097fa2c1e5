"""Configuration from the environment: a real Redshift + S3 when it says so, else the local stack.

| variable                     | meaning                                               |
|------------------------------|-------------------------------------------------------|
| ETL_WAREHOUSE_DIALECT        | redshift (default when a host is set) or postgres     |
| ETL_WAREHOUSE_HOST / _PORT   | cluster endpoint and port (5439 for Redshift)         |
| ETL_WAREHOUSE_DATABASE       | database name                                         |
| ETL_WAREHOUSE_USER           | user name                                             |
| ETL_WAREHOUSE_PASSWORD       | password (read through dagster.EnvVar, never stored)  |
| ETL_REDSHIFT_IAM_ROLE        | IAM role ARN the cluster assumes to read the bucket   |
| ETL_S3_BUCKET                | bucket files land in                                  |
| ETL_S3_ENDPOINT_URL          | only for S3-compatible stores; empty for AWS          |
| AWS_REGION                   | region of bucket and cluster                          |
| ETL_FLIGHTS_UPLOAD_QUEUE_URL | SQS queue of the upload prefix's ObjectCreated events |
| ETL_ASSETS_HOME              | local stack state folder (default ./.etl_assets)      |
"""

from __future__ import annotations

import os

from dagster import EnvVar
from dagster_aws.s3 import S3Resource

from etl_assets.local.stack import LOCAL_AWS_KEY, StackInfo, aws_client, read_stack
from etl_assets.resources.warehouse import WarehouseResource


def uses_local_stack() -> bool:
    return not os.environ.get("ETL_WAREHOUSE_HOST")


def bucket() -> str:
    if os.environ.get("ETL_S3_BUCKET"):
        return os.environ["ETL_S3_BUCKET"]
    stack = read_stack()
    return stack.bucket if stack else "etl-assets-local"


def warehouse_from_env() -> WarehouseResource:
    if uses_local_stack():
        return local_warehouse(read_stack())
    env = os.environ
    return WarehouseResource(
        dialect=env.get("ETL_WAREHOUSE_DIALECT", "redshift"),
        host=env["ETL_WAREHOUSE_HOST"],
        port=int(env.get("ETL_WAREHOUSE_PORT", "5439")),
        database=env.get("ETL_WAREHOUSE_DATABASE", "dev"),
        user=env.get("ETL_WAREHOUSE_USER", "awsuser"),
        password=EnvVar("ETL_WAREHOUSE_PASSWORD"),
        iam_role=env.get("ETL_REDSHIFT_IAM_ROLE", ""),
        region=env.get("AWS_REGION", "us-east-1"),
    )


def s3_from_env() -> S3Resource:
    if uses_local_stack():
        return local_s3(read_stack())
    return S3Resource(
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_url=os.environ.get("ETL_S3_ENDPOINT_URL") or None,
    )


def flights_queue_url() -> str:
    """The SQS queue announcing flights uploads; empty = the sensor lists the prefix."""
    if os.environ.get("ETL_FLIGHTS_UPLOAD_QUEUE_URL") is not None:
        return os.environ["ETL_FLIGHTS_UPLOAD_QUEUE_URL"]
    stack = read_stack() if uses_local_stack() else None
    return stack.flights_queue_url if stack else ""


def sqs_client():
    if uses_local_stack():
        return aws_client(read_stack(), "sqs")
    import boto3

    return boto3.client("sqs", region_name=os.environ.get("AWS_REGION", "us-east-1"))


def local_warehouse(stack: StackInfo | None) -> WarehouseResource:
    """The local stack's PostgreSQL; without a running stack, a host that fails clearly."""
    if stack is None:
        return WarehouseResource(host="local-stack-not-running--run-etl-assets-up", port=1)
    return WarehouseResource(
        dialect="postgres",
        host=stack.pg_host,
        port=stack.pg_port,
        database=stack.pg_database,
        user=stack.pg_user,
    )


def local_s3(stack: StackInfo | None) -> S3Resource:
    endpoint = stack.s3_endpoint_url if stack else "http://127.0.0.1:1"
    return S3Resource(
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=LOCAL_AWS_KEY,
        aws_secret_access_key=LOCAL_AWS_KEY,
    )
