"""squawk (``squawk-cli`` on PyPI) against ``verify_migrations`` on the example project's
migrations, plus a set of hand-written risky ones.

    python bench/squawk_compare.py [--no-risky] [--keep DIR]

A copy of ``example_project/`` (and, unless ``--no-risky``, the migrations of ``RISKY`` added to
it) runs on a fresh database of a real PostgreSQL (``DATABASE_URL``, or a throwaway server).
The example project's own migrations are applied first with ``migrate`` (the risky ones are
left unapplied, as in a pull request): each migration is then judged against the tables that
exist before it, which is how squawk judges one SQL file. Then, for two backends:

- ``migtools``: the project's settings (``migtools.db.backends.postgresql``): ``sqlmigrate``
  prints the SQL ``migrate`` really runs (CONCURRENTLY, NOT VALID + VALIDATE, ...);
- ``django``: the same project on Django's own ``django.db.backends.postgresql``;

every migration's SQL comes from ``manage.py sqlmigrate APP NAME`` (one process calls the
command for every migration; its ``-- migtools:`` lines are SQL comments) and goes through
``squawk --reporter json``, and our findings come from ``manage.py verify_migrations --format
json`` with the same settings. A third view, ``cross``, sets squawk on Django's plain SQL
against our findings with the migtools backend (what someone running squawk on stock
``sqlmigrate`` output would compare).

For the rules both tools share (``SHARED``), each squawk finding we do not have gets a reason
(``REASONS``); one without a reason is a miss, listed as ``MISSED`` with its statements. Exit 0
(2 when squawk is not installed); the last line is the verdict.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# squawk rule -> the migtools rule ids that cover the same hazard. Names checked against
# squawk 2.70's output (it has no --list-rules) and its rule sources (squawk_linter/src/rules).
SHARED: dict[str, frozenset[str]] = {
    "require-concurrent-index-creation": frozenset({"index-not-concurrent"}),
    "require-concurrent-index-deletion": frozenset({"drop-index-not-concurrent"}),
    "ban-concurrent-index-creation-in-transaction": frozenset({"concurrently-in-atomic"}),
    "adding-foreign-key-constraint": frozenset({"fk-not-valid-missing"}),
    # squawk reports ADD CONSTRAINT without NOT VALID (FK, CHECK, UNIQUE, EXCLUDE, PRIMARY KEY)
    # and VALIDATE CONSTRAINT in the transaction that added the constraint NOT VALID.
    "constraint-missing-not-valid": frozenset(
        {
            "fk-not-valid-missing",
            "check-constraint-not-valid-missing",
            "unique-constraint-on-existing-table",
            "exclusion-constraint",
            "set-not-null",
        }
    ),
    "disallowed-unique-constraint": frozenset({"unique-constraint-on-existing-table"}),
    "adding-required-field": frozenset({"not-null-without-db-default"}),
    # squawk 2.x: ALTER COLUMN ... SET NOT NULL (not ADD COLUMN; that is adding-required-field)
    "adding-not-nullable-field": frozenset({"set-not-null"}),
    "changing-column-type": frozenset({"column-type-change"}),
    "renaming-column": frozenset({"rename-column"}),
    "renaming-table": frozenset({"rename-table"}),
    "ban-drop-column": frozenset({"drop-column"}),
    "ban-drop-table": frozenset({"drop-table"}),
    # squawk: a volatile default or a stored generated column rewrites the table
    "adding-field-with-default": frozenset({"volatile-default"}),
    # Django's AddField(default=...) is ADD COLUMN ... DEFAULT, then DROP DEFAULT
    "ban-drop-default": frozenset({"default-not-db-default"}),
    "identifier-too-long": frozenset({"identifier-too-long"}),
}
OURS_SHARED = frozenset().union(*SHARED.values())

# Why a squawk rule has no migtools counterpart (printed with the counts, for information).
UNSHARED_NOTES = {
    "require-lock-timeout": "migtools' backend sets lock_timeout on every statement when it "
    "applies (docs/safety.md); sqlmigrate does not print those SETs",
    "require-statement-timeout": "migtools' backend sets statement_timeout on pre-deploy "
    "migrations when it applies; sqlmigrate does not print those SETs",
    "prefer-robust-stmts": "re-runnable DDL (IF NOT EXISTS): no migtools rule",
    "prefer-text-field": "a style rule (varchar(n) vs text)",
    "prefer-bigint-over-int": "a style rule (Django's IntegerField is int)",
    "prefer-bigint-over-smallint": "a style rule",
    "prefer-identity": "a style rule",
    "prefer-timestamptz": "a style rule",
    "ban-drop-not-null": "dropping NOT NULL: no migtools rule",
    "ban-drop-constraint": "dropping a constraint: no migtools rule",
    "adding-serial-primary-key-field": "no migtools rule",
}

# The reasons a squawk finding on a shared rule may have no migtools counterpart.
REASONS = {
    "new-table": "the table is created earlier in the same migration: nothing uses it yet "
    "(squawk's VALIDATE check does not exempt new tables)",
    "lock-light": "migtools' backend runs the lock-light form: squawk does not report this "
    "on the SQL migrate really runs (the migtools view)",
    "replaced": "replaced by a squash that this database runs instead (verify_migrations "
    "judges the squash; squawk does not report this statement in the squash's SQL either)",
}

# Hand-written risky migrations added to the copy, one hazard each (and two safe ones),
# with the squawk rules and the migtools rules each should trigger (Django's SQL).
RISKY: list[tuple[str, str, str, str]] = [
    # (app, name, operations, class attributes)
    (
        "catalog",
        "0005_risky_index",
        'migrations.AddIndex("product", models.Index(fields=["name"], name="product_name_idx")),',
        "",
    ),
    (
        "catalog",
        "0006_risky_fk",
        'migrations.AddField("product", "replaced_by", models.ForeignKey("catalog.product", '
        "null=True, on_delete=django.db.models.deletion.SET_NULL)),",
        "",
    ),
    (
        "catalog",
        "0007_risky_rename_column",
        'migrations.RenameField("product", "sku", "code"),',
        "",
    ),
    (
        "catalog",
        "0008_risky_required",
        'migrations.AddField("product", "weight", models.IntegerField()),',
        "",
    ),
    (
        "catalog",
        "0009_risky_default",
        'migrations.AddField("product", "stock", models.IntegerField(null=True, default=3)),',
        "",
    ),
    (
        "catalog",
        "0010_risky_volatile",
        'migrations.AddField("product", "token", models.UUIDField(null=True, '
        "db_default=RandomUUID())),",
        "",
    ),
    (
        "catalog",
        "0011_risky_long_name",
        'migrations.AddField("product", "legacy", models.IntegerField(null=True, '
        f'db_column="{"legacy_" * 10}")),',
        "",
    ),
    ("catalog", "0012_risky_rename_table", 'migrations.RenameModel("Category", "Section"),', ""),
    (
        "customers",
        "0004_safe_nickname",
        'migrations.AddField("customer", "nickname", models.CharField(max_length=50, null=True)),',
        "",
    ),
    (
        "customers",
        "0005_risky_set_not_null",
        'migrations.AlterField("customer", "nickname", models.CharField(max_length=50)),',
        "",
    ),
    ("customers", "0006_risky_drop_column", 'migrations.RemoveField("customer", "full_name"),', ""),
    (
        "orders",
        "0004_risky_check",
        'migrations.AddConstraint("order", models.CheckConstraint('
        'condition=models.Q(id__gte=1), name="orders_order_id_gte_1")),',
        "",
    ),
    (
        "orders",
        "0005_risky_unique",
        'migrations.AddConstraint("order", models.UniqueConstraint('
        'fields=["customer", "created_at"], name="orders_order_customer_created_uniq")),',
        "",
    ),
    (
        "orders",
        "0006_risky_type",
        'migrations.AlterField("orderline", "quantity", models.BigIntegerField()),',
        "",
    ),
    (
        "orders",
        "0007_risky_drop_index",
        'migrations.RemoveIndex("order", "orders_status_created_idx"),',
        "",
    ),
    (
        "orders",
        "0008_risky_concurrently_in_atomic",
        # SafeRunSQL: AddIndexConcurrently in an atomic migration makes Django's sqlmigrate
        # (and verify_migrations) raise NotSupportedError before any SQL exists.
        'SafeRunSQL(\'CREATE INDEX CONCURRENTLY "orders_created_idx" ON "orders_order" '
        '("created_at")\', reverse_sql=\'DROP INDEX "orders_created_idx"\'),',
        "",
    ),
    (
        "orders",
        "0009_safe_concurrent_index",
        'AddIndexConcurrently("order", models.Index(fields=["status"], name="orders_status_idx")),',
        "    atomic = False\n",
    ),
    ("orders", "0010_risky_drop_table", 'migrations.DeleteModel("OrderLine"),', ""),
]

MIGRATION = """\
import django.db.models.deletion
from django.contrib.postgres.functions import RandomUUID
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from migtools import CheckedMigration
from migtools.operations import SafeRunSQL


class Migration(CheckedMigration):
    is_post_deployment = False
{attrs}
    dependencies = [{deps}]

    operations = [
        {ops}
    ]
"""

PLAIN_SETTINGS = """\
from shop.settings import *  # noqa: F403

# Django's own PostgreSQL backend (the project's settings use migtools').
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"  # noqa: F405
"""

# One process: the project's migrations (the graph as migrate sees it, replaced ones too) and
# `sqlmigrate APP NAME` for every migration file.
COLLECT = """\
import io
import json
import os
import sys

import django

django.setup()
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

apps = sys.argv[1:]
loader = MigrationLoader(connection)
raw = MigrationLoader(connection, replace_migrations=False)
out = {"nodes": sorted(n for n in loader.graph.nodes if n[0] in apps), "replaced": {},
       "migrations": []}
for key, migration in loader.replacements.items():
    if key in loader.graph.nodes:
        for old in migration.replaces:
            out["replaced"]["/".join(old)] = key[1]
for node in sorted(n for n in raw.disk_migrations if n[0] in apps):
    buf, err = io.StringIO(), io.StringIO()
    try:
        call_command("sqlmigrate", *node, stdout=buf, stderr=err)
        error = None
    except Exception as exc:  # Django's own sqlmigrate raises some (NotSupportedError)
        error = f"{type(exc).__name__}: {exc}"
    atomic = bool(raw.disk_migrations[node].atomic)
    out["migrations"].append({"app": node[0], "name": node[1], "sql": buf.getvalue(),
                              "error": error, "atomic": atomic})
json.dump(out, sys.stdout)
"""


@dataclass
class Row:
    view: str
    migration: str  # "app.name"
    rule: str  # squawk's rule, or ours for an ours-only row
    squawk: list[str]  # the statements squawk flags
    ours: list[str]  # our matching rule ids
    status: str  # "both", "ours only", "squawk only", "MISSED"
    reason: str = ""


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)
    unshared: dict[str, int] = field(default_factory=dict)  # squawk rule -> count
    errors: list[str] = field(default_factory=list)

    @property
    def missed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "MISSED"]

    def found(self, view: str, migration: str) -> dict[str, tuple[bool, bool]]:
        """squawk rule (or our rule id, for ours-only) -> (squawk found it, we found it)."""
        return {
            r.rule: (bool(r.squawk), bool(r.ours))
            for r in self.rows
            if r.view == view and r.migration == migration
        }


def squawk_binary() -> str | None:
    beside = Path(sys.executable).parent / "squawk"
    if beside.is_file():
        return str(beside)
    return shutil.which("squawk")


@contextlib.contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new database on the server of ``url`` (dropped afterwards): the comparison never
    sees another run's tables."""
    import psycopg

    name = f"squawk_cmp_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        version = conn.info.server_version  # e.g. 160004
    return f"{version // 10000}.{version % 100}"


def copy_project(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (dest / "shop" / "squawk_plain_settings.py").write_text(PLAIN_SETTINGS)
    (dest / "_squawk_collect.py").write_text(COLLECT)
    return dest


def write_risky(project: Path, risky: list[tuple[str, str, str, str]]) -> None:
    leaves: dict[str, str] = {}
    for app in {app for app, *_ in risky}:
        names = sorted(p.stem for p in (project / app / "migrations").glob("[0-9]*.py"))
        leaves[app] = names[-1]
    for app, name, ops, attrs in risky:
        deps = f"('{app}', '{leaves[app]}')"
        text = MIGRATION.format(attrs=attrs, deps=deps, ops=ops)
        (project / app / "migrations" / f"{name}.py").write_text(text)
        leaves[app] = name


def run(
    project: Path, url: str, settings: str, *args: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": settings}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def _statement_table(statement: str) -> str | None:
    """The table a DDL statement acts on (pglast: the real grammar), or None."""
    import pglast
    from pglast import ast

    try:
        (raw,) = pglast.parse_sql(statement)
    except Exception:
        return None
    node = raw.stmt
    if isinstance(node, ast.AlterTableStmt | ast.IndexStmt | ast.RenameStmt):
        relation = node.relation
        return relation.relname if relation is not None else None
    return None


def _created_tables(sql: str) -> list[tuple[int, str]]:
    """(line, table) of every CREATE TABLE in sqlmigrate's output (one statement a line)."""
    import pglast
    from pglast import ast

    out = []
    for number, line in enumerate(sql.splitlines()):
        if line.upper().startswith("CREATE TABLE"):
            with contextlib.suppress(Exception):
                (raw,) = pglast.parse_sql(line)
                if isinstance(raw.stmt, ast.CreateStmt):
                    out.append((number, raw.stmt.relation.relname))
    return out


@dataclass
class Side:
    """One backend's SQL, squawk's findings and ours, per migration ("app.name")."""

    sql: dict[str, str]
    errors: dict[str, str]
    squawk: dict[str, list[tuple[str, int, str]]]  # (rule, line, statement)
    ours: dict[str, list[str]]
    replaced: dict[str, str]  # "app.name" -> "app.squash"
    names: list[str]


def collect(
    project: Path, url: str, settings: str, apps: list[str], squawk: str, pg: str, work: Path
) -> Side:
    proc = run(project, url, settings, "_squawk_collect.py", *apps, check=True)
    data = json.loads(proc.stdout)
    replaced = {k.replace("/", "."): f"{k.split('/')[0]}.{v}" for k, v in data["replaced"].items()}
    sql: dict[str, str] = {}
    errors: dict[str, str] = {}
    work.mkdir(parents=True, exist_ok=True)
    for m in data["migrations"]:
        key = f"{m['app']}.{m['name']}"
        names_sql = m["sql"]
        if m["error"]:
            errors[key] = m["error"]
        sql[key] = names_sql
        (work / f"{key}.sql").write_text(names_sql)
    files = [f"{key}.sql" for key in sql]
    found = subprocess.run(
        [squawk, "--reporter", "json", "--pg-version", pg, *files],
        cwd=work,
        capture_output=True,
        text=True,
    )
    if found.returncode not in (0, 1, 2) or not found.stdout.strip():
        raise RuntimeError(f"squawk failed ({found.returncode}): {found.stderr[-2000:]}")
    by_file: dict[str, list[tuple[str, int, str]]] = {key: [] for key in sql}
    for v in json.loads(found.stdout):
        key = Path(v["file"]).name.removesuffix(".sql")
        lines = sql[key].splitlines()
        line = int(v["line"])  # 0-based in squawk's JSON
        statement = lines[line] if 0 <= line < len(lines) else ""
        by_file[key].append((v["rule_name"], line, statement))
    verified = run(project, url, settings, "manage.py", "verify_migrations", "--format", "json")
    if verified.returncode not in (0, 1):
        raise RuntimeError(f"verify_migrations failed: {verified.stderr[-3000:]}")
    ours: dict[str, list[str]] = {}
    for f in json.loads(verified.stdout)["findings"]:
        ours.setdefault(f"{f['app_label']}.{f['migration']}", []).append(f["rule"])
    return Side(sql, errors, by_file, ours, replaced, list(sql))


def compare(view: str, sql_side: Side, ours_side: Side, out: Comparison) -> None:
    """Rows for one view: squawk on ``sql_side``'s SQL, our findings from ``ours_side``."""
    lock_light = sql_side is not ours_side
    for key in sql_side.names:
        # A migration replaced by a squash is not a node of the graph migrate runs: our
        # findings for it are those of the squash that replaces it.
        ours_key = ours_side.replaced.get(key, key)
        ours = ours_side.ours.get(ours_key, [])
        flagged: dict[str, list[tuple[int, str]]] = {}
        for rule, line, statement in sql_side.squawk[key]:
            if rule in SHARED:
                flagged.setdefault(rule, []).append((line, statement))
            elif view != "cross":
                out.unshared[rule] = out.unshared.get(rule, 0) + 1
        created = _created_tables(sql_side.sql[key])
        covered: set[str] = set()
        for rule, hits in sorted(flagged.items()):
            matching = sorted({r for r in ours if r in SHARED[rule]})
            covered.update(matching)
            statements = [s for _, s in hits]
            if matching:
                out.rows.append(Row(view, key, rule, statements, matching, "both"))
                continue
            reasons = set()
            for line, statement in hits:
                table = _statement_table(statement)
                if table is not None and any(n < line and t == table for n, t in created):
                    reasons.add("new-table")
                elif ours_key != key and not any(
                    r == rule and s == statement for r, _, s in sql_side.squawk.get(ours_key, [])
                ):
                    reasons.add("replaced")
                elif lock_light and not any(
                    r == rule and s == statement for r, _, s in ours_side.squawk.get(key, [])
                ):
                    reasons.add("lock-light")
                else:
                    reasons.add("")
            if "" in reasons:
                out.rows.append(Row(view, key, rule, statements, [], "MISSED"))
            else:
                text = "; ".join(REASONS[r] for r in sorted(reasons))
                if ours_key != key:
                    text += f" [{key} is replaced by {ours_key}]"
                out.rows.append(Row(view, key, rule, statements, [], "squawk only", text))
        for rule in sorted({r for r in ours if r in OURS_SHARED} - covered):
            out.rows.append(Row(view, key, rule, [], [rule], "ours only"))
        if key in sql_side.errors and view != "cross":
            out.errors.append(f"{view}: {key}: sqlmigrate: {sql_side.errors[key]}")


def compare_project(
    project: Path,
    url: str,
    *,
    risky: list[tuple[str, str, str, str]] | None,
    squawk: str,
    work: Path,
) -> Comparison:
    apps = ["catalog", "customers", "orders"]
    pg = server_version(url)
    # The example project's own migrations are applied (with its settings: migtools' backend);
    # the risky ones come after, unapplied, as in a pull request.
    run(project, url, "shop.settings", "manage.py", "migrate", "-v0", check=True)
    if risky:
        write_risky(project, risky)
    sides = {
        backend: collect(project, url, settings, apps, squawk, pg, work / backend)
        for backend, settings in (
            ("migtools", "shop.settings"),
            ("django", "shop.squawk_plain_settings"),
        )
    }
    out = Comparison()
    compare("migtools", sides["migtools"], sides["migtools"], out)
    compare("django", sides["django"], sides["django"], out)
    compare("cross", sides["django"], sides["migtools"], out)
    return out


def run_comparison(
    *, risky: bool = True, keep: Path | None = None, database_url: str | None = None
) -> Comparison:
    from tests.pgserver import ensure_database_url

    squawk = squawk_binary()
    if squawk is None:
        raise FileNotFoundError('squawk not found: pip install squawk-cli (or -e ".[bench]")')
    url = database_url or ensure_database_url()
    base = keep or Path(tempfile.mkdtemp(prefix="squawk_cmp_"))
    try:
        project = copy_project(base / "project")
        with fresh_database(url) as db_url:
            return compare_project(
                project, db_url, risky=RISKY if risky else None, squawk=squawk, work=base / "sql"
            )
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


def report(result: Comparison) -> str:
    lines = []
    views = {
        "migtools": "squawk on the SQL migrate runs (migtools' backend) vs verify_migrations",
        "django": "squawk on Django's own SQL vs verify_migrations, both on Django's backend",
        "cross": "squawk on Django's own SQL vs verify_migrations on migtools' backend",
    }
    for view, title in views.items():
        rows = [r for r in result.rows if r.view == view]
        lines.append(f"\n== {view}: {title}")
        if not rows:
            lines.append("   (no finding of a shared rule on either side)")
            continue
        width = max(len(r.migration) for r in rows)
        rwidth = max(len(r.rule) for r in rows)
        lines.append(f"   {'migration':<{width}}  {'rule':<{rwidth}}  squawk  ours")
        for r in rows:
            ours = ",".join(r.ours) or "-"
            mark = f"{r.status}" + (f": {r.reason}" if r.reason else "")
            lines.append(
                f"   {r.migration:<{width}}  {r.rule:<{rwidth}}  {len(r.squawk):>6}  {ours}"
                f"  [{mark}]"
            )
            if r.status == "MISSED":
                lines.extend(f"       {s}" for s in r.squawk)
    if result.unshared:
        lines.append("\nsquawk rules with no migtools counterpart (migtools / django views):")
        for rule, count in sorted(result.unshared.items()):
            note = UNSHARED_NOTES.get(rule, "no migtools rule")
            lines.append(f"   {rule}: {count} ({note})")
    if result.errors:
        lines.append("\nsqlmigrate errors:")
        lines.extend(f"   {e}" for e in result.errors)
    return "\n".join(lines)


def verdict(result: Comparison) -> str:
    both = sum(r.status == "both" for r in result.rows)
    explained = sum(r.status == "squawk only" for r in result.rows)
    ours_only = sum(r.status == "ours only" for r in result.rows)
    if result.missed:
        missed = ", ".join(f"{r.view}:{r.migration}:{r.rule}" for r in result.missed)
        return f"VERDICT: migtools misses {len(result.missed)} squawk finding(s): {missed}"
    return (
        f"VERDICT: on the shared rules migtools misses nothing squawk finds ({both} found by "
        f"both, {explained} squawk-only with a reason, {ours_only} found by migtools only)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--no-risky", action="store_true", help="The example project only.")
    parser.add_argument("--keep", type=Path, help="Work in DIR and leave the SQL files there.")
    args = parser.parse_args(argv)
    if squawk_binary() is None:
        print('squawk is not installed: pip install -e ".[bench]" (squawk-cli)', file=sys.stderr)
        return 2
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    result = run_comparison(risky=not args.no_risky, keep=args.keep)
    print(textwrap.dedent(report(result)).strip("\n"))
    print(verdict(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
