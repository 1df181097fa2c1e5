"""The local Dagster instance the demo, the CLI and `make dev` share."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster import DagsterInstance

from etl_assets.local.stack import state_dir

INSTANCE_CONFIG = Path(__file__).with_name("dagster.yaml")


def seed_dagster_home(home: Path) -> None:
    """Give `home` the project's dagster.yaml (telemetry off, one run per table's pool) unless
    it has one of its own."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")


def dagster_home() -> Path:
    """DAGSTER_HOME, else `<ETL_ASSETS_HOME or .etl_assets>/dagster_home`: the one instance the
    demo, the CLI and `make dev` share, so the UI shows what the demo ran."""
    return Path(os.environ.get("DAGSTER_HOME") or state_dir() / "dagster_home").resolve()


def local_instance() -> DagsterInstance:
    """The shared local instance (see `dagster_home`), its dagster.yaml seeded."""
    home = dagster_home()
    seed_dagster_home(home)
    return DagsterInstance.from_config(str(home))
