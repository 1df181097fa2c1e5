"""Sparkify: song metadata and app event logs (JSON in S3) -> a song-play star schema."""

import re
from collections.abc import Sequence

from etl_assets.defs.sparkify import tables as t
from etl_assets.defs.sparkify.sample_data import write_sparkify
from etl_assets.lib.domain import Domain

_LOG_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})-events\.json$")


def partition_range(keys: Sequence[str]) -> dict[str, str]:
    """The days of the uploaded event logs, as the run's partition range."""
    days = sorted(m.group(1) for m in map(_LOG_DAY.search, keys) if m)
    if not days:
        return {}
    return {
        "dagster/asset_partition_range_start": days[0],
        "dagster/asset_partition_range_end": days[-1],
    }


DOMAIN = Domain(
    name=t.SCHEMA,
    tables=t.ALL_TABLES,
    write_sample=write_sparkify,
    run_tags=partition_range,
)
