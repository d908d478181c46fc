#!/usr/bin/env python
"""`make demo`: the migtools local-development workflow, step by step, on real parts.

It starts a throwaway PostgreSQL server (unless DATABASE_URL points at one), copies
example_project/ into a temp git repository, adds an app written before migtools (plain
migrations, raw SQL) and adopts that history in one command (`migrations_lockfile --adopt`,
after `migrate` refused it with the hint), and then does what a developer does: change a
model, write the migration with `makemigrations -n`, look at the lockfile diff, apply it, and
run the checks CI runs. Every command is printed before it runs, with its output.

Then the team workflow: two branches add migrations to one app, the lockfile conflicts in git
and `update_migration` resolves it; a field removed in two phases (SafeRemoveField); a
post-deployment index deferred by `migrate --pre-deploy`; a plan of two migrations refused as a
whole (the safe first one is not applied either) with every finding and its recipe;
`verify_migrations`; the project's TestMigrations test of its data migration; and the squash
lifecycle: `squashmigrations`, the migration test still passing, `verify_squashes` offline and
on the database, `prune_squashed --dry-run`, then `prune_squashed`. Last, several databases:
a billing app in a `control` silo with a router (a second database on the same server),
`migrate --database` per alias applying only what the router sends there, a migration unsafe
only on default refused only there, and `verify_migrations` naming each finding's database,
online and offline.

Each step is a function registered with @step, run in the order defined; each checks its own
result.

    python example_project/demo.py [--keep]

Exits non-zero, naming the step, as soon as a step fails.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent

# Machines may have no git identity; the demo never relies on the user's git config.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "migtools demo",
    "GIT_AUTHOR_EMAIL": "demo@migtools.invalid",
    "GIT_COMMITTER_NAME": "migtools demo",
    "GIT_COMMITTER_EMAIL": "demo@migtools.invalid",
    # Nor on its config (commit signing, hooks, templates): the demo repository is plain git.
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}

NEW_FIELD = "gift_wrap"
NEW_FIELD_LINE = f"    {NEW_FIELD} = models.BooleanField(db_default=False)\n"
MIGRATION_NAME = "order_gift_wrap"

# update_migration: main and the branch edit customers/models.py far enough apart for git to
# merge the models cleanly; only the lockfile conflicts.
CUSTOMER_FIRST_FIELD = "    email = models.EmailField(unique=True)\n"
CUSTOMER_LAST_FIELD = "    created_at = models.DateTimeField(auto_now_add=True)\n"
NEWSLETTER_LINE = "    newsletter = models.BooleanField(db_default=False)\n"
PHONE_LINE = "    phone = models.CharField(max_length=32, null=True, blank=True)\n"

PRODUCT_META = "    class Meta:\n        constraints = (\n"
PRODUCT_INDEX_NAME = "catalog_product_name_idx"
PRODUCT_META_WITH_INDEX = f"""\
    class Meta:
        # Customers search products by name.
        indexes = (models.Index(fields=["name"], name="{PRODUCT_INDEX_NAME}"),)
        constraints = (
"""

RISKY_OPERATIONS = """\
    operations = [
        migrations.RunSQL(
            "CREATE INDEX orders_order_created_idx ON orders_order (created_at)",
            reverse_sql="DROP INDEX orders_order_created_idx",
        ),
        migrations.RunSQL(
            "ALTER TABLE orders_order ALTER COLUMN status SET NOT NULL",
            reverse_sql="ALTER TABLE orders_order ALTER COLUMN status DROP NOT NULL",
        ),
    ]"""

# The first migration of the refused plan: a new table, safe on its own.
COUPON_MODEL = """

class Coupon(models.Model):
    code = models.CharField(max_length=32, unique=True)
"""


# Adoption: an app whose history was written before migtools came into the project (plain
# Migrations, raw SQL), added to the demo's copy only.
LEGACY_APP = "suppliers"
LEGACY_FILES = {
    "suppliers/__init__.py": "",
    "suppliers/migrations/__init__.py": "",
    "suppliers/models.py": """\
from django.db import models


class Supplier(models.Model):
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2)
""",
    "suppliers/migrations/0001_initial.py": """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Supplier",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
            ],
        ),
    ]
""",
    "suppliers/migrations/0002_supplier_country.py": """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("suppliers", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="supplier",
            name="country",
            field=models.CharField(max_length=2, default="FR"),
            preserve_default=False,
        ),
        migrations.RunSQL(
            "CREATE INDEX suppliers_supplier_country_idx ON suppliers_supplier (country)",
            reverse_sql="DROP INDEX suppliers_supplier_country_idx",
        ),
    ]
""",
}
LEGACY_INDEX_NAME = "suppliers_supplier_country_idx"


class StepFailed(Exception):
    """A step did not do what the workflow promises."""


@dataclass
class Demo:
    """State shared by the steps."""

    tmp: Path
    project: Path = field(init=False)
    env: dict[str, str] = field(default_factory=dict)
    database_url: str = ""
    new_migration: Path | None = None
    initial_commit: str = ""
    feature_migration: Path | None = None
    post_deploy_migration: Path | None = None

    def __post_init__(self) -> None:
        self.project = self.tmp / "shop"

    def run(
        self, *cmd: str, expect: int | str = 0, why: str = "", quiet: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the project copy, print it and its output, check its exit code.

        ``expect`` is an exit code, or "nonzero" for a refusal whose exact code is not the point.
        """
        shown = shlex.join(["python" if cmd[0] == sys.executable else cmd[0], *cmd[1:]])
        print(f"\n  $ {shown}")
        proc = subprocess.run(
            cmd, cwd=self.project, env=self.env, capture_output=True, text=True, check=False
        )
        output = (proc.stdout + proc.stderr).rstrip()
        if output and not quiet:
            print(indent(output))
        ok = proc.returncode != 0 if expect == "nonzero" else proc.returncode == expect
        if not ok:
            if output and quiet:
                print(indent(output))
            raise StepFailed(f"`{shown}` exited {proc.returncode}, expected {expect}")
        if proc.returncode != 0:
            print(f"    (exit {proc.returncode}, as expected{': ' + why if why else ''})")
        return proc

    def manage(
        self, *args: str, expect: int | str = 0, why: str = "", quiet: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "manage.py", *args, expect=expect, why=why, quiet=quiet)

    def git(self, *args: str, quiet: bool = False) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args, quiet=quiet)


@dataclass(frozen=True)
class Step:
    title: str
    func: Callable[[Demo], None]


STEPS: list[Step] = []


def step(title: str) -> Callable[[Callable[[Demo], None]], Callable[[Demo], None]]:
    """Register a demo step; steps run in the order they are defined."""

    def register(func: Callable[[Demo], None]) -> Callable[[Demo], None]:
        STEPS.append(Step(title, func))
        return func

    return register


def indent(text: str, prefix: str = "    ") -> str:
    """Indent every line, blank ones included (file listings keep their shape)."""
    return textwrap.indent(text, prefix, lambda _line: True)


def say(text: str) -> None:
    print(textwrap.indent(textwrap.fill(textwrap.dedent(text).strip(), width=92), "  "))


# --------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------


@step("Start PostgreSQL")
def start_postgres(demo: Demo) -> None:
    sys.path.insert(0, str(REPO_ROOT))  # the throwaway server lives with the tests
    from tests.pgserver import ensure_database_url

    had_url = bool(os.environ.get("DATABASE_URL"))
    server_url = ensure_database_url()
    if had_url:
        say("Using the server in DATABASE_URL.")
    else:
        say(
            "DATABASE_URL is unset: started a throwaway server (initdb + pg_ctl in a temp dir), "
            "stopped when the demo exits."
        )
    demo.database_url = create_database(server_url)
    demo.env["DATABASE_URL"] = demo.database_url
    say(f"Fresh database for the demo: {demo.database_url}")


@step("Copy example_project/ into a new git repository")
def copy_project(demo: Demo) -> None:
    shutil.copytree(HERE, demo.project, ignore=shutil.ignore_patterns("__pycache__", "demo.py"))
    say(f"Working copy: {demo.project}")
    demo.git("init", "-q", "-b", "main")
    demo.git("add", "-A")
    demo.git("commit", "-q", "-m", "Example shop: catalog, customers, orders")
    demo.initial_commit = demo.git("rev-parse", "--short", "HEAD", quiet=True).stdout.strip()
    demo.git("log", "--oneline")
    print()
    say("The committed lockfile names the latest migration of each app:")
    print(indent((demo.project / "migrations_lockfile.txt").read_text().rstrip(), "    | "))


@step("Adopt an existing history in one command")
def adopt_history(demo: Demo) -> None:
    say(
        "The shop also has an app from before migtools came in: suppliers/, plain "
        "migrations.Migration classes (they never state is_post_deployment) and a RunSQL "
        "building an index. Judged today, that deployed history breaks rules it cannot follow "
        "any more."
    )
    for relpath, text in LEGACY_FILES.items():
        (demo.project / relpath).parent.mkdir(parents=True, exist_ok=True)
        (demo.project / relpath).write_text(text)
    edit(demo, "shop/settings.py", '    "orders",\n', f'    "orders",\n    "{LEGACY_APP}",\n')
    commit_all(demo, f"{LEGACY_APP}: the app written before migtools")
    say("migrate on the empty database refuses the whole plan, in one line naming the way out:")
    proc = demo.manage("migrate", expect=1, why="history written before migtools")
    output = proc.stdout + proc.stderr
    for expected in ("migrations_lockfile --adopt", "missing-is-post-deployment", "nothing was"):
        if expected not in output:
            raise StepFailed(f"the refusal does not say {expected!r}")
    if table_exists(demo, "django_migrations") and query(demo, "SELECT 1 FROM django_migrations"):
        raise StepFailed("the refused migrate applied migrations")
    say("Adopt: the history up to today becomes the baseline, never judged; what comes after is.")
    demo.manage("migrations_lockfile", "--adopt")
    baseline = (demo.project / "migrations_baseline.txt").read_text()
    if f"{LEGACY_APP}: 0002_supplier_country" not in baseline.splitlines():
        raise StepFailed("migrations_baseline.txt does not record suppliers' history")
    print(indent(baseline.rstrip(), "    | "))
    demo.git("add", "-A")
    demo.git("commit", "-q", "-m", "Adopt migtools")
    demo.git("show", "--stat", "--format=%h %s", "HEAD")
    demo.initial_commit = demo.git("rev-parse", "--short", "HEAD", quiet=True).stdout.strip()
    demo.manage("migrations_lockfile", "--check")


@step("Apply the committed migration history")
def migrate_committed(demo: Demo) -> None:
    say(
        "A squashed migration stands in for catalog's first three; customers has a RunPython "
        "backfill; orders depends on catalog and customers; suppliers is the adopted history."
    )
    demo.manage("migrate")
    if not is_applied(demo, LEGACY_APP, "0002_supplier_country") or not index_exists(
        demo, LEGACY_INDEX_NAME
    ):
        raise StepFailed("migrate did not apply the adopted suppliers history")


@step("Change a model: add Order.gift_wrap")
def change_model(demo: Demo) -> None:
    models_py = demo.project / "orders" / "models.py"
    text = models_py.read_text()
    anchor = "    created_at = models.DateTimeField(auto_now_add=True)\n"
    if text.count(anchor) < 1:
        raise StepFailed(f"cannot find the line to edit in {models_py}")
    # The first created_at is Order's.
    models_py.write_text(text.replace(anchor, anchor + NEW_FIELD_LINE, 1))
    say(
        "db_default, not default: PostgreSQL fills the existing rows without rewriting the "
        "table, and inserts from code still running the old model get the default too."
    )
    demo.git("diff", "orders/models.py")


@step("CI would notice the missing migration")
def check_detects_change(demo: Demo) -> None:
    demo.manage("makemigrations", "--check", expect=1, why="a model change has no migration yet")


@step("makemigrations without a name is refused")
def refuse_unnamed(demo: Demo) -> None:
    say(
        "Names like 0004_auto_20250101_1200 say nothing in a review or a conflict, so migtools "
        "asks for -n/--name."
    )
    demo.manage("makemigrations", expect="nonzero", why="no -n/--name given")
    status = demo.git("status", "--short").stdout
    if "migrations/" in status or "migrations_lockfile.txt" in status:
        raise StepFailed("the refused makemigrations wrote files:\n" + status)
    say("Nothing was written: only the model edit is pending.")


@step(f"makemigrations -n {MIGRATION_NAME}")
def make_named_migration(demo: Demo) -> None:
    before = set(demo.project.glob("*/migrations/0*.py"))
    demo.manage("makemigrations", "-n", MIGRATION_NAME)
    created = sorted(set(demo.project.glob("*/migrations/0*.py")) - before)
    if len(created) != 1 or created[0].parent.parent.name != "orders":
        raise StepFailed(f"expected one new migration, in orders; found {created}")
    demo.new_migration = created[0]
    rel = demo.new_migration.relative_to(demo.project)
    print(f"\n  {rel}:")
    print(indent(demo.new_migration.read_text().rstrip(), "    | "))


@step("The lockfile moved with it")
def show_lockfile_diff(demo: Demo) -> None:
    say(
        "Another branch adding an orders migration changes the same line, so the second "
        "merge gets a git conflict instead of two leaves in the migration graph."
    )
    demo.git("diff", "migrations_lockfile.txt")
    assert demo.new_migration is not None
    expected = f"orders: {demo.new_migration.stem}"
    lines = (demo.project / "migrations_lockfile.txt").read_text().splitlines()
    if expected not in lines:
        raise StepFailed(f"the lockfile does not contain {expected!r}")


@step("Review the SQL")
def review_sql(demo: Demo) -> None:
    assert demo.new_migration is not None
    demo.manage("sqlmigrate", "orders", demo.new_migration.stem)


@step("Apply it")
def migrate_new(demo: Demo) -> None:
    demo.manage("migrate")


@step("The checks CI runs pass")
def checks_pass(demo: Demo) -> None:
    demo.manage("makemigrations", "--check")
    demo.manage("migrations_lockfile", "--check")


@step("Commit the migration and the lockfile together")
def commit_change(demo: Demo) -> None:
    demo.git("add", "-A")
    demo.git("commit", "-q", "-m", f"orders: add Order.{NEW_FIELD}")
    demo.git("show", "--stat", "--format=%h %s", "HEAD")


# -- update_migration: two branches, one app, a lockfile conflict -----------------------


@step("Two branches each add a customers migration")
def two_branches(demo: Demo) -> None:
    say(
        "A colleague's branch `feature` adds Customer.phone; meanwhile main gets "
        "Customer.newsletter. Both write customers/migrations/0004_*.py and both change the "
        "customers line of the lockfile."
    )
    demo.git("switch", "-q", "-c", "feature")
    edit(demo, "customers/models.py", CUSTOMER_LAST_FIELD, CUSTOMER_LAST_FIELD + PHONE_LINE)
    demo.feature_migration = make_migration(demo, "customers", "customer_phone")
    demo.git("add", "-A")
    demo.git("commit", "-q", "-m", "customers: add Customer.phone")

    demo.git("switch", "-q", "main")
    edit(demo, "customers/models.py", CUSTOMER_FIRST_FIELD, CUSTOMER_FIRST_FIELD + NEWSLETTER_LINE)
    main_migration = make_migration(demo, "customers", "customer_newsletter")
    if main_migration.name[:4] != demo.feature_migration.name[:4]:
        raise StepFailed(f"expected both branches to write 0004: {main_migration.name}")
    demo.git("add", "-A")
    demo.git("commit", "-q", "-m", "customers: add Customer.newsletter")
    say("main's migration is deployed (applied) before the branch is merged:")
    demo.manage("migrate")
    demo.git("log", "--oneline", "--graph", "--all", "-4")


@step("Merge main into the branch: the lockfile conflicts")
def merge_conflicts(demo: Demo) -> None:
    demo.git("switch", "-q", "feature")
    demo.run("git", "merge", "main", expect=1, why="both branches changed the customers line")
    status = demo.git("status", "--short").stdout
    conflicted = [line[3:] for line in status.splitlines() if line[:2] in ("UU", "AA")]
    if conflicted != ["migrations_lockfile.txt"]:
        raise StepFailed(f"expected a conflict in the lockfile only, got {conflicted}")
    say("Without the lockfile, git would merge cleanly and leave customers with two leaves.")
    lockfile = (demo.project / "migrations_lockfile.txt").read_text()
    if "<<<<<<<" not in lockfile or ">>>>>>>" not in lockfile:
        raise StepFailed("the lockfile holds no conflict markers")
    hunk = lockfile[lockfile.index("<<<<<<<") :]
    hunk = hunk[: hunk.index("\n", hunk.index(">>>>>>>"))]
    print("\n  migrations_lockfile.txt (the conflict):")
    print(indent(hunk, "    | "))
    demo.manage("migrations_lockfile", "--check", expect=1, why="the lockfile holds a conflict")


@step("update_migration resolves it")
def run_update_migration(demo: Demo) -> None:
    assert demo.feature_migration is not None
    old = demo.feature_migration.stem
    proc = demo.manage("update_migration")
    new = "0005" + old[4:]
    migrations = demo.project / "customers" / "migrations"
    if (migrations / f"{old}.py").exists() or not (migrations / f"{new}.py").exists():
        raise StepFailed(f"expected {old}.py renamed to {new}.py")
    depends = "('customers', '0004_customer_newsletter')"
    if depends not in (migrations / f"{new}.py").read_text():
        raise StepFailed(f"{new}.py does not depend on {depends}")
    if f"customers: {new}" not in (demo.project / "migrations_lockfile.txt").read_text():
        raise StepFailed(f"the lockfile does not name customers: {new}")
    next_lines = [line for line in proc.stdout.splitlines() if line.startswith("Next: ")]
    if next_lines != ["Next: git merge --continue"]:
        raise StepFailed(f"expected `Next: git merge --continue`, got {next_lines}")
    demo.feature_migration = migrations / f"{new}.py"
    say("Everything is staged: a `git mv` whose only change is the dependency on main's leaf.")
    demo.git("status", "--short")
    demo.git(
        "diff",
        "--cached",
        "-M",
        "HEAD",
        "--",
        f"customers/migrations/{old}.py",
        f"customers/migrations/{new}.py",
        "migrations_lockfile.txt",
    )


@step("Finish the merge, apply, check")
def finish_merge(demo: Demo) -> None:
    say("The step update_migration printed (core.editor=true keeps git's merge message):")
    demo.git("-c", "core.editor=true", "merge", "--continue", quiet=True)
    if (demo.project / ".git" / "MERGE_HEAD").exists():
        raise StepFailed("the merge is still in progress")
    demo.git("log", "--oneline", "--graph", "-5")
    demo.manage("migrate")
    demo.manage("makemigrations", "--check")
    demo.manage("migrations_lockfile", "--check")
    say("The branch is merged into main (a fast-forward now):")
    demo.git("switch", "-q", "main")
    demo.git("merge", "-q", "--ff-only", "feature")


# -- Two-phase removal ----------------------------------------------------------------


@step("Remove a field, phase 1: out of the code, the column stays")
def remove_field_phase1(demo: Demo) -> None:
    say(
        "Dropping a column while the old code still reads it breaks every request until the "
        "new code is live. makemigrations writes phase 1 instead: SafeRemoveField with "
        "MOVE_TO_PENDING takes phone out of the migration state and runs no SQL."
    )
    edit(demo, "customers/models.py", PHONE_LINE, "")
    demo.git("diff", "customers/models.py")
    migration = make_migration(demo, "customers", "remove_customer_phone")
    text = migration.read_text()
    if "SafeRemoveField" not in text or "MOVE_TO_PENDING" not in text:
        raise StepFailed(f"{migration.name} does not use SafeRemoveField(..., MOVE_TO_PENDING)")
    show_file(demo, migration, "    operations = [")
    demo.manage("sqlmigrate", "customers", migration.stem)
    demo.manage("migrate")
    if not column_exists(demo, "customers_customer", "phone"):
        raise StepFailed("phase 1 dropped customers_customer.phone")
    say("customers_customer.phone is still there: the old code keeps working during the deploy.")
    demo.manage("makemigrations", "--check")
    commit_all(demo, "customers: remove Customer.phone (phase 1)")


@step("Remove a field, phase 2: a later migration drops the column")
def remove_field_phase2(demo: Demo) -> None:
    say(
        "After the deploy, a later migration drops the column. makemigrations "
        "--finish-removal writes it for every MOVE_TO_PENDING already applied on the "
        "database, with field= (the field as it was, so it is reversible), post-deployment."
    )
    directory = demo.project / "customers" / "migrations"
    before = set(directory.glob("0*.py"))
    demo.manage("makemigrations", "--finish-removal", "customers", "-n", "drop_customer_phone")
    created = sorted(set(directory.glob("0*.py")) - before)
    if len(created) != 1 or not created[0].stem.endswith("drop_customer_phone"):
        raise StepFailed(f"--finish-removal did not write one *_drop_customer_phone: {created}")
    migration = created[0]
    text = migration.read_text()
    if "DeletionAction['DELETE']" not in text or "field=models.CharField(" not in text:
        raise StepFailed(f"{migration.name} is not a reversible SafeRemoveField(DELETE)")
    show_file(demo, migration, "    dependencies")
    demo.manage("sqlmigrate", "customers", migration.stem)
    demo.manage("migrate")
    if column_exists(demo, "customers_customer", "phone"):
        raise StepFailed("phase 2 did not drop customers_customer.phone")
    say("The column is gone.")
    demo.manage("makemigrations", "--check")
    demo.manage("migrations_lockfile", "--check")
    commit_all(demo, "customers: drop customers_customer.phone (phase 2)")


# -- A post-deployment index ----------------------------------------------------------


@step("A post-deployment index")
def post_deployment_index(demo: Demo) -> None:
    say(
        "An index on a big table takes minutes even built CONCURRENTLY: it belongs after the "
        "deploy. makemigrations writes atomic = False (CONCURRENTLY cannot run in a "
        "transaction); we set is_post_deployment = True."
    )
    edit(demo, "catalog/models.py", PRODUCT_META, PRODUCT_META_WITH_INDEX)
    migration = make_migration(demo, "catalog", "product_name_idx")
    text = migration.read_text()
    if "atomic = False" not in text:
        raise StepFailed(f"makemigrations did not write atomic = False into {migration.name}")
    migration.write_text(text.replace("is_post_deployment = False", "is_post_deployment = True", 1))
    show_file(demo, migration, "    is_post_deployment")
    demo.post_deploy_migration = migration
    demo.manage("sqlmigrate", "catalog", migration.stem)
    commit_all(demo, "catalog: index products by name (post-deployment)")


@step("Deploy: migrate --pre-deploy defers it, migrate applies it")
def pre_deploy(demo: Demo) -> None:
    migration = demo.post_deploy_migration
    assert migration is not None
    say("Before the new code goes live:")
    proc = demo.manage("migrate", "--pre-deploy")
    if f"catalog.{migration.stem}" not in proc.stdout or is_applied(
        demo, "catalog", migration.stem
    ):
        raise StepFailed(f"--pre-deploy did not list catalog.{migration.stem} as deferred")
    if index_exists(demo, PRODUCT_INDEX_NAME):
        raise StepFailed("--pre-deploy built the post-deployment index")
    say("After the deploy:")
    demo.manage("migrate")
    if not is_applied(demo, "catalog", migration.stem) or not index_exists(
        demo, PRODUCT_INDEX_NAME
    ):
        raise StepFailed(f"migrate did not apply catalog.{migration.stem}")
    demo.manage("showmigrations", "catalog")


# -- A refused operation --------------------------------------------------------------


@step("An unsafe plan is refused as a whole")
def refused_migration(demo: Demo) -> None:
    say(
        "On a throwaway branch, two migrations: a new Coupon table (safe), then a hand-written "
        "one with plain RunSQL building an index without CONCURRENTLY (writes to orders_order "
        "would wait for the whole build) and setting a column NOT NULL (a full scan under an "
        "exclusive lock)."
    )
    demo.git("switch", "-q", "-c", "risky")
    models_py = demo.project / "orders" / "models.py"
    models_py.write_text(models_py.read_text() + COUPON_MODEL)
    coupon = make_migration(demo, "orders", "coupon")
    migration = make_migration(demo, "orders", "order_created_idx", "--empty")
    text = migration.read_text()
    if "    operations = [\n    ]" not in text:
        raise StepFailed(f"{migration.name} is not the empty migration expected")
    migration.write_text(text.replace("    operations = [\n    ]", RISKY_OPERATIONS))
    show_file(demo, migration, "    operations = [")
    say("CI's verifier, on what the branch changed, reports it before anyone applies it:")
    demo.manage("verify_migrations", "--since", "main", expect=1, why="error-level findings")
    say("sqlmigrate puts the findings before the statement they concern; --check fails on them:")
    demo.manage("sqlmigrate", "orders", migration.stem)
    demo.manage(
        "sqlmigrate",
        "--check",
        "orders",
        migration.stem,
        expect=1,
        quiet=True,
        why="error-level findings",
    )
    say(
        "migrate judges the whole plan before applying anything: the safe first migration is "
        "not applied either, and every finding is listed with its recipe's first step and "
        "where to read the rest (`verify_migrations --explain RULE`)."
    )
    proc = demo.manage("migrate", expect="nonzero", why="refused before any SQL ran")
    output = proc.stdout + proc.stderr
    for expected in (
        "run-sql-not-safe",
        "index-not-concurrent",
        "set-not-null",
        "fix: ",
        "--explain index-not-concurrent` for why and the full recipe",
        migration.stem,
    ):
        if expected not in output:
            raise StepFailed(f"the refusal does not say {expected!r}")
    if is_applied(demo, "orders", coupon.stem) or table_exists(demo, "orders_coupon"):
        raise StepFailed(f"orders.{coupon.stem} was applied though the plan was refused")
    if is_applied(demo, "orders", migration.stem) or index_exists(demo, "orders_order_created_idx"):
        raise StepFailed("the refused migration ran")
    say(
        "The full text of a rule (why it is dangerous, the safe recipe step by step) ships with "
        "the package: no network, versioned with the install."
    )
    proc = demo.manage("verify_migrations", "--explain", "index-not-concurrent")
    for expected in ("index-not-concurrent", "CONCURRENTLY"):
        if expected not in proc.stdout:
            raise StepFailed(f"--explain index-not-concurrent does not say {expected!r}")
    say("Nothing ran. Throw the branch away:")
    commit_all(demo, "orders: raw index (refused)")
    demo.git("switch", "-q", "main")
    demo.git("branch", "-q", "-D", "risky")
    if migration.exists():
        raise StepFailed(f"{migration.name} is still there")
    demo.manage("migrations_lockfile", "--check")


# -- Verifier and migration tests -----------------------------------------------------


@step("verify_migrations: every migration this demo added")
def verify_added(demo: Demo) -> None:
    say(
        "The verifier judges each migration's operations and the SQL the configured backend "
        "will run, in one pass; --since limits it to what changed since a git ref (here, the "
        "adoption commit)."
    )
    demo.manage("verify_migrations", "--since", demo.initial_commit)
    demo.manage("verify_migrations", "customers", "0003_backfill_display_name")
    say(
        "customers.0003 is a RunPython backfill: without a TestMigrations test naming it, "
        "this would be the error data-migration-without-test."
    )


@step("Migration tests")
def migration_tests(demo: Demo) -> None:
    say(
        "customers/tests/test_0003_backfill_display_name.py: TestMigrations seeds customers "
        "at 0002 through the historical model, applies 0003, asserts the backfill."
    )
    show_file(demo, demo.project / "customers/tests/test_0003_backfill_display_name.py", "class ")
    proc = demo.run(sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider")
    if " 1 passed" not in proc.stdout:
        raise StepFailed("expected exactly one migration test to pass")


# -- Squash: squash, verify, prune ----------------------------------------------------

SQUASH = "0001_squashed_0003_backfill_display_name"
REPLACED = ("0001_initial", "0002_customer_display_name", "0003_backfill_display_name")


@step("Squash customers 0001-0003; the migration test still passes")
def squash_customers(demo: Demo) -> None:
    say(
        "customers' first three migrations become one. migtools writes the squash as a "
        "CheckedMigration with honest attributes, lists the migration tests naming what it "
        "replaces, and names the command that proves the squash faithful."
    )
    say(
        "The backfill has run on every database: marked elidable (Django's convention for data "
        "migrations whose work is done), the squash leaves it out instead of copying it."
    )
    edit(
        demo,
        "customers/migrations/0003_backfill_display_name.py",
        "migrations.RunPython(backfill_display_name, clear_display_name),",
        "migrations.RunPython(backfill_display_name, clear_display_name, elidable=True),",
    )
    proc = demo.manage("squashmigrations", "--noinput", "customers", "0003")
    squash = demo.project / "customers" / "migrations" / f"{SQUASH}.py"
    if not squash.exists() or "CheckedMigration" not in squash.read_text():
        raise StepFailed(f"squashmigrations did not write {squash.name} as a CheckedMigration")
    if "verify_squashes customers" not in proc.stdout + proc.stderr:
        raise StepFailed("squashmigrations did not print the verify_squashes command")
    show_file(demo, squash, "    replaces")
    demo.manage("makemigrations", "--check")
    demo.manage("migrations_lockfile", "--check")
    commit_all(demo, "customers: squash 0001-0003")
    say(
        "The migration test names 0002 and 0003, both replaced now: it runs on the replaced "
        "migrations, the path every database that applied them one by one took."
    )
    proc = demo.run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    if "1 passed" not in proc.stdout or "failed" in proc.stdout:
        raise StepFailed("expected the migration test to pass after the squash")


@step("verify_squashes: offline and on the database")
def verify_squash(demo: Demo) -> None:
    say(
        "Offline: the state the squash builds against the state its replaced migrations build, "
        "model by model, field by field. With the database: both paths applied on two scratch "
        "databases, their catalogs compared."
    )
    for extra in (("--offline",), ()):
        proc = demo.manage("verify_squashes", "customers", *extra)
        if f"customers.{SQUASH}" not in proc.stdout:
            raise StepFailed(f"verify_squashes {' '.join(extra)} did not judge the squash")
    say("Deploy: a database that applied 0001-0003 one by one records the squash as applied.")
    demo.manage("migrate")


@step("prune_squashed: the squash becomes a normal migration")
def prune_squash(demo: Demo) -> None:
    say(
        "Once every database runs a release with the squash: delete the replaced files, "
        "point every dependency at the squash, drop its replaces. --dry-run shows the plan."
    )
    migrations = demo.project / "customers" / "migrations"
    demo.manage("prune_squashed", "customers", "--dry-run")
    if not all((migrations / f"{name}.py").exists() for name in REPLACED):
        raise StepFailed("prune_squashed --dry-run changed files")
    proc = demo.manage("prune_squashed", "customers")
    test = "customers/tests/test_0003_backfill_display_name.py"
    output = proc.stdout + proc.stderr
    if f"{test}:" not in output or "migrate_from = '0002_customer_display_name'" not in output:
        raise StepFailed(f"prune_squashed did not report {test} (it names 0002)")
    left = [name for name in REPLACED if (migrations / f"{name}.py").exists()]
    if left:
        raise StepFailed(f"prune_squashed left replaced migrations: {left}")
    if "replaces" in (migrations / f"{SQUASH}.py").read_text():
        raise StepFailed(f"{SQUASH}.py still has replaces")
    demo.git("status", "--short")
    say(
        "The backfill test seeds rows at 0002, a state that now exists only inside the squash. "
        "The backfill has run on every database: the test has done its job, delete it."
    )
    demo.git("rm", "-q", test)
    demo.manage("makemigrations", "--check")
    demo.manage("migrations_lockfile", "--check")
    say("Django's own last step drops the rows of the deleted migrations; nothing is left to do:")
    demo.manage("migrate", "customers", "--prune")
    proc = demo.manage("migrate")
    if "No migrations to apply" not in proc.stdout:
        raise StepFailed("migrate has something to do after the prune")
    commit_all(demo, "customers: prune the 0001-0003 squash")


# -- Several databases: a control silo ----------------------------------------------

SILO_APP = "billing"
ROUTER_PY = """\
# Where each app's tables live: billing in the "control" silo, every other app in default.
# A migration operation may name its silo itself with hints={"silo": ...} (RunSQL,
# RunPython); without one it runs where its app lives.

CONTROL_APPS = {"billing"}


def silo_of(app_label):
    return "control" if app_label in CONTROL_APPS else "default"


class SiloRouter:
    def db_for_read(self, model, **hints):
        return silo_of(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return silo_of(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        return silo_of(obj1._meta.app_label) == silo_of(obj2._meta.app_label)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == hints.get("silo", silo_of(app_label))
"""
SILO_FILES = {
    "billing/__init__.py": "",
    "billing/migrations/__init__.py": "",
    "billing/models.py": """\
from django.db import models


class Subscription(models.Model):
    # Lives in the control silo (shop/routers.py); customers live in default, so the customer
    # is an id, not a ForeignKey (a relation cannot cross databases).
    customer_id = models.BigIntegerField()
    plan = models.CharField(max_length=20)
""",
    "shop/routers.py": ROUTER_PY,
}
SILO_SETTINGS = """
# Several databases: billing lives in the "control" silo, a second database on the same
# server (named after default's); shop/routers.py sends each app's tables to its silo.
INSTALLED_APPS.append("billing")
DATABASES["control"] = {**_database, "NAME": f"{_database['NAME']}_control"}
DATABASE_ROUTERS = ["shop.routers.SiloRouter"]
"""
# The apps whose tables live in default only.
DEFAULT_APPS = ("auth", "django", "catalog", "customers", "orders", "suppliers")
SPLIT_INDEX = "orders_order_created_idx"
SPLIT_OPERATIONS = f"""\
    operations = [
        # control: the billing silo's subscriptions without a plan get the free one.
        SafeRunSQL(
            "UPDATE billing_subscription SET plan = 'free' WHERE plan = ''",
            migrations.RunSQL.noop,
            hints={{"silo": "control"}},
        ),
        # default: an index on orders_order, built without CONCURRENTLY (writes would wait).
        SafeRunSQL(
            "CREATE INDEX {SPLIT_INDEX} ON orders_order (created_at)",
            "DROP INDEX {SPLIT_INDEX}",
            hints={{"silo": "default"}},
        ),
    ]"""
SPLIT_EDITS = (
    (
        "from migtools import CheckedMigration\n",
        "from migtools import CheckedMigration\nfrom migtools.operations import SafeRunSQL\n",
    ),
    ("    operations = [\n    ]", SPLIT_OPERATIONS),
)
SPLIT_NAME = "free_plans_order_created_idx"


@step("Several databases: a control silo and its router")
def silo_router(demo: Demo) -> None:
    say(
        "The shop grows a billing app that lives in its own database, the way Sentry keeps its "
        "control silo apart: a second alias, `control`, a second database on the same server, "
        "and a router sending billing's tables there and every other app's to default."
    )
    create_silo_database(demo, "control")
    for relpath, text in SILO_FILES.items():
        (demo.project / relpath).parent.mkdir(parents=True, exist_ok=True)
        (demo.project / relpath).write_text(text)
    settings_py = demo.project / "shop" / "settings.py"
    settings_py.write_text(settings_py.read_text() + SILO_SETTINGS)
    show_file(demo, demo.project / "shop" / "routers.py", "CONTROL_APPS")
    demo.git("diff", "shop/settings.py")
    migration = make_migration(demo, SILO_APP, "subscription")
    commit_all(demo, f"{SILO_APP}: subscriptions, in the control silo")
    say(
        "Each database is migrated on its own. On control, migrate runs billing's operations "
        "and only records the other apps' migrations (the router skips their operations):"
    )
    demo.manage("migrate", "--database", "control")
    on_control = silo_tables(demo, "control")
    if "billing_subscription" not in on_control:
        raise StepFailed("migrate --database control did not create billing_subscription")
    strays = sorted(t for t in on_control if t.split("_", 1)[0] in DEFAULT_APPS)
    if strays != ["django_migrations"]:
        raise StepFailed(f"migrate --database control created default's tables: {strays}")
    if not silo_applied(demo, "control", "orders", "0001_initial"):
        raise StepFailed("control does not record orders' migrations as applied")
    say("On default, billing's migration is recorded and runs nothing:")
    demo.manage("migrate", "--database", "default")
    on_default = silo_tables(demo, "default")
    if "billing_subscription" in on_default or "orders_order" not in on_default:
        raise StepFailed(f"billing_subscription is on default or orders_order is not: {on_default}")
    if not silo_applied(demo, "default", SILO_APP, migration.stem):
        raise StepFailed(f"default does not record {SILO_APP}.{migration.stem}")
    say(
        "billing_subscription is on control only, orders_order on default only; both databases "
        "record every migration."
    )
    silo_query(
        demo,
        "control",
        "INSERT INTO billing_subscription (customer_id, plan) VALUES (1, 'pro'), (2, ''), (3, '')",
    )


@step("A migration unsafe only on default: only that migrate refuses")
def silo_refusal(demo: Demo) -> None:
    say(
        "On a throwaway branch, one migration with an operation per silo, the hints naming "
        "where each runs: an UPDATE of billing's subscriptions on control (fine) and an index "
        "on default's orders_order built without CONCURRENTLY (writes would wait for it)."
    )
    demo.git("switch", "-q", "-c", "silos")
    migration = make_migration(demo, "orders", SPLIT_NAME, "--empty")
    text = migration.read_text()
    for old, new in SPLIT_EDITS:
        if text.count(old) != 1:
            raise StepFailed(f"{migration.name} is not the empty migration expected: {old!r}")
        text = text.replace(old, new)
    migration.write_text(text)
    show_file(demo, migration, "    operations = [")
    say("migrate's preflight judges only what the router lets run on the database it migrates:")
    proc = demo.manage("migrate", "--database", "default", expect=1, why="refused on default")
    output = proc.stdout + proc.stderr
    for expected in ("on database 'default'", "index-not-concurrent", migration.stem):
        if expected not in output:
            raise StepFailed(f"the refusal does not say {expected!r}")
    if "database 'control'" in output:
        raise StepFailed("the refusal on default speaks of control")
    if silo_applied(demo, "default", "orders", migration.stem) or index_exists(demo, SPLIT_INDEX):
        raise StepFailed("the refused migration ran on default")
    say("On control the index does not run, so there is nothing to refuse:")
    demo.manage("migrate", "--database", "control")
    if not silo_applied(demo, "control", "orders", migration.stem):
        raise StepFailed(f"migrate --database control did not apply orders.{migration.stem}")
    plans = silo_query(
        demo, "control", "SELECT plan, count(*) FROM billing_subscription GROUP BY 1 ORDER BY 1"
    )
    if plans != [("free", 2), ("pro", 1)]:
        raise StepFailed(f"the UPDATE did not run on control: {plans}")
    if silo_query(demo, "control", "SELECT 1 FROM pg_indexes WHERE indexname = %s", SPLIT_INDEX):
        raise StepFailed("the index was built on control")


@step("verify_migrations: each finding with its database, online and offline")
def silo_verify(demo: Demo) -> None:
    migration = next((demo.project / "orders" / "migrations").glob(f"0*_{SPLIT_NAME}.py"))
    say(
        "Without --database the verifier judges every database the router lets the migration "
        "run on; each finding names the database it is about:"
    )
    proc = demo.manage("verify_migrations", "orders", migration.stem, expect=1, why="an error")
    expected = f"[index-not-concurrent] orders.{migration.stem} (database 'default')"
    if expected not in proc.stdout:
        raise StepFailed(f"verify_migrations does not say {expected!r}")
    online, _ = json_findings(demo, "orders", migration.stem)
    expected_online = {
        ("index-not-concurrent", "default"),  # the index runs on default only
        ("data-migration-without-test", "control"),  # the UPDATE runs on control only
    }
    if online != expected_online:
        raise StepFailed(f"expected {sorted(expected_online)}, found {sorted(online)}")
    say("--database control: nothing about the index, which does not run there:")
    on_control, _ = json_findings(demo, "orders", migration.stem, "--database", "control")
    if on_control != {("data-migration-without-test", "control")}:
        raise StepFailed(f"verify_migrations --database control found {sorted(on_control)}")
    say(
        "With no database reachable (a pre-commit hook, a lint job), the verifier works "
        "offline, database by database, and finds the same:"
    )
    saved = demo.env["DATABASE_URL"]
    demo.env["DATABASE_URL"] = unreachable(saved)
    try:
        offline, stderr = json_findings(demo, "orders", migration.stem)
        if stderr.count("migtools: verified offline") != 2:  # one line per database
            raise StepFailed("verify_migrations did not say it ran offline")
    finally:
        demo.env["DATABASE_URL"] = saved
    if offline != online:
        raise StepFailed(f"offline found {sorted(offline)}, online {sorted(online)}")
    say("Throw the branch away; control applied its migration: roll that back first.")
    applied = sorted((demo.project / "orders" / "migrations").glob("0*.py"))
    previous = applied[applied.index(migration) - 1].stem
    demo.manage("migrate", "orders", previous, "--database", "control")
    commit_all(demo, "orders: free plans and an index (refused on default)")
    demo.git("switch", "-q", "main")
    demo.git("branch", "-q", "-D", "silos")
    for alias in ("default", "control"):
        demo.manage("migrate", "--check", "--database", alias, quiet=True)


def create_silo_database(demo: Demo, alias: str) -> None:
    """The database of ``alias``: default's name plus ``_<alias>`` (as the settings name it),
    on the same server, dropped at exit."""
    import atexit

    import psycopg

    name = f"{silo_name(demo, 'default')}_{alias}"
    with psycopg.connect(demo.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    server = demo.database_url

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(drop)


def silo_name(demo: Demo, alias: str) -> str:
    default = urlsplit(demo.database_url).path.lstrip("/")
    return default if alias == "default" else f"{default}_{alias}"


def silo_query(demo: Demo, alias: str, sql: str, *params: str) -> list[tuple[object, ...]]:
    import psycopg

    url = urlunsplit(urlsplit(demo.database_url)._replace(path=f"/{silo_name(demo, alias)}"))
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def silo_tables(demo: Demo, alias: str) -> set[str]:
    rows = silo_query(demo, alias, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(name) for (name,) in rows}


def silo_applied(demo: Demo, alias: str, app: str, name: str) -> bool:
    sql = "SELECT 1 FROM django_migrations WHERE app = %s AND name = %s"
    return bool(silo_query(demo, alias, sql, app, name))


def json_findings(demo: Demo, app: str, name: str, *extra: str) -> tuple[set[tuple[str, str]], str]:
    """(rule, database) of each finding of ``verify_migrations APP NAME --format json``
    (which exits 1 on them), and its stderr; prints those pairs and stderr, not the JSON."""
    import json

    proc = demo.manage(
        "verify_migrations", app, name, *extra, "--format", "json", expect=1, quiet=True
    )
    found = {(f["rule"], f["database"]) for f in json.loads(proc.stdout)["findings"]}
    for line in proc.stderr.splitlines():
        if not line.startswith("CommandError"):
            print(indent(line))
    print(indent("\n".join(f"{rule}: database {database!r}" for rule, database in sorted(found))))
    return found, proc.stderr


def unreachable(url: str) -> str:
    """``url`` pointing at a port nothing listens on (the same user and database name)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:9" if user else "127.0.0.1:9"))


# --------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------


def create_database(server_url: str) -> str:
    """Create a uniquely named database on the server (dropped at exit); return its URL."""
    import atexit

    import psycopg

    name = f"migtools_demo_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(drop)  # runs before the throwaway server's own atexit stop
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def edit(demo: Demo, relpath: str, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in a project file; fail loudly if it is not there."""
    path = demo.project / relpath
    text = path.read_text()
    if text.count(old) != 1:
        raise StepFailed(f"cannot find the text to edit in {relpath}: {old!r}")
    path.write_text(text.replace(old, new))


def make_migration(demo: Demo, app: str, name: str, *extra: str) -> Path:
    """``makemigrations [APP --empty] -n NAME``; return the one file it wrote."""
    directory = demo.project / app / "migrations"
    before = set(directory.glob("0*.py"))
    demo.manage("makemigrations", *([app] if extra else []), *extra, "-n", name)
    created = sorted(set(directory.glob("0*.py")) - before)
    if len(created) != 1 or not created[0].stem.endswith(name):
        raise StepFailed(f"expected one new {app} migration named *_{name}, found {created}")
    return created[0]


def show_file(demo: Demo, path: Path, start: str) -> None:
    """Print a file from the first line starting with ``start``."""
    lines = path.read_text().splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith(start)), 0)
    print(f"\n  {path.relative_to(demo.project)}" + (" (excerpt):" if first else ":"))
    print(indent("\n".join(lines[first:]).rstrip(), "    | "))


def commit_all(demo: Demo, message: str) -> None:
    demo.git("add", "-A")
    demo.git("commit", "-q", "-m", message)


def query(demo: Demo, sql: str, *params: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(demo.database_url) as conn:
        return conn.execute(sql, params).fetchall()


def column_exists(demo: Demo, table: str, column: str) -> bool:
    return bool(
        query(
            demo,
            "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
            table,
            column,
        )
    )


def table_exists(demo: Demo, name: str) -> bool:
    return bool(query(demo, "SELECT to_regclass(%s)::text", name)[0][0])


def index_exists(demo: Demo, name: str) -> bool:
    return bool(query(demo, "SELECT 1 FROM pg_indexes WHERE indexname = %s", name))


def is_applied(demo: Demo, app: str, name: str) -> bool:
    return bool(
        query(demo, "SELECT 1 FROM django_migrations WHERE app = %s AND name = %s", app, name)
    )


def child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_") and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(GIT_ENV)
    env["DJANGO_SETTINGS_MODULE"] = "shop.settings"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def heading(number: int, total: int, title: str) -> None:
    text = f" {number}/{total}  {title} "
    print(f"\n{'=' * 4}{text}{'=' * max(4, 88 - len(text))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp git repository to explore it afterwards"
    )
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="migtools-demo-"))
    demo = Demo(tmp=tmp, env=child_env())
    total = len(STEPS)
    try:
        for number, current in enumerate(STEPS, start=1):
            heading(number, total, current.title)
            try:
                current.func(demo)
            except StepFailed as exc:
                sys.stdout.flush()
                print(
                    f"\nDEMO FAILED at step {number}/{total} ({current.title}):\n  {exc}",
                    file=sys.stderr,
                )
                return 1
    finally:
        if args.keep:
            print(f"\nKept the demo repository: {demo.project}")
            print("(the database is dropped and a throwaway server stopped on exit)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nDemo finished: {total} steps OK.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
