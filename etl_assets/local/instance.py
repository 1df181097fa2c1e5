"""The local Dagster instance the demo, the CLI and `make dev` share."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster import DagsterInstance

INSTANCE_CONFIG = Path(__file__).with_name("dagster.yaml")


def seed_dagster_home(home: Path) -> None:
    """Give `home` the project's dagster.yaml (telemetry off, one run per table's pool) unless
    it has one of its own."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")


def local_instance() -> DagsterInstance:
    """The persistent instance when DAGSTER_HOME is set (the UI then shows these runs), else a
    throwaway one."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return DagsterInstance.ephemeral()
    seed_dagster_home(Path(home))
    return DagsterInstance.get()
