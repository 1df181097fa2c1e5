"""A reference implementation of the landing zone's rules, in plain Python, and a seeded
generator of upload sequences for the model-based test (`defs/landing/test_model.py`).

Nothing here imports the product: the reference is what the rules say, written again from
them, so the test compares two independent readings of the same rules.

The rules:
- a schema file declares a table (the first one) or evolves it: new nullable columns, wider
  varchar, wider integer; dropping, narrowing, converting, changing the key or a column's
  nullability, or a new NOT NULL column refuses it. Once the table exists a schema file
  different from the contract in force is refused unless the CURRENT contract allows
  "schema"; one identical to it is loaded and changes nothing.
- a data file whose action is not allowed, whose header names an unknown column or a column
  twice, lacks a primary key column or (append, truncate) a required column, or holds a value
  its column's type refuses (varchar widths in UTF-8 bytes), is refused and changes nothing.
- append adds the rows (a key already in the table or twice in the file refuses the file);
  truncate makes the file's rows the table's; upsert updates the columns the header names for
  existing keys and inserts new keys with the other columns NULL. A NULL in a NOT NULL
  column after the file refuses the file.
- files of one table apply in landing order: LastModified (whole seconds), then schema files
  first, then file name, then truncate < append < upsert.
- every upload gets exactly one verdict. An upload is a version (key, ETag) and its landing:
  the same content landing again after the earlier one's verdict is a new upload (A, B, then
  A again applies A again). The harness lands such a re-upload seconds after that verdict.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import sys
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

DB = "dev"
ACTIONS = ("append", "truncate", "upsert", "schema")
ACTION_ORDER = ("schema", "truncate", "append", "upsert")
INT_RANGE = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}
_VARCHAR = re.compile(r"^varchar\((\d+)\)$")
_INT = re.compile(r"^-?\d+$")
LOADED, REJECTED = "loaded", "rejected"


def landed_second(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat(sep=" ")


# ---- contracts --------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    name: str
    type: str  # canonical: integer, bigint, smallint, varchar(n)
    nullable: bool = True


@dataclass(frozen=True)
class Contract:
    table: str
    columns: tuple[Col, ...]
    primary_key: tuple[str, ...]
    allowed_operations: tuple[str, ...]

    def column(self, name: str) -> Col | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def document(self, spelled: dict[str, str] | None = None) -> dict:
        """The schema file's JSON; `spelled`: another spelling of some columns' types."""
        spelled = spelled or {}
        return {
            "table": self.table,
            "columns": [
                {"name": c.name, "type": spelled.get(c.name, c.type), "nullable": c.nullable}
                for c in self.columns
            ],
            "primary_key": list(self.primary_key),
            "allowed_operations": list(self.allowed_operations),
        }


def canonical(kind: str) -> str:
    kind = " ".join(kind.lower().split())
    sized = _VARCHAR.match(kind)
    return f"varchar({int(sized.group(1))})" if sized else kind


def parse_contract(body: bytes) -> Contract:
    """The schema file as a Contract; ValueError when it is not a valid one (the generator
    only writes valid contracts, except for files that are not JSON)."""
    document = json.loads(body)
    columns = tuple(
        Col(c["name"], canonical(c["type"]), c.get("nullable", True)) for c in document["columns"]
    )
    return Contract(
        document["table"],
        columns,
        tuple(document.get("primary_key", [])),
        tuple(document.get("allowed_operations", ACTIONS)),
    )


def evolution_problems(current: Contract, wanted: Contract) -> list[str]:
    problems = []
    for old in current.columns:
        new = wanted.column(old.name)
        if new is None:
            problems.append(f"drops {old.name}")
            continue
        if new.type != old.type and not widens(old.type, new.type):
            problems.append(f"{old.name}: {old.type} -> {new.type}")
        if new.nullable != old.nullable:
            problems.append(f"{old.name}: nullability")
    for new in wanted.columns:
        if current.column(new.name) is None and not new.nullable:
            problems.append(f"new NOT NULL column {new.name}")
    if wanted.primary_key != current.primary_key:
        problems.append("primary key changes")
    return problems


def widens(old: str, new: str) -> bool:
    if old in INT_RANGE and new in INT_RANGE:
        return INT_RANGE[new] > INT_RANGE[old]
    a, b = _VARCHAR.match(old), _VARCHAR.match(new)
    return bool(a and b and int(b.group(1)) > int(a.group(1)))


def value_problem(col: Col, value: str | None) -> str | None:
    """Why `value` cannot be stored in `col` (NULL is judged later, on the resulting rows)."""
    if value is None:
        return None
    if col.type in INT_RANGE:
        limit = INT_RANGE[col.type]
        if not _INT.match(value) or not -limit <= int(value) < limit:
            return f"{col.name}: {value!r} is not a {col.type}"
        return None
    width = int(_VARCHAR.match(col.type).group(1))
    if len(value.encode()) > width:
        return f"{col.name}: {value!r} is {len(value.encode())} bytes > {width}"
    return None


def typed(col: Col, value: str | None):
    if value is None:
        return None
    return int(value) if col.type in INT_RANGE else value


# ---- uploads ----------------------------------------------------------------------------


@dataclass
class Upload:
    """One put_object: where, what, and (read back from S3 after the upload) its version."""

    table: str
    action: str
    file_name: str
    body: bytes
    tick: int
    note: str = ""  # what the generator meant (for a human reading a failure)
    header: list[str] | None = None  # data files: the header and the rows, as written
    rows: list[list[str | None]] | None = None
    etag: str = ""
    last_modified: datetime | None = None

    @property
    def key(self) -> str:
        return f"landing/{DB}/{self.action}/{self.table}/{self.file_name}"

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body).hexdigest()

    @property
    def version(self) -> tuple[str, str, str]:
        """The upload's identity: its version and the second it landed (as the ledger keeps
        LastModified: naive UTC)."""
        return (self.key, self.etag or self.md5, landed_second(self.last_modified))

    def describe(self) -> str:
        when = self.last_modified.isoformat() if self.last_modified else "?"
        text = self.body.decode("utf-8", "replace")
        return (
            f"tick {self.tick} {when} {self.key} etag={self.etag} [{self.note}]\n    "
            + text.replace("\n", "\n    ").rstrip()
        )


def csv_body(header: list[str], rows: list[list[str | None]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue().encode()


def landing_sort_key(upload: Upload) -> tuple:
    at = upload.last_modified.replace(microsecond=0, tzinfo=None)
    return (
        at,
        upload.action != "schema",
        upload.file_name,
        ACTION_ORDER.index(upload.action),
        upload.key,
    )


# ---- the reference ----------------------------------------------------------------------


@dataclass
class TableModel:
    contract: Contract | None = None
    rows: dict[tuple, dict] = field(default_factory=dict)  # key -> column -> value

    def sorted_rows(self) -> list[tuple]:
        names = self.contract.names if self.contract else []
        return sorted(
            (tuple(row.get(n) for n in names) for row in self.rows.values()), key=_sortable
        )


def _sortable(row: tuple) -> tuple:
    return tuple((v is None, type(v).__name__, v if v is not None else 0) for v in row)


class Refusal(Exception):
    pass


@dataclass
class Reference:
    """The landing zone as the rules say. `apply` takes every upload (any table, any order)
    and applies each table's in landing order."""

    tables: dict[str, TableModel] = field(default_factory=dict)
    verdicts: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    applied: list[Upload] = field(default_factory=list)  # in the order applied

    def apply(self, uploads: list[Upload]) -> Reference:
        for upload in sorted(uploads, key=lambda u: (u.table, *landing_sort_key(u))):
            self.apply_one(upload)
        return self

    def apply_one(self, upload: Upload) -> None:
        model = self.tables.setdefault(upload.table, TableModel())
        self.applied.append(upload)
        try:
            if upload.action == "schema":
                detail = self._schema(model, upload)
            else:
                detail = self._data(model, upload)
        except Refusal as refusal:
            self.verdicts[upload.version] = (REJECTED, str(refusal))
        else:
            self.verdicts[upload.version] = (LOADED, detail)

    def _schema(self, model: TableModel, upload: Upload) -> str:
        try:
            wanted = parse_contract(upload.body)
        except (ValueError, KeyError, TypeError) as error:
            raise Refusal(f"not a contract: {error}") from None
        current = model.contract
        if current is None:
            model.contract = wanted
            return "created"
        if wanted == current:
            return "identical"
        if "schema" not in current.allowed_operations:
            raise Refusal("schema not allowed")
        problems = evolution_problems(current, wanted)
        if problems:
            raise Refusal("; ".join(problems))
        model.contract = wanted
        return "evolved"

    def _data(self, model: TableModel, upload: Upload) -> str:
        contract = model.contract
        if contract is None:
            raise Refusal("table not declared")
        if upload.action not in contract.allowed_operations:
            raise Refusal(f"{upload.action} not allowed")
        header, rows = upload.header, upload.rows
        unknown = [n for n in header if contract.column(n) is None]
        if unknown:
            raise Refusal(f"unknown columns {unknown}")
        if len(set(header)) != len(header):
            raise Refusal("a column named twice")
        if any(k not in header for k in contract.primary_key):
            raise Refusal("key column absent")
        required = [c.name for c in contract.columns if not c.nullable]
        if upload.action != "upsert" and any(n not in header for n in required):
            raise Refusal("required column absent")
        records = []
        for line, row in enumerate(rows, start=2):
            record = {}
            for name, value in zip(header, row, strict=True):
                problem = value_problem(contract.column(name), value)
                if problem:
                    raise Refusal(f"line {line}: {problem}")
                record[name] = typed(contract.column(name), value)
            records.append(record)
        keys = [tuple(r[k] for k in contract.primary_key) for r in records]
        if any(None in k for k in keys):
            raise Refusal("a NULL key")
        if len(set(keys)) != len(keys):
            raise Refusal("a key twice in the file")
        blank = dict.fromkeys(contract.names)
        if upload.action == "truncate":
            result = {k: {**blank, **r} for k, r in zip(keys, records, strict=True)}
        elif upload.action == "append":
            if any(k in model.rows for k in keys):
                raise Refusal("a key already in the table")
            result = {
                **model.rows,
                **{k: {**blank, **r} for k, r in zip(keys, records, strict=True)},
            }
        else:
            result = dict(model.rows)
            for k, r in zip(keys, records, strict=True):
                result[k] = {**result.get(k, blank), **r}
        for row in result.values():
            nulls = [n for n in required if row.get(n) is None]
            if nulls:
                raise Refusal(f"NULL in required {nulls}")
        model.rows = result
        return f"{len(records)} rows"


# ---- the generator ----------------------------------------------------------------------

NEXT_SECOND = "next second"  # a marker in a tick's uploads: wait for the clock's next second
ALPHABET = 'abcdefxyzé€ß,"'  # 'é' and 'ß' are 2 bytes, '€' 3; a comma and a quote need quoting
EXTRA_COLUMNS = ("extra", "qty", "memo", "flag")


def text_of_bytes(rng: random.Random, budget: int, over: bool) -> str:
    """A string of at most `budget` UTF-8 bytes (at least 1 character, often exactly `budget`
    bytes), or, `over`, of more: mostly no more characters than `budget` (too long in bytes
    only, as 'é' counts 2)."""
    if over and rng.random() < 0.7:
        wide = "é" * (budget // 2 + 1)  # budget + 1 or + 2 bytes, fewer characters than budget
        return wide if len(wide) <= budget else "é" * budget
    if not over and rng.random() < 0.3:
        return "é" * (budget // 2) + "a" * (budget % 2) or "a"  # exactly `budget` bytes
    out = ""
    target = budget + rng.randint(1, 3) if over else rng.randint(1, max(1, budget))
    while len(out.encode()) < target:
        char = rng.choice(ALPHABET)
        if not over and len((out + char).encode()) > budget:
            break
        out += char
    return out or "a"


@dataclass
class TableGen:
    """What one table's sequence believes (its contract and keys, in generation order): it
    steers the choices towards collisions; the reference decides the verdicts."""

    rng: random.Random
    table: str
    tick_of: callable = None
    belief: Reference = field(default_factory=Reference)
    keys_used: list[int] = field(default_factory=list)
    next_key: int = 1
    counter: int = 0
    names: list[str] = field(default_factory=list)
    data_uploads: list[Upload] = field(default_factory=list)

    @property
    def contract(self) -> Contract | None:
        model = self.belief.tables.get(self.table)
        return model.contract if model else None

    def _name(self, suffix: str) -> str:
        self.counter += 1
        return f"{self.rng.randrange(100):02d}_{self.counter}.{suffix}"

    def _believe(self, upload: Upload) -> Upload:
        self.belief.apply_one(upload)
        return upload

    def declare(self) -> Upload:
        rng = self.rng
        columns = [
            Col("id", "integer", False),
            Col("note", "varchar(8)", True),
            Col("name", "varchar(10)", False),
        ]
        if rng.random() < 0.5:
            columns.append(Col("amount", "bigint", True))
        rng.shuffle(columns)
        ops = ACTIONS
        if rng.random() < 0.25:
            ops = tuple(a for a in ACTIONS if a == "append" or rng.random() < 0.5)
        contract = Contract(self.table, tuple(columns), ("id",), ops)
        body = json.dumps(contract.document()).encode()
        return self._believe(Upload(self.table, "schema", self._name("json"), body, 0, "declare"))

    def evolve(self) -> Upload:
        rng, current = self.rng, self.contract
        columns = list(current.columns)
        key, ops, spelled = current.primary_key, current.allowed_operations, {}
        kind = rng.choice(
            [
                "add",
                "add",
                "widen",
                "widen",
                "same",
                "ops",
                "drop",
                "narrow",
                "key",
                "null",
                "add_not_null",
                "not_json",
            ]
        )
        if kind == "add":
            fresh = [n for n in EXTRA_COLUMNS if current.column(n) is None]
            if fresh:
                kind_of = rng.choice(["integer", "bigint", f"varchar({rng.randint(2, 12)})"])
                columns.insert(rng.randint(0, len(columns)), Col(rng.choice(fresh), kind_of))
        elif kind == "widen":
            widenable = [c for c in columns if c.type in ("integer", "smallint") or "var" in c.type]
            target = rng.choice(widenable)
            if target.type in INT_RANGE:
                wider = "bigint"
            else:
                wider = f"varchar({int(_VARCHAR.match(target.type).group(1)) + rng.randint(1, 6)})"
            columns[columns.index(target)] = Col(target.name, wider, target.nullable)
        elif kind == "same":
            spelled = {c.name: c.type.upper() for c in columns if rng.random() < 0.5}
        elif kind == "ops":
            ops = tuple(a for a in ACTIONS if a == "upsert" or rng.random() < 0.6)
        elif kind == "drop":
            columns.remove(rng.choice([c for c in columns if c.name not in key]))
        elif kind == "narrow":
            target = rng.choice([c for c in columns if c.type != "smallint"])
            sized = _VARCHAR.match(target.type)
            narrower = {"bigint": "integer", "integer": "smallint"}.get(target.type)
            if sized:
                narrower = f"varchar({int(sized.group(1)) - 1})"
            columns[columns.index(target)] = Col(target.name, narrower, target.nullable)
        elif kind == "key":
            key = ("id", "name")
        elif kind == "null":
            target = rng.choice([c for c in columns if c.name not in key])
            columns[columns.index(target)] = Col(target.name, target.type, not target.nullable)
        elif kind == "add_not_null":
            fresh = [n for n in EXTRA_COLUMNS if current.column(n) is None] or ["late"]
            columns.append(Col(fresh[0], "integer", False))
        if kind == "not_json":
            body = b'{"table": "' + self.table.encode() + b'", "columns": ['
        else:
            wanted = Contract(self.table, tuple(columns), key, ops)
            body = json.dumps(wanted.document(spelled)).encode()
        return self._believe(Upload(self.table, "schema", self._name("json"), body, 0, kind))

    def _key(self, taken: set[str], existing: float) -> str:
        """A key not in `taken` (the file's): with probability `existing` one of the rows the
        table holds (as believed), sometimes one used before, else a new one."""
        model = self.belief.tables[self.table]
        present = [str(k) for (k,) in model.rows if str(k) not in taken]
        before = [k for k in map(str, self.keys_used) if k not in taken]
        roll = self.rng.random()
        if present and roll < existing:
            return self.rng.choice(present)
        if before and roll < existing + 0.1:
            return self.rng.choice(before)
        self.next_key += self.rng.randint(1, 2)
        key = self.next_key
        if self.contract.column("id").type == "bigint" and self.rng.random() < 0.4:
            key += 2**31  # fits once the key is widened to a bigint
        self.keys_used.append(key)
        return str(key)

    def _value(self, col: Col) -> str | None:
        rng = self.rng
        if col.nullable and rng.random() < 0.15:
            return None
        if col.type in INT_RANGE:
            return str(rng.randint(-1000, 10**6))
        return text_of_bytes(rng, int(_VARCHAR.match(col.type).group(1)), over=False)

    def _bad(self, col: Col) -> tuple[str | None, str]:
        """A value `col` may refuse (or, for a key too big for an integer, accept once the
        key is a bigint), and what it is."""
        rng = self.rng
        if col.type in INT_RANGE:
            return rng.choice(
                [
                    ("abc", "not a number"),
                    ("2.5", "not an integer"),
                    (str(INT_RANGE[col.type] + rng.randint(0, 5)), "one past the type"),
                    (None, "NULL"),
                ]
            )
        width = int(_VARCHAR.match(col.type).group(1))
        if rng.random() < 0.2:
            return None, "NULL"
        return text_of_bytes(rng, width, over=True), "too long in bytes"

    def data(self) -> Upload:
        rng, contract = self.rng, self.contract
        action = rng.choices(["append", "truncate", "upsert"], weights=[4, 2, 4])[0]
        notes = []
        key_cols = list(contract.primary_key)
        others = [c.name for c in contract.columns if c.name not in key_cols]
        if action == "upsert":
            header = key_cols + [n for n in others if rng.random() < 0.5]
            if len(header) < len(contract.columns):
                notes.append("partial")
        else:
            header = key_cols + [
                n for n in others if not contract.column(n).nullable or rng.random() < 0.75
            ]
        if rng.random() < 0.04:
            header.append("bogus")
            notes.append("unknown column")
        if rng.random() < 0.03:
            header.append(rng.choice(header))
            notes.append("column twice")
        if len(header) > 1 and rng.random() < 0.03:
            header.remove("id")
            notes.append("no key column")
        required = [n for n in header if n in others and not contract.column(n).nullable]
        if action != "upsert" and required and rng.random() < 0.04:
            header.remove(rng.choice(required))
            notes.append("required column absent")
        rng.shuffle(header)
        columns = [contract.column(n) or Col(n, "integer") for n in header]
        count = rng.choice([1, 2, 2, 3, 3, 4, 5]) if rng.random() > 0.06 else 0
        # a partial upsert lacking a required column mostly updates existing keys
        partial = any(not c.nullable and c.name not in header for c in contract.columns)
        existing = 0.85 if partial else {"append": 0.07}.get(action, 0.4)
        taken: set[str] = set()
        rows = []
        for _ in range(count):
            row = [
                self._key(taken, existing) if c.name == "id" else self._value(c) for c in columns
            ]
            taken.update(v for c, v in zip(columns, row, strict=True) if c.name == "id")
            rows.append(row)
        if rows and rng.random() < 0.1:
            at = rng.randrange(len(header))
            rows[rng.randrange(len(rows))][at], what = self._bad(columns[at])
            notes.append(f"{header[at]}: {what}")
        if "id" in header and len(rows) >= 2 and rng.random() < 0.08:
            at = header.index("id")
            rows[-1][at] = rows[0][at]
            notes.append("key twice")
        name = self._name("csv")
        if self.data_uploads and rng.random() < 0.15:
            earlier = rng.choice(self.data_uploads)
            if rng.random() < 0.4:  # the very same version again
                upload = Upload(
                    self.table,
                    earlier.action,
                    earlier.file_name,
                    earlier.body,
                    0,
                    "identical re-upload",
                    earlier.header,
                    earlier.rows,
                )
                return self._believe(upload)
            action, name = earlier.action, earlier.file_name  # a new version of that key
            notes.append("new version of its key")
        elif self.names and rng.random() < 0.25:
            name = self.names[-1]  # the same file name under another action, maybe one second
            notes.append("same name as the previous")
        self.names.append(name)
        body = csv_body(header, rows)
        note = ", ".join([action, *notes])
        upload = Upload(self.table, action, name, body, 0, note, header, rows)
        self.data_uploads.append(upload)
        return self._believe(upload)


def generate(seed: int) -> list[list[Upload | str]]:
    """The ticks of one sequence: each a list of uploads (and NEXT_SECOND markers), uploaded in
    that order before the tick."""
    rng = random.Random(seed)
    tables = ["items"] + (["parts"] if rng.random() < 0.4 else [])
    streams: dict[str, list[Upload]] = {}
    for table in tables:
        gen = TableGen(rng, table)
        items = [gen.declare()]
        for _ in range(rng.randint(5, 15) if table == "items" else rng.randint(2, 6)):
            if rng.random() < 0.2:
                items.append(gen.evolve())
            items.append(gen.data())
        streams[table] = items
    ticks: list[list[Upload | str]] = []
    while any(streams.values()):
        size = rng.choice([1, 2, 3, 3, 4, 5])
        group: list[Upload] = []
        while len(group) < size and any(streams.values()):
            table = rng.choice([t for t in tables if streams[t]])
            candidate = streams[table][0]
            if any(u.key == candidate.key for u in group):
                break  # one version per key in a tick (an overwrite would hide the first)
            group.append(streams[table].pop(0))
        if rng.random() < 0.5:
            rng.shuffle(group)  # upload order is not landing order
        tick: list[Upload | str] = []
        for upload in group:
            if tick and rng.random() < 0.2:
                tick.append(NEXT_SECOND)
            upload.tick = len(ticks)
            tick.append(upload)
        ticks.append(tick)
    return ticks


# ---- mutants: wrong readings of the rules the default seeds must tell apart -------------

# (what the mistake is, the text of the reference it replaces, the replacement)
MUTANTS = {
    "upsert replaces the whole row": (
        "result[k] = {**result.get(k, blank), **r}",
        "result[k] = {**blank, **r}",
    ),
    "append overwrites existing keys": ("if any(k in model.rows for k in keys):", "if False:"),
    "truncate merges like upsert": ('if upload.action == "truncate":', "if False:"),
    "widths in characters, not bytes": (
        "if len(value.encode()) > width:",
        "if len(value) > width:",
    ),
    "schema files not first in their second": ('upload.action != "schema",', "False,"),
    "upsert < append < truncate for one name": (
        "ACTION_ORDER.index(upload.action),",
        "-ACTION_ORDER.index(upload.action),",
    ),
    "a second's files by key, not by name": (
        "        upload.file_name,\n",
        "        upload.key,\n",
    ),
    "schema files allowed whatever the contract says": (
        'if "schema" not in current.allowed_operations:',
        "if False:",
    ),
    "an identical schema file is no exception": (
        'if wanted == current:\n            return "identical"',
        'if False:\n            return "identical"',
    ),
    "a key twice in a file: the last row wins": ("if len(set(keys)) != len(keys):", "if False:"),
    "integers never widen": ("return INT_RANGE[new] > INT_RANGE[old]", "return False"),
    "varchars never widen": (
        "return bool(a and b and int(b.group(1)) > int(a.group(1)))",
        "return False",
    ),
    "an upsert's new keys need no required column": (
        "for row in result.values():",
        'for row in (result.values() if upload.action != "upsert" else []):',
    ),
    "allowed_operations ignored for data files": (
        "if upload.action not in contract.allowed_operations:",
        "if False:",
    ),
    "new nullable columns refused": (
        "if current.column(new.name) is None and not new.nullable:",
        "if current.column(new.name) is None:",
    ),
    "LastModified ignored (name order only)": ("    return (\n        at,\n", "    return (\n"),
    "integer is 32 bits unsigned": ('"integer": 2**31', '"integer": 2**32'),
}


def mutant(name: str) -> type[Reference]:
    """The Reference class of this module with one mistake made (a module of its own)."""
    old, new = MUTANTS[name]
    source = Path(__file__).read_text(encoding="utf-8")
    assert source.count(old) >= 1, f"mutant {name!r}: {old!r} is no longer in the reference"
    module = types.ModuleType(f"{__name__}_mutant_{list(MUTANTS).index(name)}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source.replace(old, new, 1), module.__name__, "exec"), module.__dict__)
    return module.Reference


def with_simulated_times(ticks: list[list[Upload | str]]) -> list[Upload]:
    """The uploads as if each tick landed in one second (NEXT_SECOND: the next), two seconds
    apart: the pure-Python stand-in for the LastModified values S3 gives."""
    uploads, second = [], 0
    for tick in ticks:
        for item in tick:
            if item == NEXT_SECOND:
                second += 1
                continue
            item.last_modified = datetime(2026, 1, 1) + timedelta(seconds=second)
            uploads.append(item)
        second += 2
    return uploads


def outcome(reference: Reference) -> tuple[dict, dict]:
    statuses = {version: status for version, (status, _) in reference.verdicts.items()}
    return statuses, {table: model.sorted_rows() for table, model in reference.tables.items()}
