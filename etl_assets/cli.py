"""`etl-assets`: the local stack and the demo.

etl-assets up                              start the embedded PostgreSQL and S3 (idempotent)
etl-assets down                            stop them (data stays under .etl_assets/)
etl-assets env                             print the stack's settings as shell exports
etl-assets upload --domain NAME FILE       put a file where the domain's upload sensor looks
etl-assets demo [--data DIR] [--json]      load data, materialize every asset, report
etl-assets files --table DB.TABLE [--since ISO] [--json]   what happened to each landed file
etl-assets api [--port N]                  the same history over read-only HTTP
etl-assets replay s3://BUCKET/KEY [--force]   apply one file version again
etl-assets dev-prod                        the UI + daemon on the production instance config
etl-assets cloud plan|up|status|down [--name N] [--serverless] [--allow-cidr CIDR] ...
                                           the AWS resources: bucket, queues, role, Redshift
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import dagster
import psycopg2

from etl_assets import domains
from etl_assets.cloud import cli as cloud_cli
from etl_assets.local import stack


def main(argv: list[str] | None = None) -> int:
    _quiet_warnings()
    parser = argparse.ArgumentParser(
        prog="etl-assets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the local stack")
    commands.add_parser("down", help="stop the local stack")
    commands.add_parser("env", help="print the local stack's connection settings")
    upload = commands.add_parser("upload", help="upload a file to a domain's upload prefix")
    upload.add_argument("file", type=Path)
    upload.add_argument(
        "--domain", required=True, choices=sorted(domains.upload_prefixes()), help="domain"
    )
    upload.add_argument("--name", help="object name under the prefix (default: file name)")
    demo = commands.add_parser("demo", help="load data, materialize every asset, report")
    demo.add_argument("--data", type=Path, help="folder with one sub-folder per domain")
    demo.add_argument("--json", action="store_true", help="print the report as one JSON object")
    files = commands.add_parser("files", help="what happened to each file of a table")
    files.add_argument("--table", required=True, help="<db>.<table>, e.g. dev.users")
    files.add_argument("--since", help="landed at or after this ISO time")
    files.add_argument("--json", action="store_true", help="print one JSON array")
    api = commands.add_parser("api", help="serve the file history over read-only HTTP")
    api.add_argument("--port", type=int, default=8080)
    api.add_argument("--host", default="127.0.0.1")
    replay = commands.add_parser("replay", help="apply one landed file version again")
    replay.add_argument("url", help="s3://<bucket>/<key>")
    replay.add_argument("--force", action="store_true", help="even if it is already loaded")
    commands.add_parser(
        "dev-prod", help="the Dagster UI and daemon on the production instance, locally"
    )
    cloud_cli.add_to(commands)
    args = parser.parse_args(argv)
    if args.command == "cloud":
        return cloud_cli.run(args, domains.upload_prefixes())
    return COMMANDS[args.command](args)


def _quiet_warnings() -> None:
    """What a user cannot act on: Dagster's beta/preview notices, and platformdirs' note that
    XDG_RUNTIME_DIR is unset (it falls back to /tmp by itself)."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR is not set.*")
    warnings.filterwarnings("ignore", category=Warning, module=r"dagster(\.|$)")
    for name in ("BetaWarning", "PreviewWarning", "SupersessionWarning"):
        category = getattr(dagster, name, None)
        if isinstance(category, type) and issubclass(category, Warning):
            warnings.filterwarnings("ignore", category=category)


def _dev_prod(args: argparse.Namespace) -> int:
    from etl_assets.local.prod_instance import run_dagster_dev

    info = stack.up(upload_prefixes=domains.upload_prefixes())
    run_dagster_dev(stack.state_dir() / "dagster_prod", info)
    return 0


def _up(args: argparse.Namespace) -> int:
    info = stack.up(upload_prefixes=domains.upload_prefixes())
    print(f"PostgreSQL  {info.dsn()}")
    print(f"S3          {info.s3_endpoint_url}  bucket {info.bucket}")
    return 0


def _down(args: argparse.Namespace) -> int:
    stack.down()
    print("local stack stopped")
    return 0


def _running_stack() -> stack.StackInfo | None:
    info = stack.read_stack()
    if info is None:
        print("local stack not running: run `etl-assets up`", file=sys.stderr)
    return info


def _env(args: argparse.Namespace) -> int:
    info = _running_stack()
    if info is None:
        return 1
    print(
        f"export PGHOST={info.pg_host} PGPORT={info.pg_port} PGUSER={info.pg_user} "
        f"PGDATABASE={info.pg_database}"
    )
    print(f"export AWS_ENDPOINT_URL_S3={info.s3_endpoint_url}")
    return 0


def _upload(args: argparse.Namespace) -> int:
    info = _running_stack()
    if info is None:
        return 1
    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 2
    key = domains.upload_prefixes()[args.domain] + (args.name or args.file.name)
    key_action = domains.by_name(args.domain).key_action
    if key_action is not None and key_action(key) is None:  # no rule would route it
        print(
            f"etl-assets upload: {key} is not a key the {args.domain} domain routes; name the"
            " file with --name <db>/<action>/<table>/<file>, e.g. --name"
            f" dev/append/users/{args.file.name} (actions: append, truncate, upsert, schema)."
            " Nothing was uploaded.",
            file=sys.stderr,
        )
        return 2
    client = stack.s3_client(info)
    client.upload_file(str(args.file), info.bucket, key)
    etag = client.head_object(Bucket=info.bucket, Key=key)["ETag"].strip('"')
    print(f"s3://{info.bucket}/{key}  ETag {etag}")
    print(_what_happens_next(info, args.domain, key, etag))
    return 0


def _what_happens_next(info, domain: str, key: str, etag: str) -> str:
    """What the upload will cause: nothing new if this exact version is loaded already, else
    a run of the domain's job once its sensor ticks (while `make dev` runs)."""
    from etl_assets.lib.sensors import sensor_interval_s
    from etl_assets.local.resources import warehouse_for

    try:
        loaded = warehouse_for(info).query(
            "select run_id, target_table from etl_audit.file_ledger where bucket = %s"
            " and object_key = %s and etag = %s and status = 'loaded'"  # ETags stored unquoted
            " order by recorded_at desc limit 1",
            (info.bucket, key, etag),
        )
    except psycopg2.Error:  # no ledger yet: nothing was ever loaded
        loaded = []
    if loaded:
        run_id, table = loaded[0]
        return (
            f"This exact version is already loaded into {table} (run {run_id}); a new run"
            " will find it up to date."
        )
    interval = sensor_interval_s(domains.upload_prefixes()[domain])
    return (
        f"A run of {domain}_uploads will start within ~{2 * interval + 2} s while `make dev`"
        " runs (its sensor ticks every"
        f" {interval} s): http://127.0.0.1:3000/runs"
    )


def _demo(args: argparse.Namespace) -> int:
    from etl_assets.demo import format_report, run_demo

    if args.data is not None and not args.data.is_dir():
        print(f"--data {args.data}: not a folder", file=sys.stderr)
        return 2
    progress = None if args.json else lambda line: print(line, file=sys.stderr, flush=True)
    report = run_demo(args.data, say=progress)
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        print(format_report(report))
    return 1 if report.failed_errors else 0


def _files(args: argparse.Namespace) -> int:
    from etl_assets.defs.resources import SettingsError, resolved, warehouse_from_env
    from etl_assets.history import BadRequest, file_history

    try:
        warehouse = resolved(warehouse_from_env())
    except SettingsError as error:
        print(f"etl-assets files: {error}", file=sys.stderr)
        return 2
    rows, cursor = [], None
    try:
        while True:
            page, cursor = file_history(warehouse, args.table, args.since, cursor)
            rows += page
            if cursor is None:
                break
    except BadRequest as error:
        print(f"etl-assets files: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'landed at':<26} {'status':<11} {'action':<9} {'rows':>8}  key / error")
    for row in rows:
        rows_text = "" if row["rows"] is None else f"{row['rows']:,}"
        print(
            f"{row['landed_at'] or '':<26} {row['status']:<11} {row['action'] or '':<9}"
            f" {rows_text:>8}  {row['key']}"
        )
        if row["error"]:
            print(f"{'':<58}{row['error']}")
    print(f"{len(rows)} file version(s) for {args.table}")
    return 0


def _api(args: argparse.Namespace) -> int:
    from etl_assets.api import serve
    from etl_assets.defs.resources import SettingsError, api_warehouse_from_env, resolved

    try:
        warehouse = resolved(api_warehouse_from_env())
    except SettingsError as error:
        print(f"etl-assets api: {error}", file=sys.stderr)
        return 2
    server = serve(warehouse, args.host, args.port)
    print(f"serving http://{args.host}:{server.server_address[1]}/files?table=<db>.<table>")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _replay(args: argparse.Namespace) -> int:
    from etl_assets.replay import ReplayError, replay

    try:
        outcome = replay(args.url, args.force)
    except ReplayError as error:
        print(f"etl-assets replay: {error}", file=sys.stderr)
        return 2
    print(outcome.summary)
    return 0 if outcome.success else 1


COMMANDS = {
    "up": _up,
    "down": _down,
    "env": _env,
    "upload": _upload,
    "demo": _demo,
    "files": _files,
    "api": _api,
    "replay": _replay,
    "dev-prod": _dev_prod,
}

if __name__ == "__main__":
    sys.exit(main())
