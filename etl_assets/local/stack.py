"""The embedded local stack: a real PostgreSQL (pgserver's binaries) and a real S3 HTTP API
(moto's server mode), both on free loopback ports, state kept under one folder.

Its packages (pgserver, moto, psutil) come with the `local` extra and are imported only when a
stack is started or stopped, so a production install imports this module without them.

pgserver's own `get_server` listens on a Unix socket only and stops the server when the last
Python handle exits; `etl-assets up` must outlive its process and serve TCP clients (psql,
Dagster, tests), so the lifecycle here drives pgserver's packaged `initdb`/`pg_ctl` directly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

LOCAL_BUCKET = "etl-assets-local"
LOCAL_AWS_KEY = "local-stack"  # moto accepts any key; not a secret
PG_SYSTEM_USER = "pgserver"  # postgres refuses to run as root


def state_dir() -> Path:
    return Path(os.environ.get("ETL_ASSETS_HOME", Path.cwd() / ".etl_assets")).resolve()


@dataclass(frozen=True)
class StackInfo:
    """Where the running local stack listens; written to `<state dir>/stack.json`."""

    pg_host: str
    pg_port: int
    pg_user: str
    pg_database: str
    s3_endpoint_url: str
    bucket: str
    moto_pid: int
    upload_queues: dict[str, str] = field(default_factory=dict)  # domain -> SQS queue URL

    def dsn(self) -> str:
        return (
            f"host={self.pg_host} port={self.pg_port} user={self.pg_user} dbname={self.pg_database}"
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_ctl(args: list[str], pgdata: Path) -> str:
    from pgserver import _commands

    return _commands.pg_ctl(args, pgdata=pgdata, user=_system_user(), timeout=60)


def _system_user() -> str | None:
    return PG_SYSTEM_USER if os.geteuid() == 0 else None


def _init_pgdata(pgdata: Path) -> None:
    from pgserver import _commands, utils

    pgdata.mkdir(parents=True, exist_ok=True)
    user = _system_user()
    if user:
        import pwd

        utils.ensure_user_exists(user)
        utils.ensure_prefix_permissions(pgdata)
        bin_dir = _commands.POSTGRES_BIN_PATH
        utils.ensure_prefix_permissions(bin_dir)
        utils.ensure_folder_permissions(bin_dir, 0o055)
        utils.ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    if not (pgdata / "PG_VERSION").exists():
        _commands.initdb(
            ["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user
        )


def _pg_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split("\n", 1)[0])
    return _pid_exists(pid)


def _pid_exists(pid: int) -> bool:
    import psutil

    return psutil.pid_exists(pid)


def _start_postgres(pgdata: Path, port: int) -> None:
    # A local, disposable warehouse: durability settings off for speed (never in production).
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        # a table created and filled in one transaction then skips the write-ahead log
        "-c wal_level=minimal -c max_wal_senders=0 "
        "-c max_connections=200 -c shared_buffers=256MB"
    )
    log = pgdata / "server.log"
    _pg_ctl(["-w", "-l", str(log), "-o", options, "start"], pgdata)


def _start_moto(home: Path, port: int) -> int:
    log = open(home / "moto.log", "ab")  # noqa: SIM115 - handed to the detached child
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_http(f"http://127.0.0.1:{port}/moto-api/", timeout_s=30)
    return proc.pid


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"local S3 did not answer at {url} within {timeout_s}s"
                ) from None
            time.sleep(0.1)


def _moto_alive(pid: int, endpoint: str) -> bool:
    if not _pid_exists(pid):
        return False
    try:
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
        return True
    except OSError:
        return False


def read_stack(home: Path | None = None) -> StackInfo | None:
    path = (home or state_dir()) / "stack.json"
    if not path.exists():
        return None
    known = {f.name for f in fields(StackInfo)}
    return StackInfo(**{k: v for k, v in json.loads(path.read_text()).items() if k in known})


def up(home: Path | None = None, upload_prefixes: Mapping[str, str] | None = None) -> StackInfo:
    """Start (or find running) PostgreSQL and S3, with a notification queue for each domain's
    upload prefix (`upload_prefixes`: domain -> prefix); idempotent."""
    home = home or state_dir()
    home.mkdir(parents=True, exist_ok=True)
    pgdata = home / "pgdata"
    previous = read_stack(home)
    _init_pgdata(pgdata)
    pg_port = previous.pg_port if previous else free_port()
    if not _pg_running(pgdata):
        if previous is None or not _port_free(pg_port):
            pg_port = free_port()
        _start_postgres(pgdata, pg_port)
    if previous and _moto_alive(previous.moto_pid, previous.s3_endpoint_url):
        s3_endpoint, moto_pid = previous.s3_endpoint_url, previous.moto_pid
    else:
        s3_port = free_port()
        moto_pid = _start_moto(home, s3_port)
        s3_endpoint = f"http://127.0.0.1:{s3_port}"
    info = StackInfo(
        "127.0.0.1", pg_port, "postgres", "postgres", s3_endpoint, LOCAL_BUCKET, moto_pid
    )
    _ensure_bucket(info)
    info = replace(info, upload_queues=_ensure_upload_queues(info, upload_prefixes or {}))
    (home / "stack.json").write_text(json.dumps(asdict(info), indent=2))
    return info


def _ensure_upload_queues(info: StackInfo, upload_prefixes: Mapping[str, str]) -> dict[str, str]:
    from etl_assets.loading.upload_queue import ensure_upload_queues

    return ensure_upload_queues(
        s3_client(info), aws_client(info, "sqs"), info.bucket, dict(upload_prefixes), "etl-assets"
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _ensure_bucket(info: StackInfo) -> None:
    client = s3_client(info)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if info.bucket not in existing:
        client.create_bucket(Bucket=info.bucket)


def s3_client(info: StackInfo):
    return aws_client(info, "s3")


def aws_client(info: StackInfo, service: str):
    import boto3

    return boto3.client(
        service,
        endpoint_url=info.s3_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_AWS_KEY,
        aws_secret_access_key=LOCAL_AWS_KEY,
    )


def down(home: Path | None = None) -> None:
    """Stop both servers; the data directory stays for the next `up`."""
    home = home or state_dir()
    info = read_stack(home)
    pgdata = home / "pgdata"
    if _pg_running(pgdata):
        _pg_ctl(["-w", "-m", "fast", "stop"], pgdata)
    if info and _pid_exists(info.moto_pid):
        import psutil

        proc = psutil.Process(info.moto_pid)
        proc.terminate()
        try:
            proc.wait(10)
        except psutil.TimeoutExpired:
            proc.kill()
    (home / "stack.json").unlink(missing_ok=True)
