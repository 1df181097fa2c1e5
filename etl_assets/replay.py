"""`etl-assets replay s3://bucket/key`: apply one file version again, on purpose (after its
table's schema or allowed operations were fixed), as a run of the code location."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetSelection, materialize

from etl_assets import domains
from etl_assets.demo import QUIET
from etl_assets.local.instance import local_instance


class ReplayError(ValueError):
    """A replay that cannot start; the message says why."""


@dataclass
class Outcome:
    success: bool
    summary: str


def replay(url: str, force: bool = False) -> Outcome:
    from etl_assets.definitions import defs
    from etl_assets.defs.resources import landing_bucket_from_env, warehouse_from_env

    bucket = landing_bucket_from_env()
    key = _key_in(url, bucket.bucket)
    domain = next((d for d in domains.discover() if key.startswith(f"{d.name}/")), None)
    if domain is None or domain.replay is None:
        raise ReplayError(f"{url}: no domain replays files under this prefix")
    try:
        head = bucket.get_client().head_object(Bucket=bucket.bucket, Key=key)
    except Exception as error:  # botocore's ClientError: absent, or no access
        raise ReplayError(f"{url}: cannot read it ({error})") from None
    etag = head["ETag"].strip('"')
    asset_key, partition, run_config = domain.replay(key, etag, force)
    instance = local_instance()
    if partition is not None:
        for partitions in _dynamic_partition_names(defs, asset_key):
            instance.add_dynamic_partitions(partitions, [partition])
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        selection=AssetSelection.assets(asset_key),
        resources={"warehouse": warehouse_from_env(), "s3": bucket},
        instance=instance,
        partition_key=partition,
        # one line per outcome on the terminal; the run's events stay in the instance
        run_config={**QUIET, **run_config},
        tags={"etl_assets/replay": key},
        raise_on_error=False,
    )
    where = f"{asset_key.to_user_string()}" + (f" [{partition}]" if partition else "")
    if result.success and not _verdicts_of(result.run_id, key):
        return Outcome(
            True,
            f"nothing applied: {url} (ETag {etag}) is already loaded into {where}"
            " (--force applies it again)",
        )
    if result.success:
        return Outcome(True, f"replayed {url} (ETag {etag}) into {where}: run {result.run_id}")
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    reason = failure.event_specific_data.error.message.strip().splitlines()[0]
    return Outcome(False, f"replay of {url} into {where} refused: {reason}")


def _verdicts_of(run_id: str, key: str) -> list[tuple]:
    """What the run recorded for this key: nothing when it applied nothing."""
    from etl_assets.defs.resources import warehouse_from_env

    return warehouse_from_env().query(
        "select status from etl_audit.file_ledger where run_id = %s and object_key = %s",
        (run_id, key),
    )


def _key_in(url: str, bucket: str) -> str:
    if not url.startswith("s3://"):
        raise ReplayError(f"{url}: expected s3://<bucket>/<key>")
    named, _, key = url.removeprefix("s3://").partition("/")
    if named != bucket:
        raise ReplayError(f"{url}: the code location's bucket is {bucket}, not {named}")
    if not key:
        raise ReplayError(f"{url}: no key")
    return key


def _dynamic_partition_names(defs, asset_key) -> list[str]:
    node = defs.resolve_asset_graph().get(asset_key)
    partitions = node.partitions_def
    name = getattr(partitions, "name", None)
    return [name] if name else []
