"""The AWS resources of one stack, each able to find, create, update and delete itself.

A resource is only ever changed or deleted when it carries the stack's tag
(`etl-assets:stack=<name>`); one found under its name without the tag is someone else's and is
refused, whatever the command.
"""

from __future__ import annotations

import json
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from etl_assets.cloud.aws import Aws, error_code
from etl_assets.cloud.settings import PORT, TAG_KEY, CloudRefusal, CloudSettings
from etl_assets.loading.upload_queue import queue_notifications

ABSENT, OURS, FOREIGN = "absent", "ours", "foreign"


@dataclass
class Found:
    state: str  # absent | ours | foreign
    changes: list[str] = field(default_factory=list)  # what `up` would change on ours
    detail: str = ""


@dataclass
class Outputs:
    """What later resources need from earlier ones, and what the code location is told."""

    queue_urls: dict[str, str] = field(default_factory=dict)
    role_arn: str = ""
    security_group: str = ""
    host: str = ""


class Part(ABC):
    """One resource of the stack, under `name`; `kind` names it for people."""

    kind = ""

    def __init__(self, settings: CloudSettings, name: str) -> None:
        self.settings, self.name = settings, name

    @property
    def tag(self) -> str:
        return self.settings.name

    @abstractmethod
    def find(self, aws: Aws, out: Outputs) -> Found:
        """Whether it exists and is ours; what `up` would change; its outputs into `out`."""

    @abstractmethod
    def create(self, aws: Aws, out: Outputs) -> None: ...

    def update(self, aws: Aws, out: Outputs, changes: list[str]) -> None:
        """Apply `changes` (as `find` listed them); a part with nothing to update has none."""
        del aws, out, changes

    @abstractmethod
    def delete(self, aws: Aws, keep_snapshot: bool) -> str:
        """Delete it; returns what happened, for people."""

    def _owned(self, tags: dict[str, str]) -> str:
        return OURS if tags.get(TAG_KEY) == self.tag else FOREIGN


class Bucket(Part):
    kind = "s3 bucket"

    def find(self, aws: Aws, out: Outputs) -> Found:
        s3 = aws.client("s3")
        try:
            s3.head_bucket(Bucket=self.name)
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchBucket", "NotFound"):
                return Found(ABSENT)
            return Found(FOREIGN, detail="owned by another account")
        try:
            tags = s3.get_bucket_tagging(Bucket=self.name)["TagSet"]
        except ClientError:  # NoSuchTagSet
            tags = []
        return Found(self._owned({t["Key"]: t["Value"] for t in tags}))

    def create(self, aws: Aws, out: Outputs) -> None:
        s3 = aws.client("s3")
        options = {}
        if self.settings.region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.region}
        s3.create_bucket(Bucket=self.name, **options)
        s3.put_bucket_tagging(
            Bucket=self.name, Tagging={"TagSet": [{"Key": TAG_KEY, "Value": self.tag}]}
        )
        s3.put_public_access_block(
            Bucket=self.name,
            PublicAccessBlockConfiguration=dict.fromkeys(
                [
                    "BlockPublicAcls",
                    "IgnorePublicAcls",
                    "BlockPublicPolicy",
                    "RestrictPublicBuckets",
                ],
                True,
            ),
        )

    def delete(self, aws: Aws, keep_snapshot: bool) -> str:
        s3 = aws.client("s3")
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.name):
            versions = page.get("Versions", []) + page.get("DeleteMarkers", [])
            if versions:
                objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]
                s3.delete_objects(Bucket=self.name, Delete={"Objects": objects, "Quiet": True})
        s3.delete_bucket(Bucket=self.name)
        return "deleted with its objects"


class Queue(Part):
    kind = "sqs queue"

    def __init__(self, settings: CloudSettings, domain: str) -> None:
        super().__init__(settings, f"{settings.name}-{domain}-uploads")
        self.domain = domain

    def _url(self, aws: Aws) -> str | None:
        try:
            return aws.client("sqs").get_queue_url(QueueName=self.name)["QueueUrl"]
        except ClientError as error:
            if "NonExistentQueue" in error_code(error) or "QueueDoesNotExist" in error_code(error):
                return None
            raise

    def find(self, aws: Aws, out: Outputs) -> Found:
        url = self._url(aws)
        if url is None:
            return Found(ABSENT)
        out.queue_urls[self.domain] = url
        sqs = aws.client("sqs")
        state = self._owned(sqs.list_queue_tags(QueueUrl=url).get("Tags", {}))
        policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
        current = json.loads(policy.get("Attributes", {}).get("Policy", "{}") or "{}")
        changes = [] if current == self._policy(aws, url) else ["policy letting the bucket send"]
        return Found(state, changes if state == OURS else [])

    def _policy(self, aws: Aws, url: str) -> dict:
        arn = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "landing-bucket-events",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn["Attributes"]["QueueArn"],
                    "Condition": {
                        "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{self.settings.bucket}"}
                    },
                }
            ],
        }

    def create(self, aws: Aws, out: Outputs) -> None:
        sqs = aws.client("sqs")
        url = sqs.create_queue(QueueName=self.name, tags={TAG_KEY: self.tag})["QueueUrl"]
        out.queue_urls[self.domain] = url
        self.update(aws, out, [])

    def update(self, aws: Aws, out: Outputs, changes: list[str]) -> None:
        url = out.queue_urls[self.domain]
        policy = json.dumps(self._policy(aws, url))
        aws.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})

    def delete(self, aws: Aws, keep_snapshot: bool) -> str:
        aws.client("sqs").delete_queue(QueueUrl=self._url(aws))
        return "deleted"


class Notifications(Part):
    """The bucket's ObjectCreated events under each domain's prefix, to its queue. Lives on
    the bucket (no tag of its own): other notification configurations are kept."""

    kind = "bucket notifications"

    def _current(self, aws: Aws) -> dict:
        config = aws.client("s3").get_bucket_notification_configuration(Bucket=self.name)
        config.pop("ResponseMetadata", None)
        return config

    def _wanted(self, aws: Aws, out: Outputs) -> list[dict]:
        prefixes = self.settings.upload_prefixes
        return queue_notifications(aws.client("sqs"), out.queue_urls, prefixes)

    def find(self, aws: Aws, out: Outputs) -> Found:
        if Bucket(self.settings, self.name).find(aws, out).state != OURS:
            return Found(ABSENT)
        ours = [c for c in self._current(aws).get("QueueConfigurations", []) if _is_ours(c)]
        if not ours:
            return Found(ABSENT)
        if set(out.queue_urls) != set(self.settings.upload_prefixes):
            return Found(OURS, ["queues"])
        same = _comparable(ours) == _comparable(self._wanted(aws, out))
        return Found(OURS, [] if same else ["events to the upload queues"])

    def create(self, aws: Aws, out: Outputs) -> None:
        self.update(aws, out, [])

    def update(self, aws: Aws, out: Outputs, changes: list[str]) -> None:
        config = self._current(aws)
        others = [c for c in config.get("QueueConfigurations", []) if not _is_ours(c)]
        config["QueueConfigurations"] = others + self._wanted(aws, out)
        aws.client("s3").put_bucket_notification_configuration(
            Bucket=self.name, NotificationConfiguration=config
        )

    def delete(self, aws: Aws, keep_snapshot: bool) -> str:
        config = self._current(aws)
        config["QueueConfigurations"] = [
            c for c in config.get("QueueConfigurations", []) if not _is_ours(c)
        ]
        aws.client("s3").put_bucket_notification_configuration(
            Bucket=self.name, NotificationConfiguration=config
        )
        return "removed"


def _is_ours(configuration: dict) -> bool:
    return configuration.get("Id", "").startswith("etl-assets-")


def _comparable(configurations: list[dict]) -> list[tuple]:
    return sorted(
        (c["Id"], c["QueueArn"], json.dumps(c.get("Filter", {}), sort_keys=True))
        for c in configurations
    )


class CopyRole(Part):
    """The role Redshift assumes for COPY: read the landing bucket, nothing else."""

    kind = "iam role"
    POLICY = "read-landing-bucket"

    def document(self) -> dict:
        bucket = f"arn:aws:s3:::{self.settings.bucket}"
        return {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"{bucket}/*"},
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": bucket,
                },
            ],
        }

    def find(self, aws: Aws, out: Outputs) -> Found:
        iam = aws.client("iam")
        try:
            role = iam.get_role(RoleName=self.name)["Role"]
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return Found(ABSENT)
            raise
        out.role_arn = role["Arn"]
        tags = iam.list_role_tags(RoleName=self.name).get("Tags", [])
        state = self._owned({t["Key"]: t["Value"] for t in tags})
        try:
            policy = iam.get_role_policy(RoleName=self.name, PolicyName=self.POLICY)
            current = policy["PolicyDocument"]
            current = json.loads(current) if isinstance(current, str) else current
        except ClientError:
            current = None
        changes = [] if current == self.document() else ["policy: read the landing bucket"]
        return Found(state, changes if state == OURS else [])

    def create(self, aws: Aws, out: Outputs) -> None:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "Service": ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]
                    },
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = aws.client("iam").create_role(
            RoleName=self.name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=f"Redshift COPY from s3://{self.settings.bucket} (etl-assets)",
            Tags=[{"Key": TAG_KEY, "Value": self.tag}],
        )
        out.role_arn = role["Role"]["Arn"]
        self.update(aws, out, [])

    def update(self, aws: Aws, out: Outputs, changes: list[str]) -> None:
        aws.client("iam").put_role_policy(
            RoleName=self.name, PolicyName=self.POLICY, PolicyDocument=json.dumps(self.document())
        )

    def delete(self, aws: Aws, keep_snapshot: bool) -> str:
        iam = aws.client("iam")
        for policy in iam.list_role_policies(RoleName=self.name).get("PolicyNames", []):
            iam.delete_role_policy(RoleName=self.name, PolicyName=policy)
        iam.delete_role(RoleName=self.name)
        return "deleted"


class SecurityGroup(Part):
    """Port 5439 open to the one network the user named, in the default VPC."""

    kind = "security group"

    def _vpc(self, aws: Aws) -> str:
        vpcs = aws.client("ec2").describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])
        if not vpcs["Vpcs"]:
            raise CloudRefusal(f"no default VPC in {self.settings.region}: create one first")
        return vpcs["Vpcs"][0]["VpcId"]

    def _group(self, aws: Aws) -> dict | None:
        groups = aws.client("ec2").describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [self.name]},
                {"Name": "vpc-id", "Values": [self._vpc(aws)]},
            ]
        )["SecurityGroups"]
        return groups[0] if groups else None

    def _ingress(self) -> list[dict]:
        return [
            {
                "IpProtocol": "tcp",
                "FromPort": PORT,
                "ToPort": PORT,
                "IpRanges": [{"CidrIp": self.settings.cidr, "Description": "etl-assets"}],
            }
        ]

    def find(self, aws: Aws, out: Outputs) -> Found:
        group = self._group(aws)
        if group is None:
            return Found(ABSENT)
        out.security_group = group["GroupId"]
        state = self._owned({t["Key"]: t["Value"] for t in group.get("Tags", [])})
        cidrs = {
            (p.get("FromPort"), r["CidrIp"])
            for p in group.get("IpPermissions", [])
            for r in p.get("IpRanges", [])
        }
        changes = (
            [] if cidrs == {(PORT, self.settings.cidr)} else [f"ingress: {self.settings.cidr}"]
        )
        return Found(state, changes if state == OURS else [], group["GroupId"])

    def create(self, aws: Aws, out: Outputs) -> None:
        group = aws.client("ec2").create_security_group(
            GroupName=self.name,
            Description="Redshift for etl-assets: port 5439 from one network",
            VpcId=self._vpc(aws),
            TagSpecifications=[
                {"ResourceType": "security-group", "Tags": [{"Key": TAG_KEY, "Value": self.tag}]}
            ],
        )
        out.security_group = group["GroupId"]
        self.update(aws, out, [])

    def update(self, aws: Aws, out: Outputs, changes: list[str]) -> None:
        ec2 = aws.client("ec2")
        group = self._group(aws)
        if group and group.get("IpPermissions"):
            ec2.revoke_security_group_ingress(
                GroupId=out.security_group, IpPermissions=group["IpPermissions"]
            )
        ec2.authorize_security_group_ingress(
            GroupId=out.security_group, IpPermissions=self._ingress()
        )

    def delete(self, aws: Aws, keep_snapshot: bool) -> str:
        group = self._group(aws)
        try:
            aws.client("ec2").delete_security_group(GroupId=group["GroupId"])
        except ClientError as error:
            if error_code(error) == "DependencyViolation":
                return "still in use (the cluster is being deleted): run `cloud down` again"
            raise
        return "deleted"


def new_password() -> str:
    """Redshift's rules: 8-64 characters with an upper, a lower case letter and a digit; none
    of ' " \\ / @ or space."""
    body = secrets.token_urlsafe(24)
    return f"Ea7{body}"


def snapshot_name(name: str) -> str:
    return f"{name}-final-{datetime.now(UTC):%Y%m%d%H%M%S}"
