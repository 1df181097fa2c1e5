"""The upload sensor (on flights' upload prefix): one run per new object version, the newest only
or every file, nothing skipped, nothing twice."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from dagster import build_sensor_context

from etl_assets.defs.flights import tables as t
from etl_assets.defs.flights.assets import flights
from etl_assets.defs.flights.sensors import flights_upload_sensor
from etl_assets.lib import sensors
from etl_assets.lib.sensors import UploadCursor, plan_tick, upload_sensor
from etl_assets.loading.upload_queue import ensure_upload_queue
from etl_assets.local import stack as local_stack
from etl_assets.local.resources import bucket_for

T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def obj(key: str, etag: str, at: datetime) -> dict:
    return {"Key": t.UPLOAD_PREFIX + key, "ETag": f'"{etag}"', "LastModified": at}


def tick(resources: dict, cursor: str | None, sensor=flights_upload_sensor):
    return sensor(build_sensor_context(cursor=cursor, resources=resources))


def test_objects_with_equal_timestamps_are_never_skipped() -> None:
    first = plan_tick([obj("a.csv", "1", T0)], UploadCursor())
    assert first.newest["Key"].endswith("a.csv")
    # b.csv lands in the same second as a.csv, listed only at the next tick
    second = plan_tick([obj("a.csv", "1", T0), obj("b.csv", "2", T0)], first.cursor)
    assert second.newest["Key"].endswith("b.csv") and second.superseded == []
    third = plan_tick([obj("a.csv", "1", T0), obj("b.csv", "2", T0)], second.cursor)
    assert third.newest is None


def test_several_uploads_between_ticks_load_the_newest_and_supersede_the_rest() -> None:
    listed = [obj(f"u{i}.csv", str(i), T0 + timedelta(seconds=i)) for i in range(5)]
    plan = plan_tick(listed, UploadCursor())
    assert plan.newest["Key"].endswith("u4.csv")
    assert plan.superseded == [t.UPLOAD_PREFIX + f"u{i}.csv" for i in range(4)]


def test_an_overwrite_is_a_new_version_and_the_cursor_stays_bounded() -> None:
    plan = plan_tick([obj("a.csv", "1", T0)], UploadCursor())
    again = plan_tick([obj("a.csv", "2", T0 + timedelta(seconds=3))], plan.cursor)
    assert again.newest["ETag"] == '"2"'
    later = T0 + timedelta(hours=2)
    far = plan_tick([obj("a.csv", "2", T0), obj("c.csv", "9", later)], again.cursor)
    assert set(far.cursor.seen) == {t.UPLOAD_PREFIX + "c.csv:9"}  # old versions age out
    assert UploadCursor.parse(far.cursor.dump()) == far.cursor


def test_every_file_policy_requests_each_new_version_in_landing_order() -> None:
    listed = [obj(f"u{i}.csv", str(i), T0 + timedelta(seconds=4 - i)) for i in range(3)]
    plan = plan_tick(listed, UploadCursor(), policy="every_file")
    assert [o["Key"][-6:] for o in plan.requested] == ["u2.csv", "u1.csv", "u0.csv"]
    assert plan.superseded == []
    assert plan_tick(listed, plan.cursor, policy="every_file").requested == []


def with_queue(stack, s3, s3_client, bucket: str):
    """The landing bucket resource with a queue of the bucket's flights notifications."""
    sqs = local_stack.aws_client(stack, "sqs")
    url = ensure_upload_queue(s3_client, sqs, bucket, t.UPLOAD_PREFIX, f"q-{bucket}")
    with_url = bucket_for(stack, bucket, upload_queues={"flights": url})
    assert with_url.queue_url(t.UPLOAD_PREFIX) == url
    return with_url


@pytest.fixture(params=["queue", "listing"])
def announced(request, stack, s3, s3_client, bucket):
    """Both ways the sensor learns of uploads: the bucket's SQS notifications, or listing."""
    return with_queue(stack, s3, s3_client, bucket) if request.param == "queue" else s3


def test_sensor_requests_each_version_once_against_the_local_s3(
    announced, s3_client, bucket, warehouse
) -> None:
    res = {"s3": announced, "warehouse": warehouse}
    key = t.UPLOAD_PREFIX + "flights 2015.csv"
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"v1")
    first = tick(res, None)
    (request,) = first.run_requests
    etag = s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    assert request.run_key.startswith(f"{key}:{etag}:")  # + when it landed
    assert request.run_config["ops"]["flights__flights"]["config"]["key"] == key

    repeat = tick(res, first.cursor)
    assert not repeat.run_requests  # the same notification twice: nothing new

    s3_client.put_object(Bucket=bucket, Key=key, Body=b"v2")
    overwrite = tick(res, repeat.cursor)
    (request2,) = overwrite.run_requests
    assert request2.run_key != request.run_key and request2.run_key.startswith(key + ":")

    other = t.UPLOAD_PREFIX + "flights 2015 (2).csv"
    s3_client.put_object(Bucket=bucket, Key=other, Body=b"v3")
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"v4")
    several = tick(res, overwrite.cursor)
    (request3,) = several.run_requests
    assert request3.run_key.startswith(key + ":")
    config = request3.run_config["ops"]["flights__flights"]["config"]
    assert config["superseded"] == [other]
    assert not tick(res, several.cursor).run_requests


def test_queue_ticks_do_not_list_the_prefix(
    s3, s3_client, bucket, stack, monkeypatch, warehouse
) -> None:
    res = {"s3": with_queue(stack, s3, s3_client, bucket), "warehouse": warehouse}
    first = tick(res, None)  # the first tick lists (nothing there yet)
    listings = []
    monkeypatch.setattr(sensors, "get_objects", lambda *a, **k: listings.append(1) or [])
    s3_client.put_object(Bucket=bucket, Key=t.UPLOAD_PREFIX + "new.csv", Body=b"x")
    result = tick(res, first.cursor)
    assert [r.run_key.split(":")[0] for r in result.run_requests] == [t.UPLOAD_PREFIX + "new.csv"]
    assert listings == []


def test_every_file_sensor_starts_one_run_per_upload(s3, s3_client, bucket, warehouse) -> None:
    res = {"s3": s3, "warehouse": warehouse}
    sensor = upload_sensor(flights, t.UPLOAD_PREFIX, policy="every_file", name="every_file")
    for name in ["b.csv", "a.csv"]:
        s3_client.put_object(Bucket=bucket, Key=t.UPLOAD_PREFIX + name, Body=name.encode())
    first = tick(res, None, sensor)
    keys = [r.run_config["ops"]["flights__flights"]["config"]["key"] for r in first.run_requests]
    assert sorted(keys) == [t.UPLOAD_PREFIX + "a.csv", t.UPLOAD_PREFIX + "b.csv"]
    assert all(
        not r.run_config["ops"]["flights__flights"]["config"]["superseded"]
        for r in first.run_requests
    )
    assert not tick(res, first.cursor, sensor).run_requests


def test_a_reupload_of_earlier_content_is_a_new_upload() -> None:
    """Issue 9 item 3: A, then B, then A again (same ETag) never became the snapshot."""
    first = plan_tick([obj("a.csv", "A", T0)], UploadCursor())
    second = plan_tick([obj("a.csv", "B", T0 + timedelta(seconds=5))], first.cursor)
    assert second.newest["ETag"] == '"B"'
    again = plan_tick([obj("a.csv", "A", T0 + timedelta(seconds=9))], second.cursor)
    assert again.newest is not None and again.newest["ETag"] == '"A"'
    # the same upload announced twice, or listed after its notification, is not
    noticed = obj("a.csv", "A", T0 + timedelta(seconds=9, milliseconds=400))
    assert plan_tick([noticed], again.cursor).newest is None


def test_uploads_that_cannot_be_ordered_are_named() -> None:
    listed = [obj("b.csv", "2", T0), obj("a.csv", "1", T0)]  # one second, from a listing
    plan = plan_tick(listed, UploadCursor())
    assert plan.newest["Key"].endswith("b.csv") and plan.same_time_as == {
        t.UPLOAD_PREFIX + "b.csv": [t.UPLOAD_PREFIX + "a.csv"]
    }
    # every file gets its run; each says which uploads it could not be ordered against
    each = plan_tick(listed, UploadCursor(), policy="every_file")
    assert each.same_time_as == {
        t.UPLOAD_PREFIX + "a.csv": [t.UPLOAD_PREFIX + "b.csv"],
        t.UPLOAD_PREFIX + "b.csv": [t.UPLOAD_PREFIX + "a.csv"],
    }
    queued = [
        obj("b.csv", "2", T0 + timedelta(milliseconds=120)),
        obj("a.csv", "1", T0 + timedelta(milliseconds=480)),
    ]
    plan = plan_tick(queued, UploadCursor())  # notification times: the order is known
    assert plan.newest["Key"].endswith("a.csv")
    assert plan.same_time_as == {t.UPLOAD_PREFIX + "a.csv": []}


def test_a_listing_takes_the_notifications_event_times(
    stack, s3, s3_client, bucket, warehouse
) -> None:
    """Two uploads in one second: a listing alone cannot order them, the queue's event times
    (milliseconds) can; a tick that both lists and reads the queue uses the better clock."""
    res = {"s3": with_queue(stack, s3, s3_client, bucket), "warehouse": warehouse}
    time.sleep(1.02 - time.time() % 1)  # both uploads inside one second
    for name in ("b first.csv", "a second.csv"):
        s3_client.put_object(Bucket=bucket, Key=t.UPLOAD_PREFIX + name, Body=name.encode())
    (request,) = tick(res, None).run_requests  # a first tick lists (and reads the queue)
    config = request.run_config["ops"]["flights__flights"]["config"]
    assert config["key"] == t.UPLOAD_PREFIX + "a second.csv"  # by time, not by key
    assert config["same_time_as"] == [] and config["superseded"] == [
        t.UPLOAD_PREFIX + "b first.csv"
    ]


def test_a_first_tick_skips_what_the_ledger_has_loaded(s3, s3_client, bucket, warehouse) -> None:
    """Issue 12 item 1: a new instance (after the demo, a lost cursor) re-requested files
    already loaded; those runs only found them up to date."""
    from etl_assets.loading import ledger
    from etl_assets.loading.ledger import LedgerEntry, SourceObject
    from etl_assets.loading.tables import ensure_tables

    res = {"s3": s3, "warehouse": warehouse}
    loaded_key, new_key = t.UPLOAD_PREFIX + "loaded.csv", t.UPLOAD_PREFIX + "new.csv"
    s3_client.put_object(Bucket=bucket, Key=loaded_key, Body=b"old")
    etag = s3_client.head_object(Bucket=bucket, Key=loaded_key)["ETag"].strip('"')
    ensure_tables(warehouse, [])
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        entry = LedgerEntry(SourceObject(bucket, loaded_key, etag, 3), ledger.LOADED, 1, 1)
        ledger.record(
            cur,
            [entry],
            load_id="l",
            target_table="flights.flights",
            partition_key=None,
            run_id="r",
        )
        conn.commit()
    first = tick(res, None)
    assert not first.run_requests
    s3_client.put_object(Bucket=bucket, Key=new_key, Body=b"new")
    (request,) = tick(res, first.cursor).run_requests
    assert request.run_key.startswith(new_key + ":")


def test_a_listed_upload_is_not_ordered_behind_a_later_one_of_its_second() -> None:
    from etl_assets.lib.sensors import landing_order

    queued = obj("b.csv", "2", T0 + timedelta(milliseconds=900))
    listed = obj("c.csv", "3", T0)  # no fraction: landed somewhere in that second
    later = obj("d.csv", "4", T0 + timedelta(seconds=1, milliseconds=5))
    ordered = [o["Key"].rsplit("/", 1)[1] for o in landing_order([later, listed, queued])]
    assert ordered == ["b.csv", "c.csv", "d.csv"]
