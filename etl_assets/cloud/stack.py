"""`etl-assets cloud plan | up | status | down`: one stack of AWS resources for the code
location, created in order and deleted in reverse, touching only what carries its tag."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from etl_assets.cloud.aws import Aws, aws_errors
from etl_assets.cloud.parts import (
    ABSENT,
    FOREIGN,
    OURS,
    Bucket,
    CopyRole,
    Found,
    Notifications,
    Outputs,
    Part,
    Queue,
    SecurityGroup,
)
from etl_assets.cloud.redshift import Cluster, Namespace, Workgroup
from etl_assets.cloud.settings import (
    ADMIN_USER,
    DATABASE,
    PORT,
    TAG_KEY,
    CloudRefusal,
    CloudSettings,
)

Say = Callable[[str], None]


def parts(settings: CloudSettings) -> list[Part]:
    """In creation order: each may use what the earlier ones produced."""
    found: list[Part] = [Bucket(settings, settings.bucket)]
    found += [Queue(settings, domain) for domain in sorted(settings.upload_prefixes)]
    found += [
        Notifications(settings, settings.bucket),
        CopyRole(settings, f"{settings.name}-redshift-copy"),
        SecurityGroup(settings, f"{settings.name}-redshift"),
    ]
    if settings.serverless:
        return found + [Namespace(settings, settings.name), Workgroup(settings, settings.name)]
    return found + [Cluster(settings, settings.name)]


@dataclass
class Step:
    part: Part
    found: Found

    @property
    def action(self) -> str:
        if self.found.state == FOREIGN:
            return "refuse"
        if self.found.state == ABSENT:
            return "create"
        return "update" if self.found.changes else "ok"

    def line(self) -> str:
        detail = {
            "refuse": f"exists without tag {TAG_KEY}={self.part.tag}: not ours, left alone",
            "update": "; ".join(self.found.changes),
        }.get(self.action, self.found.detail)
        return f"  {self.action:<7} {self.part.kind:<21} {self.part.name}  {detail}".rstrip()


def plan(settings: CloudSettings, aws: Aws, out: Outputs | None = None) -> list[Step]:
    out = out if out is not None else Outputs()
    with aws_errors("reading what exists"):
        return [Step(part, part.find(aws, out)) for part in parts(settings)]


def run_plan(settings: CloudSettings, say: Say) -> int:
    aws = _checked(settings, say)
    steps = plan(settings, aws)
    say(f"Stack {settings.name!r} in {settings.region} (bucket {settings.bucket}):")
    for step in steps:
        say(step.line())
    return 2 if _refused(steps, say) else 0


def run_up(settings: CloudSettings, say: Say) -> int:
    aws = _checked(settings, say)
    out = Outputs()
    steps = plan(settings, aws, out)
    if _refused(steps, say):
        return 2
    changed = 0
    for step in steps:
        with aws_errors(f"{step.action} {step.part.kind} {step.part.name}"):
            if step.action == "create":
                step.part.create(aws, out)
            elif step.action == "update":
                step.part.update(aws, out, step.found.changes)
            else:
                step.part.find(aws, out)  # its outputs, fresh
        if step.action != "ok":
            changed += 1
            say(f"  {step.action}d {step.part.kind} {step.part.name}".replace("ed d", "ed"))
    say("Nothing to change." if not changed else f"{changed} change(s) applied.")
    for line in settings_lines(settings, out):
        say(line)
    return 0


def run_status(settings: CloudSettings, say: Say) -> int:
    aws = _checked(settings, say, builds=False)
    out = Outputs()
    steps = plan(settings, aws, out)
    say(f"Stack {settings.name!r} in {settings.region}:")
    for step in steps:
        state = {OURS: "exists", ABSENT: "absent", FOREIGN: "not ours"}[step.found.state]
        say(f"  {state:<8} {step.part.kind:<21} {step.part.name}  {step.found.detail}".rstrip())
    if out.host:
        for line in settings_lines(settings, out):
            say(line)
    return 0


def run_down(
    settings: CloudSettings,
    say: Say,
    confirmed: bool,
    ask: Callable[[str], str],
    keep_snapshot: bool = False,
    delete_bucket: bool = False,
) -> int:
    aws = _checked(settings, say, builds=False)
    steps = [s for s in plan(settings, aws) if s.found.state == OURS]
    if not delete_bucket:
        kept = [s for s in steps if isinstance(s.part, Bucket)]
        steps = [s for s in steps if not isinstance(s.part, Bucket)]
        for step in kept:
            say(
                f"  keep    s3 bucket {step.part.name}"
                " (it holds your data; --delete-bucket deletes it)"
            )
    if not steps:
        say(f"Nothing tagged {TAG_KEY}={settings.name} to delete.")
        return 0
    for step in steps:
        say(f"  delete  {step.part.kind:<21} {step.part.name}")
    if not confirmed and ask(f"Type {settings.name!r} to delete these: ").strip() != settings.name:
        say("Not confirmed: nothing deleted.")
        return 1
    for step in reversed(steps):
        with aws_errors(f"deleting {step.part.kind} {step.part.name}"):
            say(f"  {step.part.kind} {step.part.name}: {step.part.delete(aws, keep_snapshot)}")
    warehouse_gone = any(isinstance(s.part, Cluster | Namespace) for s in steps)
    if warehouse_gone and not keep_snapshot:  # a snapshot restores with this password
        settings.password_file.unlink(missing_ok=True)
    return 0


def settings_lines(settings: CloudSettings, out: Outputs) -> list[str]:
    """The code location's ETL_* settings; the password by reference to its file only."""
    lines = [
        "",
        "# the code location's settings (the password stays in its file):",
        f"export ETL_WAREHOUSE_HOST={out.host}",
        f"export ETL_WAREHOUSE_PORT={PORT}",
        f"export ETL_WAREHOUSE_DATABASE={DATABASE}",
        f"export ETL_WAREHOUSE_USER={ADMIN_USER}",
        f'export ETL_WAREHOUSE_PASSWORD="$(cat {settings.password_file})"',
        f"export ETL_REDSHIFT_IAM_ROLE={out.role_arn}",
        f"export ETL_S3_BUCKET={settings.bucket}",
        f"export AWS_REGION={settings.region}",
    ]
    lines += [
        f"export ETL_{domain.upper()}_UPLOAD_QUEUE_URL={url}"
        for domain, url in sorted(out.queue_urls.items())
    ]
    if not settings.password_file.exists():
        lines.append(f"# {settings.password_file} is missing: reset the admin password in AWS")
    return lines


def _checked(settings: CloudSettings, say: Say, builds: bool = True) -> Aws:
    for warning in settings.check(network=builds):
        say(warning)
    aws = Aws(settings)
    aws.check_credentials()
    return aws


def _refused(steps: list[Step], say: Say) -> bool:
    refused = [s for s in steps if s.action == "refuse"]
    for step in refused:
        say(
            f"Refused: {step.part.kind} {step.part.name} already exists and is not this"
            f" stack's (no tag {TAG_KEY}={step.part.tag}). Choose another --name or bucket,"
            " or tag it to hand it over; nothing was changed."
        )
    return bool(refused)


__all__ = ["CloudRefusal", "run_down", "run_plan", "run_status", "run_up"]
