"""Converters for files the warehouse cannot COPY as they are. Each writes its output under
`_converted/<original key>` and returns that object; the loader records the original's version
in the ledger and names the original in every refusal."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from etl_assets.loading.ledger import SourceObject

CONVERTED_PREFIX = "_converted/"


@dataclass(frozen=True)
class JsonArrayToLines:
    """COPY cannot read a top-level JSON array (Redshift's; and the streamed reader refuses it
    the same way): write it back one object per line, on both dialects, so the two load the
    same rows. Small reference files only."""

    max_bytes: int = 16 * 1024 * 1024

    def applies_to(self, dialect: str) -> bool:
        del dialect
        return True

    def convert(self, s3_client, source: SourceObject) -> SourceObject:
        if source.size > self.max_bytes:
            raise ValueError(f"{source.url}: {source.size} bytes is too large for a JSON array")
        body = s3_client.get_object(Bucket=source.bucket, Key=source.key, IfMatch=source.etag)
        records = orjson.loads(body["Body"].read())
        if not isinstance(records, list):
            raise ValueError(f"{source.url}: expected a JSON array of objects")
        lines = b"".join(orjson.dumps(record) + b"\n" for record in records)
        return put_converted(s3_client, source, lines)


def put_converted(s3_client, source: SourceObject, body: bytes, suffix: str = "") -> SourceObject:
    """Store a conversion of `source` (`_converted/<key><suffix>`) and return that version."""
    key = CONVERTED_PREFIX + source.key + suffix
    written = s3_client.put_object(Bucket=source.bucket, Key=key, Body=body)
    head = s3_client.head_object(Bucket=source.bucket, Key=key, IfMatch=written["ETag"])
    return SourceObject(
        source.bucket, key, head["ETag"].strip('"'), len(body), head["LastModified"]
    )
