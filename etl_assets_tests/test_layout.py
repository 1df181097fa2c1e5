"""The layout promises: imports point down, nothing below `defs/` names a domain, the SQL ships in
the wheel, a production install needs no local stack, and a new domain is one folder."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from etl_assets import domains

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "etl_assets"
# what each layer may not import (defs -> lib -> loading -> resources; local and cloud
# beside them)
FORBIDDEN = {
    "resources": ["loading", "lib", "defs", "local", "domains", "demo", "cli"],
    "loading": ["lib", "defs", "local", "domains", "demo", "cli"],
    "lib": ["defs", "local", "domains", "demo", "cli"],
    "local": ["lib", "defs", "domains", "demo", "cli"],
    "cloud": ["lib", "defs", "local", "domains", "demo", "cli"],
}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def run(args: list[str], cwd: Path, env: dict, timeout: int = 600):
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-4000:])
    return done


def test_imports_point_down_only() -> None:
    offences = []
    for layer, forbidden in FORBIDDEN.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            for module in imported_modules(path):
                if any(module.startswith(f"etl_assets.{f}") for f in forbidden):
                    offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offences == []


def test_a_domain_imports_no_other_domain() -> None:
    names = [d.name for d in domains.discover()]
    offences = []
    for name in names:
        for path in (PACKAGE / "defs" / name).rglob("*.py"):
            for module in imported_modules(path):
                others = [o for o in names if o != name]
                if any(module.startswith(f"etl_assets.defs.{o}") for o in others):
                    offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offences == []


def domain_references(path: Path, names: list[str]) -> list[str]:
    """Where a file names a domain as code does: a string naming its S3 prefix or schema
    (`"flights/..."`, `"sparkify.songplays"`), or a schema-qualified name in SQL."""
    if path.suffix == ".sql":
        text = path.read_text().lower()
        return [n for n in names if re.search(rf"\b{n}\.", text)]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [n for n in names if re.match(rf"{n}([/.]|$)", node.value.lower())]
    return found


def test_nothing_outside_defs_names_a_domain() -> None:
    names = [d.name for d in domains.discover()]
    assert len(names) >= 3
    shared = [
        p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".sql") and "defs" not in p.parts
    ]
    offences = [
        f"{p.relative_to(ROOT)} names {n}" for p in shared for n in domain_references(p, names)
    ]
    assert offences == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a clean copy of the project (a stale build/ folder would leak into it)."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"
    skip = shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", ".etl_assets", "__pycache__", "*cache*"
    )
    shutil.copytree(ROOT, source, ignore=skip, symlinks=True)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(source), "-w", str(out)],
        out,
        env,
    )
    (found,) = out.glob("etl_assets-*.whl")
    return found


def test_the_wheel_ships_every_sql_file_and_keeps_the_local_stack_optional(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(n for n in names if n.endswith("METADATA"))
        requires = [
            line
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    sql_files = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.sql")}
    assert len(sql_files) > 15 and sql_files <= names
    assert "etl_assets/dg.toml" in names
    assert "etl_assets/defs/sparkify/log_json_path.json" in names  # the shipped mapping
    assert not any(n.startswith("etl_assets_tests/") for n in names)
    for package in ["pgserver", "moto", "psutil"]:
        (line,) = [r for r in requires if r.split(":")[1].strip().startswith(package)]
        assert 'extra == "local"' in line, line


def test_the_installed_wheel_runs_the_demo_from_any_directory(wheel: Path, tmp_path: Path):
    """Installed files only (no source tree on the path): the SQL is read from the package."""
    site = tmp_path / "site"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        tmp_path,
        env,
    )
    elsewhere = tmp_path / "somewhere else"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "ETL_ASSETS_HOME": str(tmp_path / "state")}
    for variable in ["ETL_S3_BUCKET", "DAGSTER_HOME"]:
        env.pop(variable, None)
    where = run(
        [sys.executable, "-c", "import etl_assets; print(etl_assets.__file__)"], elsewhere, env
    )
    assert where.stdout.strip().startswith(str(site))
    try:
        done = run([sys.executable, "-m", "etl_assets.cli", "demo", "--json"], elsewhere, env)
        report = json.loads(done.stdout)
        assert report["tables"]["sparkify.songplays"] > 0
        assert report["tables"]["flights.flights_reporting"] > 0
        assert report["checks"] and all(c["passed"] for c in report["checks"])
    finally:
        run([sys.executable, "-m", "etl_assets.cli", "down"], elsewhere, env)


def test_a_production_install_loads_the_code_location_without_the_local_stack() -> None:
    """moto, pgserver and psutil blocked from import: the code location still loads."""
    code = (
        "import sys\n"
        "for name in ['moto', 'pgserver', 'psutil']: sys.modules[name] = None\n"
        "from etl_assets.definitions import defs\n"
        "print(len(list(defs.resolve_asset_graph().get_all_asset_keys())))\n"
    )
    env = {
        **os.environ,
        "ETL_WAREHOUSE_HOST": "cluster.example",
        "ETL_WAREHOUSE_PASSWORD": "x",
        "ETL_S3_BUCKET": "bucket",
        "ETL_REDSHIFT_IAM_ROLE": "arn:aws:iam::123456789012:role/r",
    }
    done = run([sys.executable, "-c", code], ROOT, env)
    assert int(done.stdout.strip().splitlines()[-1]) >= 12


TOY_FILES = {
    "__init__.py": """
from pathlib import Path

from etl_assets.defs.toy.tables import READINGS
from etl_assets.lib.domain import Domain


def write_sample(root: Path) -> None:
    folder = root / "toy" / "uploads"
    folder.mkdir(parents=True)
    (folder / "r1.csv").write_text("sensor_id,taken_at,value\\na,1,1.5\\nb,1,2.0\\na,2,3.5\\n")


DOMAIN = Domain(
    name="toy", tables=[READINGS], views=["per_sensor"], upload_prefix="toy/uploads/",
    write_sample=write_sample,
)
""",
    "tables.py": """
from etl_assets.loading.sql_files import sql_folder
from etl_assets.loading.tables import TableSpec

SQL = sql_folder(__file__)
READINGS = TableSpec("toy", "readings", SQL, key=("sensor_id", "taken_at"))
""",
    "assets.py": """
from dagster import AssetKey

from etl_assets.defs.toy.tables import READINGS, SQL
from etl_assets.lib.assets import table_from_s3, view
from etl_assets.lib.sensors import upload_sensor
from etl_assets.lib.sources import Uploads
from etl_assets.loading.formats import Csv
from etl_assets.loading.publish import MergeByKey

readings = table_from_s3(
    READINGS, source=Uploads("toy/uploads/"), file_format=Csv(),
    publish=MergeByKey(("sensor_id", "taken_at")), description="Sensor readings, merged.",
)
per_sensor = view(
    "toy", "per_sensor", SQL, deps=[AssetKey(["toy", "readings"])], description="Per sensor."
)
toy_uploads = upload_sensor(readings, "toy/uploads/", policy="every_file")
""",
    "sql/readings.ddl.sql": (
        "create table if not exists toy.readings (sensor_id varchar(8) not null,"
        " taken_at integer not null, value double precision)"
    ),
    "sql/per_sensor.view.sql": (
        "select sensor_id, count(*) as readings from toy.readings group by sensor_id"
    ),
}


def test_a_new_domain_is_one_folder(tmp_path: Path) -> None:
    """A copy of the package plus `defs/toy/`: the code location, the local stack, the CLI and
    the demo pick it up with no other file changed."""
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "etl_assets", ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in TOY_FILES.items():
        path = copy / "etl_assets" / "defs" / "toy" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip())
    env = {**os.environ, "PYTHONPATH": str(copy), "ETL_ASSETS_HOME": str(tmp_path / "state")}
    for variable in ["ETL_S3_BUCKET", "DAGSTER_HOME"]:
        env.pop(variable, None)
    listing = run(
        [
            sys.executable,
            "-c",
            (
                "from etl_assets.definitions import defs\n"
                "keys = defs.resolve_asset_graph().get_all_asset_keys()\n"
                "print(sorted(k.to_user_string() for k in keys if k.path[0] == 'toy'),"
                " [s.name for s in defs.sensors])"
            ),
        ],
        tmp_path,
        env,
    )
    assert "['toy/per_sensor', 'toy/readings']" in listing.stdout
    assert "readings_upload_sensor" in listing.stdout
    run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "etl_assets.definitions",
        ],
        tmp_path,
        env,
    )
    try:
        up = run([sys.executable, "-m", "etl_assets.cli", "up"], tmp_path, env)
        assert "PostgreSQL" in up.stdout
        stack = json.loads((tmp_path / "state" / "stack.json").read_text())
        assert "toy" in stack["upload_queues"]
        data = tmp_path / "one.csv"
        data.write_text("sensor_id,taken_at,value\nc,1,0.5\n")
        upload = run(
            [sys.executable, "-m", "etl_assets.cli", "upload", "--domain", "toy", str(data)],
            tmp_path,
            env,
        )
        assert "toy/uploads/one.csv" in upload.stdout
        done = run([sys.executable, "-m", "etl_assets.cli", "demo", "--json"], tmp_path, env)
        report = json.loads(done.stdout)
        assert report["tables"]["toy.readings"] == 3
        assert report["tables"]["toy.per_sensor"] == 2
        toy_checks = {
            c["check"]: c["passed"] for c in report["checks"] if c["asset"] == "toy/readings"
        }
        assert toy_checks == {
            "rows_match_source": True,
            "sensor_id_taken_at_unique_not_null": True,
            "upload_order_known": True,  # every upload-loaded table says if its order was known
        }
    finally:
        run([sys.executable, "-m", "etl_assets.cli", "down"], tmp_path, env)
