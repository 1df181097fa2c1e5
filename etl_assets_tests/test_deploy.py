"""Issue 11: what the Dockerfile runs is a working code location server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from etl_assets.local.stack import free_port

ROOT = Path(__file__).resolve().parents[1]


def dockerfile_command() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    return json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))


def test_the_images_command_serves_the_code_location_over_grpc() -> None:
    command = dockerfile_command()
    assert command[:3] == ["dagster", "api", "grpc"]
    port = free_port()
    args = [a if a != "4000" else str(port) for a in command[3:]]
    args = [a if a != "0.0.0.0" else "127.0.0.1" for a in args]
    env = {  # production settings: Redshift and S3, nothing of the local stack
        **os.environ,
        "ETL_WAREHOUSE_HOST": "cluster.example",
        "ETL_WAREHOUSE_PASSWORD": "not-used",
        "ETL_REDSHIFT_IAM_ROLE": "arn:aws:iam::123456789012:role/redshift-copy",
        "ETL_S3_BUCKET": "landing",
    }
    dagster = [sys.executable, "-m", "dagster"]
    server = subprocess.Popen(
        dagster + command[1:3] + args, env=env, cwd="/", stderr=subprocess.PIPE, text=True
    )
    try:
        deadline, healthy = time.monotonic() + 120, None
        while time.monotonic() < deadline and server.poll() is None:
            healthy = subprocess.run(
                dagster + ["api", "grpc-health-check", "--port", str(port)],
                capture_output=True,
                timeout=60,
            )
            if healthy.returncode == 0:
                break
            time.sleep(1)
        assert server.poll() is None, server.stderr.read()[-3000:]
        assert healthy is not None and healthy.returncode == 0
    finally:
        server.terminate()
        server.wait(timeout=30)
