"""The resources every domain uses, bound in one place: the warehouse and the landing bucket.

The embedded local stack when the environment names no warehouse host; otherwise Redshift and
S3 as the environment says (the README lists the variables):

| variable                       | meaning                                                  |
|--------------------------------|----------------------------------------------------------|
| ETL_WAREHOUSE_HOST / _PORT     | cluster endpoint and port (5439 for Redshift)            |
| ETL_WAREHOUSE_DIALECT          | redshift (default) or postgres                           |
| ETL_WAREHOUSE_DATABASE / _USER | database and user                                        |
| ETL_WAREHOUSE_PASSWORD         | password, read through dagster.EnvVar (never stored)     |
| ETL_REDSHIFT_IAM_ROLE          | IAM role ARN the cluster assumes to read the bucket      |
| ETL_S3_BUCKET                  | the bucket files land in                                 |
| ETL_S3_ENDPOINT_URL            | only for S3-compatible stores; empty for AWS             |
| ETL_<DOMAIN>_UPLOAD_QUEUE_URL  | SQS queue of a domain's upload prefix's ObjectCreated events |
| AWS_REGION                     | region of bucket and cluster                             |
"""

import os
import re
from typing import TypeVar

from dagster import ConfigurableResource, Definitions, EnvVar, definitions

from etl_assets.local.resources import bucket_for, warehouse_for
from etl_assets.local.stack import read_stack
from etl_assets.resources.landing_bucket import LandingBucketResource
from etl_assets.resources.warehouse import WarehouseResource, uses_local_stack

_QUEUE_VARIABLE = re.compile(r"^ETL_([A-Z0-9_]+)_UPLOAD_QUEUE_URL$")
R = TypeVar("R", bound=ConfigurableResource)


class SettingsError(ValueError):
    """A setting the environment lacks; the message names the variables."""


def warehouse_from_env(**overrides) -> WarehouseResource:
    """`overrides`: settings of the connection that differ from the environment's (a user)."""
    if uses_local_stack():  # ETL_WAREHOUSE_DATABASE: another database of the local server
        database = os.environ.get("ETL_WAREHOUSE_DATABASE") or None
        return warehouse_for(read_stack(), database, **overrides)
    env = os.environ
    settings = {
        "dialect": env.get("ETL_WAREHOUSE_DIALECT", "redshift"),
        "host": env["ETL_WAREHOUSE_HOST"],
        "port": int(env.get("ETL_WAREHOUSE_PORT", "5439")),
        "database": env.get("ETL_WAREHOUSE_DATABASE", "dev"),
        "user": env.get("ETL_WAREHOUSE_USER", "awsuser"),
        "password": EnvVar("ETL_WAREHOUSE_PASSWORD"),
        "iam_role": env.get("ETL_REDSHIFT_IAM_ROLE", ""),
        "region": env.get("AWS_REGION", "us-east-1"),
    }
    return WarehouseResource(**{**settings, **overrides})


def api_warehouse_from_env() -> WarehouseResource:
    """The read-only API's connection: `ETL_API_WAREHOUSE_USER` / `_PASSWORD` (a user that may
    only read `etl_audit.file_ledger`); locally the stack's `etl_assets_reader` role."""
    if uses_local_stack():
        from etl_assets.history import READER_ROLE, ensure_reader_role

        ensure_reader_role(warehouse_from_env())
        return warehouse_from_env(user=READER_ROLE, read_only=True)
    user = os.environ.get("ETL_API_WAREHOUSE_USER")
    if not user:
        raise SettingsError(
            "ETL_API_WAREHOUSE_USER is not set: the API connects as a user that may only read"
            " etl_audit.file_ledger (see the README)"
        )
    return warehouse_from_env(
        user=user, password=EnvVar("ETL_API_WAREHOUSE_PASSWORD"), read_only=True
    )


def resolved(resource: R) -> R:
    """The resource with its `EnvVar` settings read, for use outside a Dagster run (the CLI
    and the API): Dagster reads them only when it initializes a resource for a run, and a
    resource used directly refuses to hand out an unread `EnvVar`."""
    unset = [
        value.env_var_name
        for value in (getattr(resource, name) for name in type(resource).model_fields)
        if isinstance(value, EnvVar) and value.get_value() is None
    ]
    if unset:
        raise SettingsError(f"{', '.join(unset)} is not set")
    return resource.process_config_and_initialize()


def landing_bucket_from_env() -> LandingBucketResource:
    if uses_local_stack():
        return bucket_for(read_stack(), os.environ.get("ETL_S3_BUCKET") or None)
    return LandingBucketResource(
        bucket=os.environ.get("ETL_S3_BUCKET", ""),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_url=os.environ.get("ETL_S3_ENDPOINT_URL") or None,
        upload_queues=upload_queues_from_env(),
    )


def upload_queues_from_env() -> dict[str, str]:
    """`ETL_FLIGHTS_UPLOAD_QUEUE_URL=...` -> {"flights": ...}: one queue per domain."""
    queues = {}
    for name, url in os.environ.items():
        match = _QUEUE_VARIABLE.match(name)
        if match and url:
            queues[match.group(1).lower()] = url
    return queues


@definitions
def resources() -> Definitions:
    return Definitions(
        resources={"warehouse": warehouse_from_env(), "s3": landing_bucket_from_env()}
    )
