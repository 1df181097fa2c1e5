"""Issue 9's fault suite: loads killed at seeded random points — their connection terminated
by the server, or their process killed with SIGKILL — leave the published table and the
ledger exactly as before or exactly as after, and a retry loads exactly once.

Each point: a published version A, a load of B started, a kill after a random delay drawn
(seeded) from the load's own measured duration (x1.3, so some kills land after the commit).
Both publish paths are covered: a whole-table replace (delete + COPY in place) and an append,
each with CSV (streamed as it is) and newline-delimited JSON (converted by the fast path's
thread while COPY runs).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

from etl_assets.lib.checks import rows_match_source
from etl_assets.loading.formats import Csv, JsonAuto
from etl_assets.loading.loader import LoadTarget, ObjectLoader
from etl_assets.loading.publish import Append, Replace
from etl_assets.loading.sources import list_objects
from etl_assets.loading.tables import ensure_tables

SEED = 20261122
ROWS_A, ROWS_B = 1_000, 60_000
MODES = {"replace": Replace(), "append": Append()}
FORMATS = {"csv": Csv(), "json": JsonAuto()}
CASES = [(mode, fmt) for mode in sorted(MODES) for fmt in sorted(FORMATS)]


def body(fmt: str, start: int, rows: int, tag: str) -> bytes:
    if fmt == "json":
        lines = [json.dumps({"id": i, "tag": tag}) for i in range(start, start + rows)]
    else:
        lines = ["id,tag"] + [f"{i},{tag}" for i in range(start, start + rows)]
    return ("\n".join(lines) + "\n").encode()


class Scenario:
    """One table with version A published and version B in the bucket, for one mode."""

    def __init__(
        self, warehouse, s3_client, bucket: str, mode: str, name: str, fmt: str = "csv"
    ) -> None:
        self.warehouse, self.s3, self.bucket, self.mode = warehouse, s3_client, bucket, mode
        self.fmt = fmt
        self.table, self.prefix = name, f"{name}/"
        warehouse.execute(f"create table public.{name} (id integer not null, tag varchar(8))")
        self._put("a" if mode == "append" else "data", 0, ROWS_A, "a")
        self.load()
        key = "b" if mode == "append" else "data"  # replace: B overwrites A's key
        self.b_etag = self._put(key, ROWS_A if mode == "append" else 0, ROWS_B, "b")

    def _put(self, name: str, start: int, rows: int, tag: str) -> str:
        put = self.s3.put_object(
            Bucket=self.bucket,
            Key=f"{self.prefix}{name}.{self.fmt}",
            Body=body(self.fmt, start, rows, tag),
        )
        return put["ETag"].strip('"')

    @property
    def target(self) -> LoadTarget:
        return LoadTarget("public", self.table, MODES[self.mode])

    def load(self, warehouse=None) -> None:
        objects = list_objects(self.s3, self.bucket, self.prefix)
        ObjectLoader(warehouse or self.warehouse, self.s3).load(
            self.target, objects, FORMATS[self.fmt], rows_match_source()
        )

    def state(self) -> str:
        """'A' or 'B' (exactly), or what the table and ledger hold instead."""
        rows = self.warehouse.query(
            f"select tag, count(*), count(distinct id) from public.{self.table} group by tag"
            " order by tag"
        )
        loaded_b = self.warehouse.query(
            "select count(*) from etl_audit.file_ledger where etag = %s and status = 'loaded'"
            " and target_table = %s",
            (self.b_etag, f"public.{self.table}"),
        )[0][0]
        a = ("a", ROWS_A, ROWS_A)
        b = ("b", ROWS_B, ROWS_B)
        if rows == [a] and loaded_b == 0:
            return "A"
        expected_b = [a, b] if self.mode == "append" else [b]
        if rows == expected_b and loaded_b == 1:
            return "B"
        return f"neither: rows {rows}, ledger rows loading B {loaded_b}"


OTHER_SESSIONS = (
    "from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
    " and application_name = 'etl_assets' and backend_type = 'client backend'"
)


def terminate_loads(cur) -> None:
    """What a failover or an admin does: the server ends the loading sessions."""
    cur.execute("select pg_terminate_backend(pid) " + OTHER_SESSIONS)


def wait_for_no_other_session(warehouse) -> None:
    """After a client is killed, the server notices the closed socket and rolls back."""
    with warehouse.get_connection() as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                cur.execute("select count(*) " + OTHER_SESSIONS)
                if cur.fetchone()[0] == 0:
                    return
                time.sleep(0.02)
    raise AssertionError("a killed load's session is still open after 30 s")


def measured_load_s(warehouse, s3_client, bucket: str, mode: str, fmt: str) -> float:
    scenario = Scenario(warehouse, s3_client, bucket, mode, f"calibrate_{mode}_{fmt}", fmt)
    started = time.perf_counter()
    scenario.load()
    return time.perf_counter() - started


@pytest.mark.parametrize(("mode", "fmt"), CASES)
def test_a_load_whose_connection_is_killed_is_all_or_nothing_and_retries_once(
    warehouse, s3_client, bucket, mode, fmt
) -> None:
    ensure_tables(warehouse, [])  # the ledger
    duration = measured_load_s(warehouse, s3_client, bucket, mode, fmt)
    rng = random.Random(f"{SEED}-connection-{mode}-{fmt}")
    outcomes = []
    for point in range(12):
        name = f"conn_{mode}_{fmt}_{point}"
        scenario = Scenario(warehouse, s3_client, bucket, mode, name, fmt)
        delay = rng.uniform(0, duration * 1.3)
        with warehouse.get_connection() as killer, killer.cursor() as cur:
            killer.autocommit = True
            errors: list[BaseException] = []

            def load(scenario=scenario, errors=errors) -> None:
                try:
                    scenario.load()
                except BaseException as error:  # noqa: BLE001 - asserted below, not swallowed
                    errors.append(error)

            loading = threading.Thread(target=load)
            loading.start()
            time.sleep(delay)
            terminate_loads(cur)
            loading.join(timeout=60)
            assert not loading.is_alive()
            # the terminated session, and nothing else, may have ended the load
            assert all(isinstance(e, psycopg2.Error) for e in errors), errors
        state = scenario.state()
        assert state in ("A", "B"), f"point {point} ({delay:.3f} s): {state}"
        outcomes.append(state)
        scenario.load()  # the retry
        assert scenario.state() == "B", f"point {point}: retry gave {scenario.state()}"
    print(f"connection kills ({mode}, {fmt}): {outcomes.count('A')} before, then B")
    assert "A" in outcomes  # the kills did land inside loads


@pytest.mark.parametrize(("mode", "fmt"), CASES)
def test_a_load_whose_process_is_killed_is_all_or_nothing_and_retries_once(
    warehouse, s3_client, bucket, database, mode, fmt
) -> None:
    ensure_tables(warehouse, [])  # the ledger
    duration = measured_load_s(warehouse, s3_client, bucket, mode, fmt)
    rng = random.Random(f"{SEED}-process-{mode}-{fmt}")
    outcomes = []
    for point in range(6):
        name = f"proc_{mode}_{fmt}_{point}"
        scenario = Scenario(warehouse, s3_client, bucket, mode, name, fmt)
        args = {"database": database, "bucket": bucket, "table": name, "mode": mode, "fmt": fmt}
        child = subprocess.Popen(
            [sys.executable, "-m", "etl_assets_tests.loading.test_faults", json.dumps(args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, duration * 1.3))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert child.returncode in (-signal.SIGKILL, 0), child.stderr.read()[-2000:]
        wait_for_no_other_session(warehouse)
        state = scenario.state()
        assert state in ("A", "B"), f"point {point}: {state}"
        outcomes.append(state)
        scenario.load()
        assert scenario.state() == "B"
    print(f"process kills ({mode}, {fmt}): {outcomes.count('A')} before, then B")


def _child(args: dict) -> None:
    """Load B into the scenario's table, as a run's process would."""
    from etl_assets.local import stack as local_stack
    from etl_assets.local.resources import warehouse_for

    info = local_stack.read_stack()
    warehouse = warehouse_for(info, args["database"])
    s3_client = local_stack.s3_client(info)
    target = LoadTarget("public", args["table"], MODES[args["mode"]])
    objects = list_objects(s3_client, args["bucket"], f"{args['table']}/")
    print("ready", flush=True)
    file_format = FORMATS[args["fmt"]]
    ObjectLoader(warehouse, s3_client).load(target, objects, file_format, rows_match_source())


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
