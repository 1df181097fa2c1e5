"""Which object versions a table loads: every object under a prefix, one named key, or the
upload an upload sensor asked for (by run config)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from dagster import AssetExecutionContext, Config, TimeWindow
from pydantic import Field

from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.sources import list_objects


class UploadConfig(Config):
    """Which uploaded object version to load; empty = the newest under the upload prefix."""

    key: str = Field(default="", description="S3 key of the upload")
    etag: str = Field(default="", description="its ETag (the version the sensor saw)")
    superseded: list[str] = Field(
        default_factory=list, description="keys of older uploads this one makes obsolete"
    )
    same_time_as: list[str] = Field(
        default_factory=list,
        description="keys of uploads that landed in the same instant (they cannot be ordered)",
    )


@dataclass
class Selection:
    """The versions to load, and the versions this load makes obsolete unloaded."""

    objects: list[SourceObject]
    superseded: list[SourceObject] = field(default_factory=list)


@dataclass(frozen=True)
class Prefix:
    """Every object under `prefix` whose key ends with `suffix`."""

    prefix: str
    suffix: str = ""

    def select(self, s3_client, bucket: str, context: AssetExecutionContext) -> Selection:
        del context
        return Selection(list_objects(s3_client, bucket, self.prefix, self.suffix))


@dataclass(frozen=True)
class Key:
    """Exactly one object; its absence fails the run naming the object."""

    key: str

    def select(self, s3_client, bucket: str, context: AssetExecutionContext) -> Selection:
        del context
        found = [o for o in list_objects(s3_client, bucket, self.key) if o.key == self.key]
        if not found:
            raise FileNotFoundError(f"s3://{bucket}/{self.key} does not exist")
        return Selection(found)


@dataclass(frozen=True)
class Uploads:
    """The upload version the run config names (an upload sensor's request), or the newest
    under `prefix`; the config's `superseded` keys are recorded as superseded by this load."""

    prefix: str

    def select(
        self, s3_client, bucket: str, context: AssetExecutionContext, config: UploadConfig
    ) -> Selection:
        del context
        uploads = list_objects(s3_client, bucket, self.prefix)
        chosen = self._choose(uploads, config, bucket)
        obsolete = set(config.superseded) - {chosen.key}
        return Selection([chosen], [o for o in uploads if o.key in obsolete])

    def _choose(self, uploads: list[SourceObject], config: UploadConfig, bucket: str):
        if config.key:
            match = [o for o in uploads if o.key == config.key]
            if not match:
                raise FileNotFoundError(f"s3://{bucket}/{config.key} is no longer in the bucket")
            if config.etag and match[0].etag != config.etag:
                raise RuntimeError(
                    f"s3://{bucket}/{config.key} was overwritten since it was seen (ETag "
                    f"{config.etag} -> {match[0].etag}); the newer version gets its own run"
                )
            return match[0]
        if not uploads:
            raise FileNotFoundError(f"no upload under s3://{bucket}/{self.prefix}")
        return max(uploads, key=lambda o: (o.last_modified, o.key))


@dataclass(frozen=True)
class DatedFiles:
    """The objects under `prefix` whose file name carries a date (YYYY-MM-DD) inside the run's
    partition time window: daily files for daily partitions, a range for a backfill."""

    prefix: str
    suffix: str = ""

    def select(self, s3_client, bucket: str, context: AssetExecutionContext) -> Selection:
        return self.select_window(s3_client, bucket, context.partition_time_window)

    def select_window(self, s3_client, bucket: str, window: TimeWindow) -> Selection:
        first, end = window.start.date(), window.end.date()
        found = []
        for obj in list_objects(s3_client, bucket, self.prefix, self.suffix):
            match = _DATE.search(obj.key.rsplit("/", 1)[-1])
            if match and first <= date.fromisoformat(match.group(1)) < end:
                found.append(obj)
        return Selection(found)


_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")
ObjectSource = Prefix | Key | Uploads | DatedFiles
