"""The landing bucket: where files arrive, and the SQS queues its notifications go to.

dagster-aws's `S3Resource` (client settings, credentials chain) plus the bucket's name and,
per domain, the queue receiving the bucket's `ObjectCreated` events for the domain's upload
prefix (one upload prefix per domain: S3 refuses overlapping notification filters).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

from dagster_aws.s3 import S3Resource
from pydantic import Field

# One client per service and configuration in a process. Creating one loads botocore's
# service models (measured: 0.25 s each; a landing sensor tick made three, half its time);
# boto3 clients are thread-safe, not fork-safe (hence the pid).
_CLIENTS: dict[tuple, Any] = {}
_CLIENTS_LOCK = threading.Lock()


class LandingBucketResource(S3Resource):
    """The S3 bucket files land in (AWS, or the local stack's moto server)."""

    bucket: str = Field(description="Name of the bucket files land in")
    upload_queues: dict[str, str] = Field(
        default_factory=dict,
        description="Domain -> URL of the SQS queue receiving the ObjectCreated events of the "
        "domain's upload prefix",
    )

    def queue_url(self, prefix: str) -> str:
        """The queue announcing uploads under `prefix` (`<domain>/...`); empty = list instead."""
        return self.upload_queues.get(prefix.split("/", 1)[0], "")

    def get_client(self) -> Any:
        return self._cached("s3", super().get_client)

    def get_sqs_client(self) -> Any:
        return self._cached("sqs", self._new_sqs_client)

    def _cached(self, service: str, create: Callable[[], Any]) -> Any:
        key = (os.getpid(), service, json.dumps(self.model_dump(), sort_keys=True, default=str))
        with _CLIENTS_LOCK:
            if key not in _CLIENTS:
                _CLIENTS[key] = create()
            return _CLIENTS[key]

    def _new_sqs_client(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            profile_name=self.profile_name,
        ).client("sqs", region_name=self.region_name, endpoint_url=self.endpoint_url)
