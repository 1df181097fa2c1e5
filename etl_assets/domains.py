"""The domains of this code location, found by walking `etl_assets/defs/`: every package there
that declares a `DOMAIN` (see `etl_assets.lib.domain`)."""

from __future__ import annotations

import importlib
import pkgutil

import etl_assets.defs
from etl_assets.lib.domain import Domain


def discover() -> list[Domain]:
    found = []
    for module in pkgutil.iter_modules(etl_assets.defs.__path__):
        if not module.ispkg:
            continue
        package = importlib.import_module(f"etl_assets.defs.{module.name}")
        domain = getattr(package, "DOMAIN", None)
        if isinstance(domain, Domain):
            found.append(domain)
    return sorted(found, key=lambda d: d.name)


def by_name(name: str) -> Domain:
    domains = {d.name: d for d in discover()}
    if name not in domains:
        raise KeyError(f"no domain {name!r}; domains: {', '.join(sorted(domains))}")
    return domains[name]


def upload_prefixes() -> dict[str, str]:
    """domain -> the prefix its upload sensor watches (the local stack queues these)."""
    return {d.name: d.upload_prefix for d in discover() if d.upload_prefix}
