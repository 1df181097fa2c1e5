"""The local Dagster instance: one run per table's pool at a time."""

from pathlib import Path

from dagster import DagsterInstance
from dagster._core.instance.config import PoolGranularity

from etl_assets.definitions import defs
from etl_assets.local.instance import seed_dagster_home


def test_every_asset_that_writes_a_table_runs_in_that_tables_pool() -> None:
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if not assets_def.is_executable or not assets_def.keys:
            continue
        (key,) = assets_def.keys
        assert assets_def.op.pool == ".".join(key.path), key


def test_the_shipped_instance_runs_one_run_per_pool(tmp_path: Path) -> None:
    seed_dagster_home(tmp_path)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert pools.pool_granularity == PoolGranularity.RUN
        assert instance.event_log_storage.get_concurrency_info("flights.flights").limit == 1


def test_a_dagster_home_with_its_own_configuration_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    seed_dagster_home(tmp_path)
    assert (tmp_path / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"


def test_without_dagster_home_the_demo_and_cli_share_one_instance(tmp_path, monkeypatch) -> None:
    """Issue 12 item 1: the demo used a throwaway instance unless DAGSTER_HOME was set."""
    from etl_assets.local.instance import local_instance

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("ETL_ASSETS_HOME", str(tmp_path))
    with local_instance() as first, local_instance() as second:
        assert not first.is_ephemeral
        assert first.root_directory == second.root_directory == str(tmp_path / "dagster_home")
    assert "enabled: false" in (tmp_path / "dagster_home" / "dagster.yaml").read_text()
