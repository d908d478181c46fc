#!/usr/bin/env python
"""`make demo`: the migtools local-development workflow, step by step, on real parts.

It starts a throwaway PostgreSQL server (unless DATABASE_URL points at one), copies
example_project/ into a temp git repository, and then does what a developer does: change a
model, write the migration with `makemigrations -n`, look at the lockfile diff, apply it, and
run the checks CI runs. Every command is printed before it runs, with its output.

Each step is a function registered with @step, run in the order defined. Later features add
their own steps (update_migration resolving a lockfile conflict, two-phase removals, ...).

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
    from migtools.pgserver import ensure_database_url

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
    demo.git("log", "--oneline")
    print()
    say("The committed lockfile names the latest migration of each app:")
    print(indent((demo.project / "migrations_lockfile.txt").read_text().rstrip(), "    | "))


@step("Apply the committed migration history")
def migrate_committed(demo: Demo) -> None:
    say(
        "A squashed migration stands in for catalog's first three; customers has a RunPython "
        "backfill; orders depends on catalog and customers."
    )
    demo.manage("migrate")


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
    before = set((demo.project / "orders" / "migrations").glob("0*.py"))
    demo.manage("makemigrations", "-n", MIGRATION_NAME)
    created = sorted(set((demo.project / "orders" / "migrations").glob("0*.py")) - before)
    if len(created) != 1:
        raise StepFailed(f"expected one new orders migration, found {created}")
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
