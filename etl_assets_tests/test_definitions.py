"""The code location loads, validates, and describes itself."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey

from etl_assets.definitions import defs

ROOT = Path(__file__).resolve().parents[1]


def test_dagster_definitions_validate_passes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Validation successful" in done.stderr + done.stdout


def test_every_asset_is_keyed_schema_table_grouped_and_described() -> None:
    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    expected = {
        AssetKey(["sparkify", t])
        for t in [
            "staging_events",
            "staging_songs",
            "songplays",
            "users",
            "songs",
            "artists",
            "time",
        ]
    }
    assert expected <= keys
    for key in expected:
        node = graph.get(key)
        assert node.group_name == "sparkify"
        assert node.description and len(node.description) > 20
        sql_dir = ROOT / "etl_assets" / "defs" / key.path[0] / "sql"
        assert (sql_dir / f"{key.path[1]}.ddl.sql").exists()


def test_flights_assets_views_and_sensor_are_in_the_code_location() -> None:
    graph = defs.resolve_asset_graph()
    for name in ["airlines", "airports", "flights", "flights_reporting", "delayed_flights_agg"]:
        node = graph.get(AssetKey(["flights", name]))
        assert node.group_name == "flights" and node.description
    views = graph.get(AssetKey(["flights", "flights_reporting"])).parent_keys
    assert {k.path[-1] for k in views} == {"flights", "airlines", "airports"}
    sensor = defs.resolve_sensor_def("flights_upload_sensor")
    assert sensor.minimum_interval_seconds <= 30


def test_lineage_runs_staging_to_facts_and_dimensions() -> None:
    graph = defs.resolve_asset_graph()
    parents = {k.path[-1] for k in graph.get(AssetKey(["sparkify", "songplays"])).parent_keys}
    assert parents == {"staging_events", "staging_songs"}
    time_parents = graph.get(AssetKey(["sparkify", "time"])).parent_keys
    assert {k.path[-1] for k in time_parents} == {"songplays"}


def test_sensor_runs_belong_to_a_named_job_per_domain() -> None:
    """Issue 12 item 4: the Runs list showed no target for an anonymous selection."""
    jobs = {job.name: job for job in defs.resolve_all_job_defs()}
    for sensor_def in defs.sensors:
        domain = sensor_def.name.removesuffix("_upload_sensor")
        assert sensor_def.job_name == f"{domain}_uploads"
        keys = jobs[f"{domain}_uploads"].asset_layer.executable_asset_keys
        assert keys and all(k.path[0] == domain for k in keys), keys


def _dg(*args: str) -> subprocess.CompletedProcess:
    """Dagster's own project tool, from this environment, in the project's folder."""
    dg = Path(sys.executable).parent / "dg"
    return subprocess.run(
        [str(dg), *args],
        cwd=ROOT,
        env={**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1])},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dg_check_defs_and_dg_list_defs_read_the_code_location() -> None:
    """`dg check defs` validates the code location as Dagster's tooling loads it, and `dg list
    defs` lists what the UI would show: every asset of the code location, every sensor."""
    checked = _dg("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed = _dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    keys = {asset["asset_key"] for asset in found["assets"]}
    assert keys == {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    sensors = {sensor["name"] for sensor in found["sensors"]}
    assert sensors == {sensor.name for sensor in defs.sensors}
