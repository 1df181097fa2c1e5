"""Rules every statement sent to Redshift must follow, checked on the recorded statements.

A parse alone proves little (sqlglot's Redshift dialect also accepts PostgreSQL-only syntax),
so each statement is parsed AND held to rules taken from the AWS Redshift Database Developer
Guide:
- unsupported PostgreSQL features and functions (advisory locks, ON CONFLICT, indexes, CHECK
  constraints, system columns, VALUES as a table, ...):
  https://docs.aws.amazon.com/redshift/latest/dg/c_unsupported-postgresql-features.html and
  https://docs.aws.amazon.com/redshift/latest/dg/c_unsupported-postgresql-functions.html;
- STL/STV/SVL tables are empty or absent on Redshift Serverless: SYS views only
  (https://docs.aws.amazon.com/redshift/latest/dg/serverless_views-monitoring.html);
- TRUNCATE commits on its own, VACUUM, CREATE DATABASE and ALTER COLUMN ... TYPE cannot run in
  a transaction block (https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNCATE.html,
  r_VACUUM_command.html, r_CREATE_DATABASE.html, r_ALTER_TABLE.html);
- no LOCK but the ledger's, no DROP but of a load's shadow, no comment before a statement;
- a manifest names each object once;
- a late-binding view (WITH NO SCHEMA BINDING) must qualify every table with its schema
  (https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_VIEW.html);
- DISTKEY only with DISTSTYLE KEY (https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html);
- COPY: the one shape the loader uses, with its clauses in order
  (https://docs.aws.amazon.com/redshift/latest/dg/r_COPY.html).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlglot
from sqlglot import exp

from etl_assets_tests.loading.recording import Sent

UNSUPPORTED = {
    r"\bpg_advisory_\w+": "advisory locks",
    r"\bto_regclass\b|::\s*reg(class|type|proc)\b": "OID alias types",
    r"\bon\s+conflict\b": "INSERT ... ON CONFLICT",
    r"\bjsonb\b|::\s*json\b": "the json/jsonb types",
    r"\b(xmin|xmax|cmin|cmax|ctid|tableoid)\b": "PostgreSQL system columns",
    r"\bpg_current_xact_id\b|\btxid_current\b": "transaction ID functions",
    r"\bgenerate_series\b": "generate_series (leader node only)",
    r"\bcreate\s+(unique\s+)?index\b": "indexes",
    r"\breturning\b": "RETURNING",
    r"\bcheck\s*\(": "CHECK constraints",
    r"\b(small|big)?serial\b|\bgenerated\s+(always|by\s+default)\b": "sequences",
    r"\barray\s*\[": "array constructors",
    r"\(\s*values\b": "VALUES lists used as constant tables",
    r"\bdistinct\s+on\b": "DISTINCT ON",
    r"\bfilter\s*\(\s*where\b": "aggregate FILTER",
    r"\blateral\b": "LATERAL",
    r"\bsavepoint\b": "SAVEPOINT",
    r"::\s*text\b": "::text (TEXT is VARCHAR(256) on Redshift: values are cut)",
    r"\b(stl|stv|svl|svcs)_\w+": "STL/STV/SVL/SVCS views (empty on Serverless; use SYS views)",
    # pg_last_copy_id() and pg_last_query_id() return STL query ids; a SYS view's query_id is
    # another identifier (https://docs.aws.amazon.com/redshift/latest/dg/r_STL_QUERY.html)
    r"\bsys_\w+\b.*\bpg_last_(copy|query)_id\s*\(|\bpg_last_(copy|query)_id\s*\(.*\bsys_\w+": (
        "a SYS view's query_id compared with pg_last_copy_id()/pg_last_query_id() (STL ids)"
    ),
}
NOT_IN_TRANSACTION = re.compile(
    r"^\s*(truncate\b|vacuum\b|create\s+database\b"
    r"|alter\s+table\s+\S+\s+alter\s+column\s+\S+\s+type\b)",
    re.I,
)
# a LOCK takes ACCESS EXCLUSIVE (readers wait for the whole transaction) and a DROP breaks
# readers and users' views: only the ledger is locked, only a load's shadow is dropped
# (https://docs.aws.amazon.com/redshift/latest/dg/r_LOCK.html)
LOCKABLE = {'"etl_audit"."file_ledger"'}
_LOCK = re.compile(r"^\s*lock\s+(?:table\s+)?(.+?)\s*$", re.I)
_DROP_TABLE = re.compile(r"^\s*drop\s+table\s+(?:if\s+exists\s+)?(.+?)(?:\s+cascade)?\s*$", re.I)
_SHADOW = re.compile(r'^"etl-shadow-[0-9a-f]+"$')
_LEADING_COMMENT = re.compile(r"^\s*(--|/\*)")
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
COPY_SHAPE = re.compile(
    r'COPY "[\w-]+"(\."\w+")?( \("\w+"(, "\w+")*\))? FROM \'s3://[^\']+\.manifest\''
    r" IAM_ROLE ('arn:aws[a-z-]*:iam::\d{12}:role/[^']+'|default)"
    r" FORMAT AS (JSON '(auto|auto ignorecase|s3://[^']+)'"
    r"|CSV( IGNOREHEADER 1)? EMPTYASNULL BLANKSASNULL)"
    # data conversion parameters COPY accepts with these formats
    # (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-conversion.html)
    r"( ACCEPTINVCHARS( AS)?( '[^']')?| TRUNCATECOLUMNS| TRIMBLANKS)*"
    r" REGION '[a-z0-9-]+' MANIFEST COMPUPDATE OFF STATUPDATE OFF"
)
# what sqlglot does not model and keeps as a plain command
COMMANDS = re.compile(r"^\s*(lock|vacuum)\b", re.I)
_STRING = re.compile(r"'(?:[^']|'')*'")


def violations(sent: Iterable[Sent]) -> list[str]:
    found = []
    for statement in sent:
        found += [f"{problem}: {statement.text[:160]}" for problem in check(statement)]
    return found


def check(statement: Sent) -> list[str]:
    text = statement.text
    if text in ("COMMIT", "ROLLBACK") or text.startswith("AUTOCOMMIT"):
        return []
    if _LEADING_COMMENT.match(text):
        # what a statement is, is read from its first word (here and by Redshift's checks of
        # what may run in a transaction block): nothing goes before it
        return ["a comment before the statement"]
    text = " ".join(_COMMENTS.sub(" ", text).split())
    problems = _parse(text)
    code = _STRING.sub("''", text)  # rules read the SQL, not the values it carries
    problems += [
        f"unsupported: {what}" for rule, what in UNSUPPORTED.items() if re.search(rule, code, re.I)
    ]
    if not statement.autocommit and NOT_IN_TRANSACTION.match(code):
        problems.append("cannot run inside a transaction block")
    lock = _LOCK.match(code)
    if lock and not all(t.strip() in LOCKABLE for t in lock.group(1).split(",")):
        problems.append("LOCK of a table readers read (ACCESS EXCLUSIVE blocks them)")
    drop = _DROP_TABLE.match(code)
    if drop and not all(_SHADOW.match(t.strip()) for t in drop.group(1).split(",")):
        problems.append("DROP of a user table (breaks its readers and views; grants are lost)")
    if text.upper().startswith("COPY ") and not COPY_SHAPE.fullmatch(text):
        problems.append("COPY clauses not in the expected form")
    if re.match(r"^\s*create\s+(or\s+replace\s+)?view\b", code, re.I):
        problems += _view_problems(text)
    distkey = re.search(r"^\s*create\s+table\b.*\bdistkey\b", code, re.I | re.S)
    if distkey and not re.search(r"\bdiststyle\s+key\b", code, re.I):
        problems.append("DISTKEY without DISTSTYLE KEY")
    return problems


def manifest_problems(manifest: dict) -> list[str]:
    """A COPY manifest names each object once: one URL twice loads its rows twice (and means
    another listed file was never staged). Entries are `{"url": "s3://...", "mandatory": ...}`
    (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html)."""
    urls = [entry["url"] for entry in manifest.get("entries", [])]
    twice = sorted({url for url in urls if urls.count(url) > 1})
    problems = [f"manifest names {url} more than once" for url in twice]
    problems += [
        f"manifest entry is not an s3:// URL: {u}" for u in urls if not u.startswith("s3://")
    ]
    return problems


def _parse(text: str) -> list[str]:
    try:
        tree = sqlglot.parse_one(text, read="redshift")
    except sqlglot.errors.ParseError as error:
        return [f"does not parse as Redshift SQL ({str(error).splitlines()[0]})"]
    if isinstance(tree, exp.Command) and not COMMANDS.match(text):
        return ["not understood as Redshift SQL (parsed only as a raw command)"]
    return []


def _view_problems(text: str) -> list[str]:
    if not re.search(r"with\s+no\s+schema\s+binding\s*$", text, re.I):
        return ["a view without WITH NO SCHEMA BINDING breaks its tables' DDL"]
    tree = sqlglot.parse_one(text, read="redshift")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    unqualified = sorted(
        {t.name for t in tree.find_all(exp.Table) if not t.db and t.name not in ctes}
    )
    return [f"late-binding view reads unqualified {unqualified}"] if unqualified else []
