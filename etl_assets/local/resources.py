"""Resources pointing at the embedded local stack (or, when it is not running, at an address
that fails with a message saying so)."""

from __future__ import annotations

from etl_assets.local.stack import LOCAL_AWS_KEY, LOCAL_BUCKET, StackInfo
from etl_assets.resources.landing_bucket import LandingBucketResource
from etl_assets.resources.warehouse import WarehouseResource


def warehouse_for(
    stack: StackInfo | None, database: str | None = None, **settings
) -> WarehouseResource:
    if stack is None:
        return WarehouseResource(host="local-stack-not-running--run-etl-assets-up", port=1)
    return WarehouseResource(
        dialect="postgres",
        host=stack.pg_host,
        port=stack.pg_port,
        database=database or stack.pg_database,
        **{"user": stack.pg_user, **settings},
    )


def bucket_for(
    stack: StackInfo | None, bucket: str | None = None, upload_queues: dict | None = None
) -> LandingBucketResource:
    """The stack's bucket with its upload queues, or another bucket of the stack (no queues
    unless given)."""
    own = bucket is None or (stack is not None and bucket == stack.bucket)
    if upload_queues is None:
        upload_queues = dict(stack.upload_queues) if stack and own else {}
    return LandingBucketResource(
        bucket=bucket or (stack.bucket if stack else LOCAL_BUCKET),
        region_name="us-east-1",
        endpoint_url=stack.s3_endpoint_url if stack else "http://127.0.0.1:1",
        aws_access_key_id=LOCAL_AWS_KEY,
        aws_secret_access_key=LOCAL_AWS_KEY,
        upload_queues=upload_queues,
    )
