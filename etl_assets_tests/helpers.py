"""Running the code location's own assets in tests, exactly as the UI and the demo do."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetSelection,
    DagsterInstance,
    ExecuteInProcessResult,
    build_sensor_context,
    materialize,
)

from etl_assets import demo
from etl_assets.definitions import defs


def materialize_group(
    group: str,
    warehouse,
    s3,
    *,
    selection: Sequence | None = None,
    run_config: dict | None = None,
    tags: dict | None = None,
    instance: DagsterInstance | None = None,
    partition_key: str | None = None,
) -> ExecuteInProcessResult:
    """Materialize a domain's assets (or `selection` of them) with their checks."""
    return materialize(
        [*defs.assets, *defs.asset_checks],
        selection=selection if selection is not None else AssetSelection.groups(group),
        resources={"warehouse": warehouse, "s3": s3},
        instance=instance or DagsterInstance.ephemeral(),
        run_config=run_config,
        tags=tags,
        partition_key=partition_key,
        raise_on_error=False,
    )


def check_results(result) -> dict[tuple[str, str], bool]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }


def failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.to_string()


def sensor_tick_and_runs(
    sensor_name: str, warehouse, s3, instance: DagsterInstance, cursor: str | None = None
) -> tuple[list[ExecuteInProcessResult], str | None]:
    """One tick of a code-location sensor, as the daemon would run it, then each run it asks
    for (new dynamic partitions added first). Returns the runs' results and the new cursor."""
    sensor_def = next(s for s in defs.sensors if s.name == sensor_name)
    resources = {"warehouse": warehouse, "s3": s3}
    tick = sensor_def(build_sensor_context(instance=instance, cursor=cursor, resources=resources))
    return execute_requests(sensor_def, tick, resources, instance), tick.cursor


def execute_requests(sensor_def, tick, resources: dict, instance) -> list[ExecuteInProcessResult]:
    """What the daemon does with a tick (the demo's own code): partitions first, then runs."""
    return [
        result for result, _ in demo.execute_requests(defs, sensor_def, tick, resources, instance)
    ]
