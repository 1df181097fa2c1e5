"""The landing bucket resource hands out one client per service and configuration: a sensor
tick or a run no longer pays for loading botocore's service models each time it asks."""

from etl_assets.local.resources import bucket_for


def test_clients_are_made_once_per_configuration(stack, bucket) -> None:
    s3 = bucket_for(stack, bucket)
    assert s3.get_client() is bucket_for(stack, bucket).get_client()
    assert s3.get_sqs_client() is s3.get_sqs_client()
    other = bucket_for(stack, bucket, upload_queues={"flights": "http://queue"})
    assert other.get_client() is not s3.get_client()
    assert s3.get_client().list_objects_v2(Bucket=bucket)["KeyCount"] == 0  # a working client
