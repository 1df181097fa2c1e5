"""A landing table's contract, declared by the uploader in a schema file, and how a new version of
it may change the table: new nullable columns, wider VARCHAR/CHAR, wider integers. Anything that
would drop or narrow what is stored is refused with the reason.

    {"table": "users",
     "columns": [{"name": "user_id", "type": "integer", "nullable": false}, ...],
     "primary_key": ["user_id"],
     "allowed_operations": ["append", "truncate", "upsert", "schema"]}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# \A...\Z, not ^...$: `$` also matches before a trailing newline
IDENTIFIER = re.compile(r"\A[a-z_][a-z0-9_]{0,62}\Z")
# names every table has already: PostgreSQL's system columns
# (https://www.postgresql.org/docs/current/ddl-system-columns.html) and Redshift's hidden ones
SYSTEM_COLUMNS = frozenset(
    ("oid", "tableoid", "xmin", "cmin", "xmax", "cmax", "ctid", "insertxid", "deletexid")
)
MAX_COLUMNS = 1600  # both dialects' limit per table
MAX_CHAR = 4096  # Redshift's CHAR(n) limit (bytes, single-byte characters only)
MAX_CONTRACT_BYTES = 65535  # landing.tables.contract, as stored
ACTIONS = ("append", "truncate", "upsert", "schema")
Action = Literal["append", "truncate", "upsert", "schema"]
_SIZED = re.compile(r"^(varchar|char)\((\d{1,5})\)$")
_DECIMAL = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")
_PLAIN = (
    "smallint",
    "integer",
    "bigint",
    "real",
    "double precision",
    "boolean",
    "date",
    "timestamp",
    "timestamptz",
)
_INTEGER_WIDTH = {"smallint": 2, "integer": 4, "bigint": 8}
MAX_VARCHAR = 65535  # Redshift's limit (bytes); PostgreSQL accepts it too


class ContractError(ValueError):
    """A schema file that cannot be applied; the message says which field and why."""


def canonical_type(text: str) -> str:
    """The type in the one spelling both dialects share, or ContractError."""
    kind = " ".join(text.strip().lower().split())
    if kind in _PLAIN:
        return kind
    sized = _SIZED.match(kind)
    if sized:
        limit = MAX_CHAR if sized.group(1) == "char" else MAX_VARCHAR
        if not 1 <= int(sized.group(2)) <= limit:
            raise ValueError(f"{sized.group(1)}(n) takes 1 <= n <= {limit}, not {text!r}")
        return f"{sized.group(1)}({int(sized.group(2))})"
    decimal = _DECIMAL.match(kind)
    if (
        decimal
        and 1 <= int(decimal.group(1)) <= 38
        and int(decimal.group(2)) <= int(decimal.group(1))
    ):
        return f"decimal({int(decimal.group(1))},{int(decimal.group(2))})"
    allowed = ", ".join([*_PLAIN, "decimal(p,s)", "varchar(n)", "char(n)"])
    raise ValueError(f"unknown type {text!r}; use one of: {allowed}")


def _identifier(name: str) -> str:
    if not IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not an identifier (lowercase, ^[a-z_][a-z0-9_]{{0,62}}$)")
    return name


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    nullable: bool = True

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if value in SYSTEM_COLUMNS:
            raise ValueError(f"{value!r} is a system column's name in the warehouse")
        return _identifier(value)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return canonical_type(value)


class SchemaFile(BaseModel):
    """The declared contract of one landing table."""

    model_config = ConfigDict(extra="forbid")

    table: str
    columns: list[Column] = Field(min_length=1, max_length=MAX_COLUMNS)
    primary_key: list[str] = Field(default_factory=list)
    allowed_operations: list[Action] = Field(default_factory=lambda: list(ACTIONS))

    @field_validator("table")
    @classmethod
    def _valid_table(cls, value: str) -> str:
        return _identifier(value)

    @model_validator(mode="after")
    def _consistent(self) -> SchemaFile:
        names = [c.name for c in self.columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"columns declared twice: {duplicated}")
        repeated = sorted({k for k in self.primary_key if self.primary_key.count(k) > 1})
        if repeated:
            raise ValueError(f"primary_key names a column twice: {repeated}")
        unknown = [k for k in self.primary_key if k not in names]
        if unknown:
            raise ValueError(f"primary_key names undeclared columns: {unknown}")
        nullable_keys = [c.name for c in self.columns if c.name in self.primary_key and c.nullable]
        if nullable_keys:
            raise ValueError(f"primary_key columns must be nullable: false: {nullable_keys}")
        if "upsert" in self.allowed_operations and not self.primary_key:
            raise ValueError("allowed_operations has upsert: declare a primary_key to merge on")
        return self

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def to_json(self) -> str:
        return self.model_dump_json()


def parse_schema_file(body: bytes, table_in_key: str) -> SchemaFile:
    """Validate a schema file; ContractError names the field and the reason."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ContractError(f"not JSON: {error}") from None
    except RecursionError:
        raise ContractError("not a contract: JSON nested too deep") from None
    try:
        contract = SchemaFile.model_validate(document)
    except ValidationError as error:
        raise ContractError(_first_problem(error)) from None
    size = len(contract.to_json().encode())
    if size > MAX_CONTRACT_BYTES:
        raise ContractError(
            f"the contract is {size} bytes once normalized; at most {MAX_CONTRACT_BYTES}"
            " (fewer or shorter columns)"
        )
    if contract.table != table_in_key:
        raise ContractError(
            f"field table: declares {contract.table!r} but the key's table is {table_in_key!r}"
        )
    return contract


def _first_problem(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "file"
        reason = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"field {where}: {reason}")
    return "; ".join(problems)


# ---- evolution --------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    kind: Literal["add", "widen"]
    column: Column


def plan_evolution(current: SchemaFile, wanted: SchemaFile) -> list[Change]:
    """The changes that turn `current` into `wanted`, or ContractError naming what would be lost."""
    problems: list[str] = []
    changes: list[Change] = []
    for old in current.columns:
        new = wanted.column(old.name)
        if new is None:
            problems.append(f"column {old.name} would be dropped")
        elif new.type != old.type:
            if widens(old.type, new.type):
                changes.append(Change("widen", new))
            else:
                problems.append(f"column {old.name}: {old.type} -> {new.type} narrows or converts")
        if new is not None and new.nullable != old.nullable:
            problems.append(f"column {old.name}: nullability cannot change")
    for new in wanted.columns:
        if current.column(new.name) is None:
            if not new.nullable:
                problems.append(f"new column {new.name} must be nullable (existing rows have none)")
            changes.append(Change("add", new))
    if wanted.primary_key != current.primary_key:
        before, after = current.primary_key, wanted.primary_key
        problems.append(f"primary_key cannot change ({before} -> {after})")
    if problems:
        raise ContractError("schema change refused: " + "; ".join(problems))
    return changes


def widens(old: str, new: str) -> bool:
    if old in _INTEGER_WIDTH and new in _INTEGER_WIDTH:
        return _INTEGER_WIDTH[new] > _INTEGER_WIDTH[old]
    old_sized, new_sized = _SIZED.match(old), _SIZED.match(new)
    if old_sized and new_sized and old_sized.group(1) == new_sized.group(1):
        return int(new_sized.group(2)) > int(old_sized.group(2))
    return False
