"""What `etl-assets cloud` builds, from its options and the environment, checked before any
AWS call: a refusal here costs nothing."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

TAG_KEY = "etl-assets:stack"  # every resource carries it, valued with the stack's name
NAME = re.compile(r"^[a-z][a-z0-9-]{1,29}$")
DEFAULT_NODE_TYPE = "ra3.large"
PORT = 5439
ADMIN_USER = "etl_admin"
DATABASE = "dev"


class CloudRefusal(Exception):
    """Something the user must change before anything is created; the message says what."""


@dataclass(frozen=True)
class CloudSettings:
    name: str
    region: str
    bucket: str
    allow_cidr: str | None
    allow_public: bool = False
    serverless: bool = False
    node_type: str = DEFAULT_NODE_TYPE
    nodes: int = 1
    upload_prefixes: dict[str, str] = field(default_factory=dict)  # domain -> prefix
    endpoint_url: str | None = None  # ETL_AWS_ENDPOINT_URL: every client (moto in tests)
    state_dir: Path = Path(".etl_assets")

    @property
    def cidr(self) -> str:
        return self.allow_cidr or "0.0.0.0/0"

    @property
    def password_file(self) -> Path:
        return self.state_dir / "cloud" / f"{self.name}.password"

    def check(self, network: bool = True) -> list[str]:
        """Refuse what must not be built; returns the warnings to print. `network=False`:
        the command builds nothing (status, down), the allowed network does not matter."""
        if not NAME.match(self.name):
            raise CloudRefusal(
                f"--name {self.name!r}: 2-30 characters, lowercase letters, digits and '-',"
                " starting with a letter (it prefixes every resource name)"
            )
        if not self.bucket:
            raise CloudRefusal("ETL_S3_BUCKET is not set: name the bucket files land in")
        if self.nodes < 1:
            raise CloudRefusal("--nodes must be at least 1")
        return self._check_network() if network else []

    def _check_network(self) -> list[str]:
        if self.allow_cidr is None and not self.allow_public:
            raise CloudRefusal(
                "--allow-cidr CIDR is required: the network Redshift accepts connections from"
                " (for example your office's 203.0.113.0/24, or your address as x.x.x.x/32)"
            )
        try:
            network = ipaddress.ip_network(self.cidr, strict=True)
        except ValueError as error:
            raise CloudRefusal(f"--allow-cidr {self.cidr!r}: {error}") from None
        if network.prefixlen == 0 and not self.allow_public:
            raise CloudRefusal(
                f"--allow-cidr {self.cidr} opens the warehouse to the whole internet; name a"
                " narrower network, or pass --allow-public if that is really what you want"
            )
        if network.prefixlen == 0:
            return [
                f"WARNING: Redshift will accept connections from anywhere ({self.cidr});"
                " only its password protects it"
            ]
        return []


def from_environment(**options) -> CloudSettings:
    """Options from the command line; bucket, region and endpoint from the environment."""
    env = os.environ
    return CloudSettings(
        bucket=env.get("ETL_S3_BUCKET", ""),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=env.get("ETL_AWS_ENDPOINT_URL") or None,
        state_dir=Path(env.get("ETL_ASSETS_HOME", ".etl_assets")),
        **options,
    )
