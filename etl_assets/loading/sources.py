"""Listing the object versions a load covers."""

from __future__ import annotations

from collections.abc import Iterator

from etl_assets.loading.ledger import SourceObject


def list_objects(s3_client, bucket: str, prefix: str, suffix: str = "") -> list[SourceObject]:
    """Every object under `prefix` ending in `suffix`, in key order, with its ETag."""
    return sorted(_iter_objects(s3_client, bucket, prefix, suffix), key=lambda o: o.key)


def _iter_objects(s3_client, bucket: str, prefix: str, suffix: str) -> Iterator[SourceObject]:
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(suffix) and not item["Key"].endswith("/"):
                yield SourceObject(
                    bucket=bucket,
                    key=item["Key"],
                    etag=item["ETag"].strip('"'),
                    size=item["Size"],
                    last_modified=item["LastModified"],
                )


def read_small_object(s3_client, bucket: str, key: str, limit_bytes: int = 1 << 20) -> str:
    """A small configuration object (a JSONPaths file), refused if it is not small."""
    response = s3_client.get_object(Bucket=bucket, Key=key)
    if response["ContentLength"] > limit_bytes:
        raise ValueError(
            f"s3://{bucket}/{key} is {response['ContentLength']} bytes; expected a small file"
        )
    return response["Body"].read().decode()
