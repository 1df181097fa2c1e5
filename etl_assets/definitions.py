"""The etl_assets code location: every domain's assets, checks and sensors, and the resources."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from etl_assets.defs.flights.assets import FLIGHTS_ASSETS
from etl_assets.defs.flights.checks import FLIGHTS_CHECKS
from etl_assets.defs.flights.sensors import flights_upload_sensor
from etl_assets.defs.sparkify.assets import SPARKIFY_ASSETS
from etl_assets.defs.sparkify.checks import SPARKIFY_CHECKS
from etl_assets.settings import s3_from_env, uses_local_stack, warehouse_from_env


def build_definitions() -> Definitions:
    return Definitions(
        assets=[*SPARKIFY_ASSETS, *FLIGHTS_ASSETS],
        asset_checks=[*SPARKIFY_CHECKS, *FLIGHTS_CHECKS],
        sensors=[flights_upload_sensor],
        resources={"warehouse": warehouse_from_env(), "s3": s3_from_env()},
        # Local runs execute in one process (measured: 10 trivial steps 8 s multiprocess,
        # 0.4 s in process); production keeps Dagster's default executor or a K8s/ECS launcher.
        executor=in_process_executor if uses_local_stack() else None,
    )


defs = build_definitions()
