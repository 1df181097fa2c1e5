"""A sensor on the vendor's upload prefix: one run per new object version, the newest only."""

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.sensor import get_objects

from etl_assets.defs.flights import tables as t
from etl_assets.defs.flights.assets import flights
from etl_assets.resources import upload_queue
from etl_assets.settings import bucket, flights_queue_url, sqs_client, uses_local_stack

# LastModified has one-second resolution and listings can lag: look back this far each tick
# and tell old from new by the versions already requested (never by `since_key`, dagster
# issue 22892, and never by a strictly-greater timestamp alone, which skips equal ones).
OVERLAP = timedelta(minutes=10)
# With a queue, the prefix is still listed this often, to catch a lost notification while the
# upload is inside the look-back window.
RECONCILE_EVERY = timedelta(minutes=5)
MAX_SUPERSEDED = 1000


def sensor_interval_s() -> int:
    default = "5" if uses_local_stack() else "30"
    return int(os.environ.get("ETL_FLIGHTS_SENSOR_INTERVAL_S", default))


@dataclass
class UploadCursor:
    """High-water LastModified, and the versions (key:etag) requested inside the overlap."""

    high_water: datetime | None = None
    seen: set[str] = field(default_factory=set)
    listed_at: datetime | None = None  # last full listing of the prefix

    @classmethod
    def parse(cls, text: str | None) -> "UploadCursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(_time(data["high_water"]), set(data["seen"]), _time(data.get("listed_at")))

    def dump(self) -> str:
        return json.dumps(
            {
                "high_water": _iso(self.high_water),
                "seen": sorted(self.seen),
                "listed_at": _iso(self.listed_at),
            }
        )

    def listing_due(self, now: datetime) -> bool:
        return self.listed_at is None or now - self.listed_at >= RECONCILE_EVERY

    def since(self) -> datetime | None:
        return self.high_water - OVERLAP if self.high_water else None

    def advance(self, listed: list[dict]) -> "UploadCursor":
        """Remember every listed version still inside the overlap window; forget older ones."""
        stamps = [o["LastModified"] for o in listed]
        if self.high_water:
            stamps.append(self.high_water)
        high_water = max(stamps)
        recent = [o for o in listed if o["LastModified"] > high_water - OVERLAP]
        seen = {version(o) for o in recent} | {
            v for v in self.seen if self.high_water and self.high_water > high_water - OVERLAP
        }
        return UploadCursor(high_water, seen, self.listed_at)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def version(obj: dict) -> str:
    return f"{obj['Key']}:{obj['ETag'].strip(chr(34))}"


@dataclass
class TickPlan:
    newest: dict | None
    superseded: list[str]
    cursor: UploadCursor


def plan_tick(listed: list[dict], state: UploadCursor) -> TickPlan:
    """What one tick does with a listing: the newest unseen version, the unseen others."""
    listed = [o for o in listed if not o["Key"].endswith("/")]
    new = [o for o in listed if version(o) not in state.seen]
    if not new:
        return TickPlan(None, [], state)
    newest = max(new, key=lambda o: (o["LastModified"], o["Key"]))
    # recorded in the ledger by the run; a first tick over a long history names the latest few
    superseded = sorted(o["Key"] for o in new if o is not newest)[-MAX_SUPERSEDED:]
    return TickPlan(newest, superseded, state.advance(listed))


@sensor(
    target=[flights],
    minimum_interval_seconds=sensor_interval_s(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Starts one flights run per new upload version under flights/uploads/; when "
    "several arrive between ticks only the newest is loaded, the others are recorded as "
    "superseded.",
)
def flights_upload_sensor(context: SensorEvaluationContext, s3: S3Resource) -> SensorResult:
    state = UploadCursor.parse(context.cursor)
    listed, receipts, queue = _announced_or_listed(state, s3)
    plan = plan_tick(listed, state)
    if queue and receipts:
        upload_queue.delete(sqs_client(), queue, receipts)  # used: the cursor now holds them
    if plan.newest is None:
        return SensorResult(skip_reason=SkipReason("no new upload"), cursor=plan.cursor.dump())
    key, etag = plan.newest["Key"], plan.newest["ETag"].strip('"')
    config = {"key": key, "etag": etag, "superseded": plan.superseded}
    run = RunRequest(
        run_key=f"{key}:{etag}",
        run_config={"ops": {"flights__flights": {"config": config}}},
        tags={"etl_assets/upload": key},
    )
    return SensorResult(run_requests=[run], cursor=plan.cursor.dump())


def _announced_or_listed(state: UploadCursor, s3: S3Resource) -> tuple[list[dict], list[str], str]:
    """New uploads from the queue when there is one; a full listing otherwise, or when due."""
    queue = flights_queue_url()
    now = datetime.now(UTC)
    if queue and not state.listing_due(now):
        uploads, receipts = upload_queue.drain(sqs_client(), queue, bucket())
        return uploads, receipts, queue
    receipts: list[str] = []
    if queue:  # the listing covers whatever the queue holds now
        receipts = upload_queue.drain(sqs_client(), queue, bucket())[1]
    listed = get_objects(
        bucket(), t.UPLOAD_PREFIX, since_last_modified=state.since(), client=s3.get_client()
    )
    state.listed_at = now
    return listed, receipts, queue
