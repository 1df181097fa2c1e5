"""`etl-assets cloud` end to end against moto's server over HTTP (ETL_AWS_ENDPOINT_URL points
every client at it): what is created, that a second `up` changes nothing, what `down` leaves,
and every refusal."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.exceptions import ClientError

from etl_assets.cli import main
from etl_assets.cloud.parts import CopyRole
from etl_assets.cloud.settings import TAG_KEY

CIDR = "203.0.113.0/24"


@pytest.fixture
def aws(stack, monkeypatch, tmp_path):
    """A stack name and bucket of this test's own on the local moto server."""
    name = f"t{uuid.uuid4().hex[:10]}"
    for variable, value in {
        "ETL_AWS_ENDPOINT_URL": stack.s3_endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "ETL_S3_BUCKET": f"{name}-landing",
        "ETL_ASSETS_HOME": str(tmp_path / "home"),
    }.items():
        monkeypatch.setenv(variable, value)
    return name


def client(service: str):
    return boto3.client(
        service, endpoint_url=os.environ["ETL_AWS_ENDPOINT_URL"], region_name="us-east-1"
    )


def cloud(capsys, *args: str) -> tuple[int, str]:
    code = main(["cloud", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def tagged(name: str) -> dict[str, list[str]]:
    """Every resource carrying the stack's tag, looked up service by service."""
    bucket = os.environ["ETL_S3_BUCKET"]
    found: dict[str, list[str]] = {}
    s3 = client("s3")
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
        if {"Key": TAG_KEY, "Value": name} in tags:
            found["bucket"] = [bucket]
    except ClientError:
        pass
    sqs = client("sqs")
    for url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []):
        if sqs.list_queue_tags(QueueUrl=url).get("Tags", {}).get(TAG_KEY) == name:
            found.setdefault("queues", []).append(url)
    iam = client("iam")
    for role in iam.list_roles()["Roles"]:
        tags = iam.list_role_tags(RoleName=role["RoleName"]).get("Tags", [])
        if {"Key": TAG_KEY, "Value": name} in tags:
            found.setdefault("roles", []).append(role["RoleName"])
    groups = client("ec2").describe_security_groups(
        Filters=[{"Name": f"tag:{TAG_KEY}", "Values": [name]}]
    )["SecurityGroups"]
    if groups:
        found["security groups"] = [g["GroupId"] for g in groups]
    clusters = [
        c["ClusterIdentifier"]
        for c in client("redshift").describe_clusters()["Clusters"]
        if {"Key": TAG_KEY, "Value": name} in c.get("Tags", [])
    ]
    if clusters:
        found["clusters"] = clusters
    return found


def test_up_twice_then_status_then_down_leaves_nothing_tagged(aws, capsys) -> None:
    name, bucket = aws, os.environ["ETL_S3_BUCKET"]
    code, planned = cloud(capsys, "plan", "--name", name, "--allow-cidr", CIDR)
    assert code == 0 and planned.count("  create ") == 8, planned
    assert tagged(name) == {}  # plan creates nothing

    code, printed = cloud(capsys, "up", "--name", name, "--allow-cidr", CIDR)
    assert code == 0, printed
    assert set(tagged(name)) == {"bucket", "queues", "roles", "security groups", "clusters"}
    password_file = Path(os.environ["ETL_ASSETS_HOME"]) / "cloud" / f"{name}.password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 8 and password not in printed
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in printed.splitlines()
        if line.startswith("export ")
    )
    assert exports["ETL_WAREHOUSE_PASSWORD"] == f'"$(cat {password_file})"'
    assert exports["ETL_REDSHIFT_IAM_ROLE"].endswith(f":role/{name}-redshift-copy")
    assert exports["ETL_S3_BUCKET"] == bucket and exports["ETL_WAREHOUSE_HOST"]

    code, again = cloud(capsys, "up", "--name", name, "--allow-cidr", CIDR)
    assert code == 0 and "Nothing to change." in again
    code, status = cloud(capsys, "status", "--name", name)
    assert code == 0 and status.count("  exists ") == 8, status

    code, gone = cloud(capsys, "down", "--name", name, "--yes", "--delete-bucket")
    assert code == 0, gone
    assert tagged(name) == {}
    assert not password_file.exists()


def test_the_bucket_tells_the_domains_queues_about_uploads(aws, capsys) -> None:
    name, bucket = aws, os.environ["ETL_S3_BUCKET"]
    code, printed = cloud(capsys, "up", "--name", name, "--allow-cidr", CIDR)
    assert code == 0
    queue = next(
        line.split("=", 1)[1]
        for line in printed.splitlines()
        if line.startswith("export ETL_FLIGHTS_UPLOAD_QUEUE_URL=")
    )
    client("s3").put_object(Bucket=bucket, Key="flights/uploads/a.csv", Body=b"x")
    client("s3").put_object(Bucket=bucket, Key="sparkify/other.json", Body=b"x")
    messages = client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in messages]  # S3 first sends an s3:TestEvent
    keys = [
        unquote_plus(r["s3"]["object"]["key"]) for body in bodies for r in body.get("Records", [])
    ]
    assert keys == ["flights/uploads/a.csv"]
    policy = json.loads(
        client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"][
            "Policy"
        ]
    )
    condition = policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert condition == f"arn:aws:s3:::{bucket}"
    cloud(capsys, "down", "--name", name, "--yes", "--delete-bucket")


def test_the_copy_role_reads_the_landing_bucket_only(aws, capsys) -> None:
    name, bucket = aws, os.environ["ETL_S3_BUCKET"]
    assert cloud(capsys, "up", "--name", name, "--allow-cidr", CIDR)[0] == 0
    document = client("iam").get_role_policy(
        RoleName=f"{name}-redshift-copy", PolicyName=CopyRole.POLICY
    )["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    resources = {r for s in document["Statement"] for r in [s["Resource"]]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert actions == {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"}
    group = client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"{name}-redshift"]}]
    )["SecurityGroups"][0]
    ranges = [(p["FromPort"], r["CidrIp"]) for p in group["IpPermissions"] for r in p["IpRanges"]]
    assert ranges == [(5439, CIDR)]
    cloud(capsys, "down", "--name", name, "--yes", "--delete-bucket")


def test_the_whole_internet_is_refused_unless_asked_for(aws, capsys) -> None:
    code, printed = cloud(capsys, "up", "--name", aws, "--allow-cidr", "0.0.0.0/0")
    assert code == 2 and "--allow-public" in printed
    code, printed = cloud(capsys, "up", "--name", aws)
    assert code == 2 and "--allow-cidr CIDR is required" in printed
    assert tagged(aws) == {}
    code, printed = cloud(capsys, "plan", "--name", aws, "--allow-public")
    assert code == 0 and "WARNING: Redshift will accept connections from anywhere" in printed


def test_a_name_taken_by_an_untagged_resource_is_refused_and_left_alone(aws, capsys) -> None:
    role = f"{aws}-redshift-copy"
    client("iam").create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    code, printed = cloud(capsys, "up", "--name", aws, "--allow-cidr", CIDR)
    assert code == 2 and f"Refused: iam role {role} already exists" in printed
    assert tagged(aws) == {}  # nothing created, not even what came before it
    assert client("iam").list_role_policies(RoleName=role)["PolicyNames"] == []
    code, printed = cloud(capsys, "down", "--name", aws, "--yes")
    assert code == 0 and client("iam").get_role(RoleName=role)  # down does not touch it
    client("iam").delete_role(RoleName=role)


def test_missing_credentials_say_what_to_set(aws, capsys, monkeypatch, tmp_path) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, printed = cloud(capsys, "plan", "--name", aws, "--allow-cidr", CIDR)
    assert code == 2 and "no AWS credentials found: set AWS_PROFILE" in printed


def test_serverless_where_it_is_not_offered_is_refused_before_anything_is_made(aws, capsys):
    """moto's server has no Redshift Serverless: as in a region without it."""
    code, printed = cloud(capsys, "up", "--name", aws, "--allow-cidr", CIDR, "--serverless")
    assert code == 2 and "Redshift Serverless is not available" in printed
    assert tagged(aws) == {}


def test_a_down_interrupted_half_way_is_finished_by_the_next(aws, capsys, monkeypatch) -> None:
    assert cloud(capsys, "up", "--name", aws, "--allow-cidr", CIDR)[0] == 0

    def killed(self, aws_, keep_snapshot):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(CopyRole, "delete", killed)
        with pytest.raises(KeyboardInterrupt):
            main(["cloud", "down", "--name", aws, "--yes", "--delete-bucket"])
    capsys.readouterr()
    left = tagged(aws)
    assert "clusters" not in left and {"roles", "queues", "bucket"} <= set(left)
    code, printed = cloud(capsys, "down", "--name", aws, "--yes", "--delete-bucket")
    assert code == 0, printed
    assert tagged(aws) == {}


def test_down_can_keep_a_final_snapshot(aws, capsys) -> None:
    assert cloud(capsys, "up", "--name", aws, "--allow-cidr", CIDR)[0] == 0
    code, printed = cloud(capsys, "down", "--name", aws, "--yes", "--keep-snapshot")
    assert code == 0 and f"final snapshot {aws}-final-" in printed
    snapshots = client("redshift").describe_cluster_snapshots()
    assert any(s["SnapshotIdentifier"].startswith(f"{aws}-final-") for s in snapshots["Snapshots"])
    password_file = Path(os.environ["ETL_ASSETS_HOME"]) / "cloud" / f"{aws}.password"
    assert password_file.exists()  # the snapshot restores with this password
    assert set(tagged(aws)) == {"bucket"}  # kept without --delete-bucket


def test_down_asks_for_the_stack_name(aws, capsys, monkeypatch) -> None:
    assert cloud(capsys, "up", "--name", aws, "--allow-cidr", CIDR)[0] == 0
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    code, printed = cloud(capsys, "down", "--name", aws)
    assert code == 1 and "Not confirmed: nothing deleted." in printed
    assert "clusters" in tagged(aws)
    monkeypatch.setattr("builtins.input", lambda prompt: aws)
    assert cloud(capsys, "down", "--name", aws, "--delete-bucket")[0] == 0
    assert tagged(aws) == {}
