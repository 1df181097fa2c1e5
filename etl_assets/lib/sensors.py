"""The upload sensor: a run per new object version under a prefix, never a version twice.

It learns of uploads from the bucket's ObjectCreated notifications on an SQS queue when the
landing bucket resource names one for the prefix, and lists the prefix every few minutes (and
always without a queue) to catch what a notification missed. Policy `newest` loads only the
newest of the versions that arrived between two ticks and records the others as superseded
(a full snapshot re-uploaded several times a day); `every_file` requests one run per version,
in landing order.
"""

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from dagster import (
    AssetsDefinition,
    AssetSelection,
    DagsterRunStatus,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)
from dagster_aws.s3.sensor import get_objects

from etl_assets.lib.assets import refreshed_views
from etl_assets.loading import ledger, upload_queue
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.tables import ensure_tables
from etl_assets.resources.landing_bucket import LandingBucketResource
from etl_assets.resources.warehouse import WarehouseResource, uses_local_stack

# LastModified has one-second resolution and listings can lag: look back this far each tick
# and tell old from new by the versions already requested (never by `since_key`, dagster
# issue 22892, and never by a strictly-greater timestamp alone, which skips equal ones).
OVERLAP = timedelta(minutes=10)
# With a queue, the prefix is still listed this often, to catch a lost notification while the
# upload is inside the look-back window.
RECONCILE_EVERY = timedelta(minutes=5)
MAX_SUPERSEDED = 1000
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def sensor_interval_s(prefix: str) -> int:
    """Seconds between ticks: `ETL_<DOMAIN>_SENSOR_INTERVAL_S`, else `ETL_SENSOR_INTERVAL_S`,
    else 5 on the local stack and 30 against AWS."""
    domain = prefix.split("/", 1)[0].upper()
    default = "5" if uses_local_stack() else "30"
    value = os.environ.get(f"ETL_{domain}_SENSOR_INTERVAL_S")
    return int(value or os.environ.get("ETL_SENSOR_INTERVAL_S", default))


# The same content uploaded again (A, then B, then A) is a new upload when it lands this much
# later than the version seen: LastModified (a listing, seconds) and the notification's event
# time (milliseconds) of one upload may differ by a second.
REUPLOAD_AFTER = timedelta(seconds=2)


@dataclass
class UploadCursor:
    """High-water LastModified, and the versions (key:etag) requested inside the overlap, with
    when each landed."""

    high_water: datetime | None = None
    seen: dict[str, datetime] = field(default_factory=dict)
    listed_at: datetime | None = None  # last full listing of the prefix
    # versions requested again because their run ended without a verdict: how many times
    retried: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> "UploadCursor":
        if not text:
            return cls()
        data = json.loads(text)
        high_water = _time(data["high_water"])
        seen = data["seen"]
        if isinstance(seen, list):  # a cursor written before landing times were kept
            seen = dict.fromkeys(seen, high_water.isoformat() if high_water else None)
        landed = {v: _time(at) or high_water for v, at in seen.items()}
        return cls(high_water, landed, _time(data.get("listed_at")), data.get("retried", {}))

    def dump(self) -> str:
        return json.dumps(
            {
                "high_water": _iso(self.high_water),
                "seen": {v: _iso(at) for v, at in sorted(self.seen.items())},
                "listed_at": _iso(self.listed_at),
                "retried": dict(sorted(self.retried.items())),
            }
        )

    def listing_due(self, now: datetime) -> bool:
        return self.listed_at is None or now - self.listed_at >= RECONCILE_EVERY

    def since(self) -> datetime | None:
        return self.high_water - OVERLAP if self.high_water else None

    def is_new(self, obj: dict) -> bool:
        """Not requested yet, or the same content landed again (a re-upload)."""
        landed = self.seen.get(version(obj))
        return landed is None or obj["LastModified"] >= landed + REUPLOAD_AFTER

    def advance(self, listed: list[dict]) -> "UploadCursor":
        """Remember every listed version still inside the overlap window; forget older ones."""
        stamps = [o["LastModified"] for o in listed]
        if self.high_water:
            stamps.append(self.high_water)
        high_water = max(stamps)
        seen = {v: at for v, at in self.seen.items() if at and at > high_water - OVERLAP}
        for obj in listed:
            if obj["LastModified"] > high_water - OVERLAP and self.is_new(obj):
                seen[version(obj)] = obj["LastModified"]
        retried = {v: n for v, n in self.retried.items() if v in seen}
        return UploadCursor(high_water, seen, self.listed_at, retried)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def version(obj: dict) -> str:
    return f"{obj['Key']}:{obj['ETag'].strip(chr(34))}"


Policy = Literal["newest", "every_file"]


@dataclass
class TickPlan:
    requested: list[dict]  # listing entries to start a run for, oldest first
    superseded: list[str]  # keys the (single) newest run records as superseded
    cursor: UploadCursor
    # requested key -> the keys it cannot be told from (landed in the same instant)
    same_time_as: dict[str, list[str]] = field(default_factory=dict)

    @property
    def newest(self) -> dict | None:
        return self.requested[-1] if self.requested else None


def plan_tick(listed: list[dict], state: UploadCursor, policy: Policy = "newest") -> TickPlan:
    """What one tick does with a listing: which unseen versions get a run."""
    listed = _first_landings([o for o in listed if not o["Key"].endswith("/")])
    new = landing_order([o for o in listed if state.is_new(o)])
    if not new:
        return TickPlan([], [], state)
    if policy == "every_file":
        return TickPlan(new, [], state.advance(listed), {o["Key"]: _tied(o, new) for o in new})
    newest = new[-1]
    # recorded in the ledger by the run; a first tick over a long history names the latest few
    superseded = sorted(o["Key"] for o in new[:-1])[-MAX_SUPERSEDED:]
    return TickPlan(
        [newest], superseded, state.advance(listed), {newest["Key"]: _tied(newest, new)}
    )


def _first_landings(uploads: list[dict]) -> list[dict]:
    """One entry per version: a version announced twice (two notifications of one upload,
    their event times apart) is one upload, kept at its first landing."""
    first: dict[str, dict] = {}
    for upload in uploads:
        kept = first.get(version(upload))
        if kept is None or upload["LastModified"] < kept["LastModified"]:
            first[version(upload)] = upload
    return [u for u in uploads if first[version(u)] is u]


def landing_order(uploads: list[dict]) -> list[dict]:
    """Oldest first. Within a second that holds a listing's time (no fraction), the fractions
    others carry (a notification's event time) cannot order them against it: that second's
    uploads go by key, as they would all had they been listed, and none jumps ahead of
    another just for lacking a fraction."""
    coarse = {o["LastModified"].replace(microsecond=0) for o in uploads if _coarse(o)}

    def order(o: dict) -> tuple:
        second = o["LastModified"].replace(microsecond=0)
        fraction = 0 if second in coarse else o["LastModified"].microsecond
        return (second, fraction, o["Key"])

    return sorted(uploads, key=order)


def _coarse(upload: dict) -> bool:
    return upload["LastModified"].microsecond == 0


def _tied(upload: dict, new: list[dict]) -> list[str]:
    """The other new uploads `upload` cannot be ordered against."""
    return sorted(
        o["Key"]
        for o in new
        if o is not upload and _same_instant(o["LastModified"], upload["LastModified"])
    )


def _same_instant(a: datetime, b: datetime) -> bool:
    """Two landing times that cannot be ordered: equal, or equal to the second when either
    comes from a listing (LastModified has no fraction)."""
    if a.microsecond == 0 or b.microsecond == 0:
        return a.replace(microsecond=0) == b.replace(microsecond=0)
    return a == b


def uploads_job(assets: Sequence[AssetsDefinition]) -> UnresolvedAssetJobDefinition:
    """The job a sensor's runs belong to, named after the domain (`flights_uploads`), so the
    Runs list shows a target instead of an anonymous selection."""
    group = next(iter(assets[0].group_names_by_key.values()))
    views = [view for loader in assets for view in refreshed_views(loader)]
    return define_asset_job(
        f"{group}_uploads",
        # the refreshed views' checks too: they read what this run publishes
        selection=AssetSelection.assets(*assets) | AssetSelection.checks_for_assets(*views),
        description=f"Loads what lands under the {group} upload prefix (started by its sensor).",
    )


def upload_sensor(
    target: AssetsDefinition | Sequence[AssetsDefinition],
    prefix: str,
    *,
    policy: Policy = "newest",
    name: str | None = None,
    then: Sequence[AssetsDefinition] = (),
) -> SensorDefinition:
    """A sensor starting `target` (assets loading `Uploads(prefix)`, each given the upload in
    its config) for new uploads; `then`: assets built from them in the same run."""
    loaders = [target] if isinstance(target, AssetsDefinition) else list(target)
    op_names = [loader.op.name for loader in loaders]
    sensor_name = name or f"{op_names[0]}_upload_sensor"
    what = "only the newest of those" if policy == "newest" else "every one, in landing order,"
    loaded = ", ".join(loader.key.to_user_string() for loader in loaders)
    description = (
        f"Starts a run of {loaded} for new object versions under {prefix}; "
        f"{what} is loaded"
        + (" and the others are recorded as superseded." if policy == "newest" else ".")
    )

    @sensor(
        name=sensor_name,
        job=uploads_job([*loaders, *then]),
        minimum_interval_seconds=sensor_interval_s(prefix),
        default_status=DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _sensor(
        context: SensorEvaluationContext, s3: LandingBucketResource, warehouse: WarehouseResource
    ) -> SensorResult:
        state = UploadCursor.parse(context.cursor)
        listed, receipts = _announced_or_listed(state, s3, prefix)
        plan = plan_tick(listed, state, policy)
        if context.cursor is None:
            plan.requested = not_loaded_yet(plan.requested, warehouse, s3.bucket, context.log)
        if receipts:  # used: the cursor now holds what they announced
            upload_queue.delete(s3.get_sqs_client(), s3.queue_url(prefix), receipts)
        if not plan.requested:
            return SensorResult(skip_reason=SkipReason("no new upload"), cursor=plan.cursor.dump())
        runs = [
            _run_request(op_names, o, plan.superseded, plan.same_time_as.get(o["Key"], []))
            for o in plan.requested
        ]
        return SensorResult(run_requests=runs, cursor=plan.cursor.dump())

    return _sensor


def not_loaded_yet(
    uploads: list[dict], warehouse: WarehouseResource, bucket: str, log
) -> list[dict]:
    """On a sensor's first tick (a new Dagster instance, a cleared cursor), the uploads the
    ledger has no verdict for: versions loaded or refused before (by the demo, by another
    instance) would only start runs that find them done. An upload is a version and when it
    landed: the same content landing again later is new."""
    if not uploads:
        return uploads
    ensure_tables(warehouse, [])  # the ledger
    fresh = _without_verdict(warehouse, bucket, uploads)
    if len(fresh) < len(uploads):
        log.info(f"{len(uploads) - len(fresh)} upload(s) already have a verdict: not requested")
    return fresh


def _run_request(
    op_names: list[str], upload: dict, superseded: list[str], same_time_as: list[str]
) -> RunRequest:
    key, etag = upload["Key"], upload["ETag"].strip('"')
    config = {"key": key, "etag": etag, "superseded": superseded, "same_time_as": same_time_as}
    return RunRequest(
        # a re-upload of the same content is a new upload: its landing time tells them apart
        run_key=f"{key}:{etag}:{upload['LastModified'].isoformat()}",
        run_config={"ops": {op: {"config": config} for op in op_names}},
        tags={"etl_assets/upload": key},
    )


def _announced_or_listed(
    state: UploadCursor, s3: LandingBucketResource, prefix: str
) -> tuple[list[dict], list[str]]:
    """New uploads from the queue when there is one; a listing otherwise, when a listing is
    due, or when the queue holds more than a tick reads (a burst: one listing request per
    1,000 keys finds it all at once; the messages left are read by later ticks and match
    versions the cursor has already seen)."""
    queue = s3.queue_url(prefix)
    now = datetime.now(UTC)
    receipts: list[str] = []
    announced: dict[str, datetime] = {}
    if queue:
        drained = upload_queue.drain(s3.get_sqs_client(), queue, s3.bucket)
        receipts = drained.receipts
        if not state.listing_due(now) and drained.exhausted:
            return [o for o in drained.uploads if o["Key"].startswith(prefix)], receipts
        announced = {version(o): o["LastModified"] for o in drained.uploads}
    listed = get_objects(
        s3.bucket, prefix, since_last_modified=state.since(), client=s3.get_client()
    )
    state.listed_at = now
    # a listing's LastModified has whole seconds; a notification's event time, milliseconds
    listed = [{**o, "LastModified": announced.get(version(o), o["LastModified"])} for o in listed]
    return listed, receipts


def routed_upload_sensor(
    target: AssetsDefinition,
    prefix: str,
    partitions: DynamicPartitionsDefinition,
    route: Callable[[str], str],
    *,
    name: str | None = None,
) -> SensorDefinition:
    """A sensor for an asset partitioned by where each file goes (`route(key)` -> partition,
    or ValueError naming why the key cannot be routed). Every new version is handled once, in
    landing order: one run per partition with all of that partition's new versions; a new
    partition is added in the same tick; an unroutable key is recorded in the ledger as
    rejected with the reason (there is no run to show it)."""
    op_name = target.op.name

    @sensor(
        name=name or f"{op_name}_upload_sensor",
        job=uploads_job([target]),
        minimum_interval_seconds=sensor_interval_s(prefix),
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Routes every new object version under {prefix} to its partition of "
        f"{target.key.to_user_string()}: one run per partition, files in landing order.",
    )
    def _sensor(
        context: SensorEvaluationContext, s3: LandingBucketResource, warehouse: WarehouseResource
    ) -> SensorResult:
        state = UploadCursor.parse(context.cursor)
        listed_before = state.listed_at
        listed, receipts = _announced_or_listed(state, s3, prefix)
        plan = plan_tick(listed, state, "every_file")
        if context.cursor is None:
            plan.requested = not_loaded_yet(plan.requested, warehouse, s3.bucket, context.log)
        routed, refused = route_versions(plan.requested, route, s3.bucket)
        if refused:
            record_unroutable(warehouse, refused, context.log)
        if receipts:
            upload_queue.delete(s3.get_sqs_client(), s3.queue_url(prefix), receipts)
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        new_partitions = [p for p in routed if p not in known]
        runs = [_partition_run(op_name, p, versions) for p, versions in routed.items()]
        if state.listed_at != listed_before:  # this tick listed the prefix: every version
            runs += _requested_again(context, plan, listed, route, s3.bucket, warehouse, op_name)
        requests = [partitions.build_add_request(new_partitions)] if new_partitions else []
        if not runs:
            return SensorResult(skip_reason=SkipReason("no new upload"), cursor=plan.cursor.dump())
        return SensorResult(
            run_requests=runs, dynamic_partitions_requests=requests, cursor=plan.cursor.dump()
        )

    return _sensor


def route_versions(
    uploads: list[dict], route: Callable[[str], str], bucket: str
) -> tuple[dict[str, list[dict]], list[tuple[SourceObject, str]]]:
    """Partition -> its new versions in landing order; and the versions no partition takes."""
    routed: dict[str, list[dict]] = {}
    refused: list[tuple[SourceObject, str]] = []
    for upload in uploads:
        try:
            routed.setdefault(route(upload["Key"]), []).append(upload)
        except ValueError as error:
            refused.append((_source(bucket, upload), f"{upload['Key']}: {error}"))
    return routed, refused


def record_unroutable(warehouse: WarehouseResource, refused, log) -> None:
    ensure_tables(warehouse, [])  # the ledger
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        for source, reason in refused:
            log.warning(f"refused {reason}")
            ledger.record(
                cur,
                [ledger.LedgerEntry(source, ledger.REJECTED, error=reason)],
                load_id=str(uuid.uuid4()),
                target_table="(unroutable)",
                partition_key=None,
                run_id=None,
            )
        conn.commit()


# A version requested this long ago without a verdict, and no run of its partition queued or
# in progress: its run ended without recording one (the process was killed, ran out of
# memory). It is requested again, at most MAX_ATTEMPTS times in all, then recorded as rejected.
STRANDED_AFTER = timedelta(minutes=1)
MAX_ATTEMPTS = 3


def _requested_again(
    context: SensorEvaluationContext,
    plan: TickPlan,
    listed: list[dict],
    route: Callable[[str], str],
    bucket: str,
    warehouse: WarehouseResource,
    op_name: str,
) -> list[RunRequest]:
    """Runs for the versions whose run ended without a verdict; the sensor never moves past a
    version that has none."""
    now = datetime.now(UTC)
    requested = {version(o) for o in plan.requested}
    waiting = [
        o
        for o in listed
        if version(o) in plan.cursor.seen
        and version(o) not in requested
        and now - o["LastModified"] >= STRANDED_AFTER
    ]
    stranded = _without_verdict(warehouse, bucket, waiting)
    routed, _ = route_versions(stranded, route, bucket)
    runs = []
    for partition, versions in routed.items():
        if _runs_in_progress(context.instance, partition):
            continue
        tries = plan.cursor.retried
        exhausted = [v for v in versions if tries.get(version(v), 0) + 1 >= MAX_ATTEMPTS]
        if exhausted:
            _record_exhausted(warehouse, bucket, partition, exhausted, context.log)
        again = [v for v in versions if v not in exhausted]
        if again:
            attempt = 1 + max(plan.cursor.retried.get(version(v), 0) for v in again)
            for v in again:
                plan.cursor.retried[version(v)] = attempt
            context.log.warning(
                f"{len(again)} upload(s) of {partition} have no verdict and no run in progress:"
                f" requested again (attempt {attempt + 1} of {MAX_ATTEMPTS})"
            )
            runs.append(_partition_run(op_name, partition, again, f":attempt-{attempt + 1}"))
    return runs


def _without_verdict(warehouse: WarehouseResource, bucket: str, uploads: list[dict]) -> list[dict]:
    if not uploads:
        return []
    sources = {version(u): _source(bucket, u) for u in uploads}
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        judged = ledger.recorded_uploads(cur, sources.values())
    return [u for u in uploads if sources[version(u)] not in judged]


def _runs_in_progress(instance, partition: str) -> bool:
    records = instance.get_run_records(
        RunsFilter(tags={"dagster/partition": partition}, statuses=IN_PROGRESS), limit=1
    )
    return bool(records)


def _record_exhausted(
    warehouse: WarehouseResource, bucket: str, partition: str, uploads: list[dict], log
) -> None:
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        for upload in uploads:
            reason = (
                f"{upload['Key']}: no verdict after {MAX_ATTEMPTS} runs: each ended without"
                " recording one (the run process died: killed, out of memory, a crash)"
            )
            log.warning(f"rejected {reason}")
            ledger.record(
                cur,
                [ledger.LedgerEntry(_source(bucket, upload), ledger.REJECTED, error=reason)],
                load_id=str(uuid.uuid4()),
                target_table=partition,
                partition_key=None,
                run_id=None,
            )
        conn.commit()


def _source(bucket: str, upload: dict) -> SourceObject:
    return SourceObject(
        bucket,
        upload["Key"],
        upload["ETag"].strip('"'),
        upload.get("Size", 0),
        upload["LastModified"],
    )


def _partition_run(
    op_name: str, partition: str, versions: list[dict], attempt: str = ""
) -> RunRequest:
    files = [
        {"key": v["Key"], "etag": v["ETag"].strip('"'), "landed_at": v["LastModified"].isoformat()}
        for v in versions
    ]
    fingerprint = hashlib.sha1(json.dumps(files).encode()).hexdigest()[:16]
    return RunRequest(
        run_key=f"{partition}:{fingerprint}{attempt}",
        partition_key=partition,
        run_config={"ops": {op_name: {"config": {"files": files}}}},
        tags={"etl_assets/files": str(len(files))},
    )
