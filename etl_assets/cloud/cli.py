"""The `etl-assets cloud` sub-commands."""

from __future__ import annotations

import argparse
import sys

from etl_assets.cloud import stack
from etl_assets.cloud.settings import DEFAULT_NODE_TYPE, CloudRefusal, from_environment


def add_to(commands) -> None:
    cloud = commands.add_parser(
        "cloud",
        help="create, show or delete the AWS resources (bucket, queues, role, Redshift)",
        description="Bucket and region from ETL_S3_BUCKET and AWS_REGION; every resource is"
        " tagged etl-assets:stack=<name>, and only tagged ones are ever changed or deleted.",
    )
    actions = cloud.add_subparsers(dest="action", required=True)
    for action, text in [
        ("plan", "print what up would create or change"),
        ("up", "create or update the stack (idempotent); print the ETL_* settings"),
        ("status", "show what exists"),
        ("down", "delete the stack's tagged resources"),
    ]:
        sub = actions.add_parser(action, help=text)
        sub.add_argument("--name", default="etl-assets", help="resource name prefix")
        sub.add_argument("--serverless", action="store_true", help="Redshift Serverless")
        if action in ("plan", "up"):
            sub.add_argument("--allow-cidr", help="the only network Redshift accepts (required)")
            sub.add_argument("--allow-public", action="store_true", help="allow 0.0.0.0/0")
            sub.add_argument("--node-type", default=DEFAULT_NODE_TYPE)
            sub.add_argument("--nodes", type=int, default=1)
        if action == "down":
            sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
            sub.add_argument("--keep-snapshot", action="store_true", help="final snapshot")
            sub.add_argument("--delete-bucket", action="store_true", help="and its objects")


def run(args: argparse.Namespace, upload_prefixes: dict[str, str]) -> int:
    """`upload_prefixes`: each domain's upload prefix, which gets a queue of its own."""
    options = {
        "name": args.name,
        "serverless": args.serverless,
        "allow_cidr": getattr(args, "allow_cidr", None),
        "allow_public": getattr(args, "allow_public", False),
        "node_type": getattr(args, "node_type", DEFAULT_NODE_TYPE),
        "nodes": getattr(args, "nodes", 1),
        "upload_prefixes": upload_prefixes,
    }
    settings = from_environment(**options)
    try:
        if args.action == "plan":
            return stack.run_plan(settings, print)
        if args.action == "up":
            return stack.run_up(settings, print)
        if args.action == "status":
            return stack.run_status(settings, print)
        return stack.run_down(
            settings, print, args.yes, input, args.keep_snapshot, args.delete_bucket
        )
    except CloudRefusal as refusal:
        print(f"etl-assets cloud {args.action}: {refusal}", file=sys.stderr)
        return 2
