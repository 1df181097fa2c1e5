"""Running the code location's own assets in tests, exactly as the UI and the demo do."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize

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
) -> ExecuteInProcessResult:
    """Materialize a domain's assets (or `selection` of them) with their checks."""
    return materialize(
        [*defs.assets, *defs.asset_checks],
        selection=selection if selection is not None else AssetSelection.groups(group),
        resources={"warehouse": warehouse, "s3": s3},
        instance=instance or DagsterInstance.ephemeral(),
        run_config=run_config,
        tags=tags,
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
