"""What a domain tells the tools around the code location (the demo, the CLI, the local stack)
about itself. Each domain package under `etl_assets/defs/` declares one `DOMAIN`; the tools
find them by walking that folder, so adding a domain edits no shared file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dagster import AssetKey

from etl_assets.loading.tables import TableSpec
from etl_assets.resources.warehouse import WarehouseResource


def _same_path(domain: str) -> Callable[[str], str]:
    return lambda relative: f"{domain}/{relative}"


@dataclass(frozen=True)
class Domain:
    """A domain: its S3 prefix and schema are both `name`."""

    name: str
    tables: Sequence[TableSpec]
    views: Sequence[str] = ()
    # the prefix an upload sensor watches: `etl-assets upload --domain` puts files there, and
    # the local stack points a notification queue at it
    upload_prefix: str | None = None
    # writes generated sample data into `<root>/<name>/` (what `etl-assets demo` loads)
    write_sample: Callable[[Path], object] | None = None
    # a data folder's relative file path -> its S3 key (default: `<name>/<relative path>`)
    object_key: Callable[[str], str] | None = None
    # the keys the demo uploaded -> tags for the demo's run (e.g. the partition range)
    run_tags: Callable[[Sequence[str]], dict[str, str]] = field(default=lambda keys: {})
    # a data folder's relative paths -> the groups the demo uploads and runs one after another
    upload_groups: Callable[[Sequence[str]], list[list[str]]] = field(
        default=lambda paths: [sorted(paths)]
    )
    # the demo starts this domain's runs as production does: by evaluating its upload sensors
    # and executing their run requests (for assets partitioned by what lands)
    runs_by_sensor: bool = False
    # tables found at run time (qualified names), reported beside `tables`
    discovered_tables: Callable[[WarehouseResource], list[str]] | None = None
    # what a landed key asks for (e.g. "append"), shown in a file's history
    key_action: Callable[[str], str | None] | None = None
    # (key, etag, force) -> (asset key, partition key, run config) applying that version again
    replay: Callable[[str, str, bool], tuple[AssetKey, str | None, dict]] | None = None

    def key_for(self, relative_path: str) -> str:
        return (self.object_key or _same_path(self.name))(relative_path)
