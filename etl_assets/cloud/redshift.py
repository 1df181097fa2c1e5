"""The warehouse of a stack: a provisioned Redshift cluster, or a Serverless namespace and
workgroup. The admin password is generated here and written to a file only its owner can read;
it is never printed or logged."""

from __future__ import annotations

import os
import time

from botocore.exceptions import ClientError

from etl_assets.cloud.aws import Aws, error_code, service_unavailable
from etl_assets.cloud.parts import (
    ABSENT,
    OURS,
    Found,
    Outputs,
    Part,
    new_password,
    snapshot_name,
)
from etl_assets.cloud.settings import ADMIN_USER, DATABASE, TAG_KEY, CloudRefusal

SERVERLESS_BASE_RPU = 8
WAIT_S = 1800


def write_password(path, password: str) -> None:
    """Mode 600 from the moment the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")


class Cluster(Part):
    kind = "redshift cluster"

    def _describe(self, aws: Aws) -> dict | None:
        try:
            return aws.client("redshift").describe_clusters(ClusterIdentifier=self.name)[
                "Clusters"
            ][0]
        except ClientError as error:
            if error_code(error) == "ClusterNotFound":
                return None
            raise

    def find(self, aws: Aws, out: Outputs) -> Found:
        cluster = self._describe(aws)
        if cluster is None:
            return Found(ABSENT)
        state = self._owned({t["Key"]: t["Value"] for t in cluster.get("Tags", [])})
        out.host = cluster.get("Endpoint", {}).get("Address", "")
        changes = []
        if cluster["NodeType"] != self.settings.node_type:
            changes.append(f"node type {cluster['NodeType']} -> {self.settings.node_type}")
        if cluster["NumberOfNodes"] != self.settings.nodes:
            changes.append(f"nodes {cluster['NumberOfNodes']} -> {self.settings.nodes}")
        roles = {r["IamRoleArn"] for r in cluster.get("IamRoles", [])}
        if out.role_arn and out.role_arn not in roles:
            changes.append("COPY role attached")
        groups = {g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])}
        if out.security_group and groups != {out.security_group}:
            changes.append("security group")
        detail = f"{cluster.get('ClusterStatus', '')} {out.host}".strip()
        return Found(state, changes if state == OURS else [], detail)

    def create(self, aws: Aws, out: Outputs) -> None:
        password = new_password()
        write_password(self.settings.password_file, password)
        nodes = self.settings.nodes
        aws.client("redshift").create_cluster(
            ClusterIdentifier=self.name,
            NodeType=self.settings.node_type,
            ClusterType="single-node" if nodes == 1 else "multi-node",
            **({"NumberOfNodes": nodes} if nodes > 1 else {}),
            DBName=DATABASE,
            MasterUsername=ADMIN_USER,
            MasterUserPassword=password,
            IamRoles=[out.role_arn],
            DefaultIamRoleArn=out.role_arn,
            VpcSecurityGroupIds=[out.security_group],
            PubliclyAccessible=True,  # reachable from the named network only (its group)
            Encrypted=True,
            Tags=[{"Key": TAG_KEY, "Value": self.tag}],
        )
        self._wait_available(aws, out)

    def update(self, aws: Aws, out: Outputs, changes: list[str]) -> None:
        redshift = aws.client("redshift")
        if any(c.startswith(("node type", "nodes")) for c in changes):
            nodes = self.settings.nodes
            redshift.modify_cluster(
                ClusterIdentifier=self.name,
                NodeType=self.settings.node_type,
                ClusterType="single-node" if nodes == 1 else "multi-node",
                **({"NumberOfNodes": nodes} if nodes > 1 else {}),
            )
        if "COPY role attached" in changes:
            redshift.modify_cluster_iam_roles(
                ClusterIdentifier=self.name,
                AddIamRoles=[out.role_arn],
                DefaultIamRoleArn=out.role_arn,
            )
        if "security group" in changes:
            redshift.modify_cluster(
                ClusterIdentifier=self.name, VpcSecurityGroupIds=[out.security_group]
            )
        self._wait_available(aws, out)

    def _wait_available(self, aws: Aws, out: Outputs) -> None:
        aws.client("redshift").get_waiter("cluster_available").wait(
            ClusterIdentifier=self.name, WaiterConfig={"Delay": 30, "MaxAttempts": WAIT_S // 30}
        )
        out.host = (self._describe(aws) or {}).get("Endpoint", {}).get("Address", "")

    def delete(self, aws: Aws, keep_snapshot: bool) -> str:
        options = (
            {
                "FinalClusterSnapshotIdentifier": snapshot_name(self.name),
                "SkipFinalClusterSnapshot": False,
            }
            if keep_snapshot
            else {"SkipFinalClusterSnapshot": True}
        )
        try:
            aws.client("redshift").delete_cluster(ClusterIdentifier=self.name, **options)
        except ClientError as error:
            if error_code(error) == "InvalidClusterState":
                return "already being deleted"
            raise
        aws.client("redshift").get_waiter("cluster_deleted").wait(
            ClusterIdentifier=self.name, WaiterConfig={"Delay": 30, "MaxAttempts": WAIT_S // 30}
        )
        kept = (
            f", final snapshot {options['FinalClusterSnapshotIdentifier']}" if keep_snapshot else ""
        )
        return f"deleted{kept}"


def _serverless(aws: Aws, call: str, **kwargs) -> dict | None:
    """A Redshift Serverless call; None when the resource does not exist; a refusal when the
    service is not offered here."""
    try:
        return getattr(aws.client("redshift-serverless"), call)(**kwargs)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        if service_unavailable(error):
            raise _no_serverless(aws) from None
        raise
    except Exception as error:
        if service_unavailable(error):
            raise _no_serverless(aws) from None
        raise


def _no_serverless(aws: Aws) -> CloudRefusal:
    where = aws.settings.endpoint_url or f"region {aws.settings.region}"
    return CloudRefusal(
        f"Redshift Serverless is not available in {where}: drop --serverless for a provisioned"
        " cluster, or set AWS_REGION to a region that offers it"
    )


def _tags(aws: Aws, arn: str) -> dict[str, str]:
    found = _serverless(aws, "list_tags_for_resource", resourceArn=arn) or {}
    return {t["key"]: t["value"] for t in found.get("tags", [])}


class Namespace(Part):
    kind = "serverless namespace"

    def find(self, aws: Aws, out: Outputs) -> Found:
        found = _serverless(aws, "get_namespace", namespaceName=self.name)
        if found is None:
            return Found(ABSENT)
        namespace = found["namespace"]
        state = self._owned(_tags(aws, namespace["namespaceArn"]))
        changes = [] if out.role_arn in namespace.get("iamRoles", []) else ["COPY role attached"]
        return Found(state, changes if state == OURS else [], namespace.get("status", ""))

    def create(self, aws: Aws, out: Outputs) -> None:
        password = new_password()
        write_password(self.settings.password_file, password)
        _serverless(
            aws,
            "create_namespace",
            namespaceName=self.name,
            adminUsername=ADMIN_USER,
            adminUserPassword=password,
            dbName=DATABASE,
            iamRoles=[out.role_arn],
            defaultIamRoleArn=out.role_arn,
            tags=[{"key": TAG_KEY, "value": self.tag}],
        )

    def update(self, aws: Aws, out: Outputs, changes: list[str]) -> None:
        _serverless(
            aws,
            "update_namespace",
            namespaceName=self.name,
            iamRoles=[out.role_arn],
            defaultIamRoleArn=out.role_arn,
        )

    def delete(self, aws: Aws, keep_snapshot: bool) -> str:
        options = {"finalSnapshotName": snapshot_name(self.name)} if keep_snapshot else {}
        _serverless(aws, "delete_namespace", namespaceName=self.name, **options)
        return "deleting" + (f", final snapshot {options['finalSnapshotName']}" if options else "")


class Workgroup(Part):
    kind = "serverless workgroup"

    def find(self, aws: Aws, out: Outputs) -> Found:
        found = _serverless(aws, "get_workgroup", workgroupName=self.name)
        if found is None:
            return Found(ABSENT)
        group = found["workgroup"]
        state = self._owned(_tags(aws, group["workgroupArn"]))
        out.host = group.get("endpoint", {}).get("address", "")
        changes = (
            [] if group.get("securityGroupIds") == [out.security_group] else ["security group"]
        )
        return Found(state, changes if state == OURS else [], group.get("status", ""))

    def create(self, aws: Aws, out: Outputs) -> None:
        _serverless(
            aws,
            "create_workgroup",
            workgroupName=self.name,
            namespaceName=self.name,
            baseCapacity=SERVERLESS_BASE_RPU,
            securityGroupIds=[out.security_group],
            publiclyAccessible=True,
            tags=[{"key": TAG_KEY, "value": self.tag}],
        )
        self._wait_available(aws, out)

    def update(self, aws: Aws, out: Outputs, changes: list[str]) -> None:
        _serverless(
            aws, "update_workgroup", workgroupName=self.name, securityGroupIds=[out.security_group]
        )
        self._wait_available(aws, out)

    def _wait_available(self, aws: Aws, out: Outputs) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            group = (_serverless(aws, "get_workgroup", workgroupName=self.name) or {}).get(
                "workgroup", {}
            )
            if group.get("status") == "AVAILABLE":
                out.host = group.get("endpoint", {}).get("address", "")
                return
            time.sleep(15)
        raise CloudRefusal(f"workgroup {self.name} not available after {WAIT_S} s; run up again")

    def delete(self, aws: Aws, keep_snapshot: bool) -> str:
        _serverless(aws, "delete_workgroup", workgroupName=self.name)
        deadline = time.monotonic() + WAIT_S  # its namespace cannot go before it has
        while _serverless(aws, "get_workgroup", workgroupName=self.name) is not None:
            if time.monotonic() > deadline:
                return "still deleting: run `cloud down` again"
            time.sleep(15)
        return "deleted"
