"""The landing zone: files routed by key (`landing/<db>/<action>/<table>/<file>`) into tables
declared by schema files, every file logged in the ledger."""

from collections.abc import Sequence

from dagster import AssetKey

from etl_assets.defs.landing import tables as registry
from etl_assets.defs.landing.assets import landing_tables, replay_request
from etl_assets.defs.landing.keys import PREFIX, RoutingError, parse_key
from etl_assets.defs.landing.sample_data import write_landing
from etl_assets.lib.domain import Domain
from etl_assets.loading.tables import ensure_tables
from etl_assets.resources.warehouse import WarehouseResource


def schema_files_first(paths: Sequence[str]) -> list[list[str]]:
    """Every schema file first, then the other files; each group in key order."""
    schemas = sorted(p for p in paths if p.split("/")[1:2] == ["schema"])
    others = sorted(p for p in paths if p not in schemas)
    return [group for group in (schemas, others) if group]


def declared_tables(warehouse: WarehouseResource) -> list[str]:
    ensure_tables(warehouse, [registry.REGISTRY])
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        return registry.declared_tables(cur)


def action_of(key: str) -> str | None:
    try:
        return parse_key(key).action
    except RoutingError:
        return None


def replay(key: str, etag: str, force: bool) -> tuple[AssetKey, str | None, dict]:
    partition, run_config = replay_request(key, etag, force)
    return landing_tables.key, partition, run_config


DOMAIN = Domain(
    name=registry.SCHEMA,
    tables=[registry.REGISTRY],
    upload_prefix=PREFIX,
    write_sample=write_landing,
    upload_groups=schema_files_first,
    runs_by_sensor=True,
    discovered_tables=declared_tables,
    key_action=action_of,
    replay=replay,
)
