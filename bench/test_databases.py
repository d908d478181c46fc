"""Benchmark: creating the test database, plain pytest-django ``--create-db`` (every migration
replayed) vs migtools' content-keyed template (issue 18), on a generated project of 20 apps x
250 migrations (5,000 files; ``--apps``/``--migrations``), or with ``--corpus large`` on the
real-world-shaped project of ``bench/large_project.py`` (1,001 migrations in 25 apps: RunSQL,
RunPython, indexes, HStore, a squash; ``--apps``/``--migrations`` default to 25 x 40 there).

One pytest test (``@pytest.mark.django_db``) runs in each case; the figure is its setup time as
pytest reports it (pytest-django's ``django_db_setup``: creating the test database), plus the
whole process time. Cases, all with ``--create-db`` and all in this one run:

- peer: pytest-django alone (``-p no:migtools``, settings without ``migtools``);
- ours, first run: the template is missing and is built (the history replayed once);
- ours, next run (median of ``--reps``): the test database is cloned from the template;
- ours, one migration added (an AddField of a nullable column): the template of the previous history
  is copied and only the new migration applied; then the next run clones again.

Target (issue 18): the next run's setup at least 20x faster than the peer's.

    .venv/bin/python bench/test_databases.py [--corpus generated|large] [--apps N]
        [--migrations M] [--reps 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate  # noqa: E402
from large_project import generate_large  # noqa: E402

from tests.pgserver import ensure_database_url  # noqa: E402

CONFTEST = """
import json, os

def pytest_runtest_logreport(report):
    if report.when == "setup":
        with open(os.environ["BENCH_OUT"], "w") as out:
            json.dump({"setup": report.duration}, out)
"""

TEST = """
import pytest
from django.db import connection


@pytest.mark.django_db
def test_database_is_migrated():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations")
        assert cursor.fetchone()[0] > 0
"""

ADDED = """
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("{app}", "{leaf}")]
    operations = [migrations.AddField("{model}", "added", models.IntegerField(null=True))]
"""

PEER_SETTINGS = """
from benchsite.settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "migtools"]  # noqa: F405
"""


def run_pytest(root: Path, env: dict[str, str], *extra: str) -> tuple[float, float]:
    """(setup seconds as pytest reports it, whole process seconds)."""
    out = root / "bench_out.json"
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--create-db", *extra],
        cwd=root,
        env={**env, "BENCH_OUT": str(out)},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"pytest failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return float(json.loads(out.read_text())["setup"]), elapsed


def drop_templates(url: str, app: str) -> None:
    """Drop the templates of generated projects (those holding ``app``'s first migration)."""
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'mt\\_tpl\\_%%' "
            "AND shobj_description(oid, 'pg_database') LIKE %s",
            (f'%"{app}.0001_initial"%',),
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        choices=("generated", "large"),
        default="generated",
        help="generated: AddField chains (bench/generate.py); large: the real-world-shaped "
        "project of bench/large_project.py",
    )
    parser.add_argument("--apps", type=int, help="default: 20 (generated), 25 (large)")
    parser.add_argument("--migrations", type=int, help="per app; default: 250, 40")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate into DIR and leave it there")
    args = parser.parse_args(argv)
    large = args.corpus == "large"
    apps = args.apps or (25 if large else 20)
    migrations = args.migrations or (40 if large else 250)

    url = ensure_database_url()
    root = args.keep or Path(tempfile.mkdtemp(prefix="mt-bench-testdb-"))
    if large:
        if root.exists():
            shutil.rmtree(root)
        project = generate_large(root, apps, migrations, database_url=url)
        # Its history predates migtools: adopted once, as a project does before migrating.
        project.manage("migrations_lockfile", "--adopt")
        model, count = "record", project.migration_count + 1  # + the squash
    else:
        project = generate(root, apps, migrations, overwrite=True, database_url=url)
        model, count = "item", project.migration_count
    try:
        (root / "conftest.py").write_text(CONFTEST)
        (root / "test_db.py").write_text(TEST)
        (root / "pytest.ini").write_text("[pytest]\ndjango_find_project = false\n")
        env = {**project.env}
        env.pop("PYTEST_ADDOPTS", None)
        if large:  # the project's settings leave migtools out with LARGE_PLAIN
            peer_env = {**env, "LARGE_PLAIN": "1"}
        else:
            (root / "benchsite" / "peer_settings.py").write_text(PEER_SETTINGS)
            peer_env = {**env, "DJANGO_SETTINGS_MODULE": "benchsite.peer_settings"}
        drop_templates(url, project.apps[0])
        print(f"test-database setup, {args.corpus}: {apps} apps, {count} migrations:")

        peer, peer_total = run_pytest(root, peer_env, "-p", "no:migtools")
        print(
            f"  peer  pytest-django --create-db       setup {peer:8.3f} s  process {peer_total:7.2f} s"
        )
        first, first_total = run_pytest(root, env)
        print(
            f"  ours  first run (template built)      setup {first:8.3f} s  process {first_total:7.2f} s"
        )
        nexts = [run_pytest(root, env) for _ in range(args.reps)]
        nxt = statistics.median(setup for setup, _ in nexts)
        nxt_total = statistics.median(total for _, total in nexts)
        print(
            f"  ours  next run (cloned), median of {args.reps}  setup {nxt:8.3f} s  process {nxt_total:7.2f} s"
        )

        app = project.apps[0]
        (root / app / "migrations" / "9999_item_added.py").write_text(
            ADDED.format(app=app, leaf=project.leaves[app], model=model)
        )
        added, added_total = run_pytest(root, env)
        print(
            f"  ours  one migration added             setup {added:8.3f} s  process {added_total:7.2f} s"
        )
        again, again_total = run_pytest(root, env)
        print(
            f"  ours  next run after that             setup {again:8.3f} s  process {again_total:7.2f} s"
        )

        ratio = peer / nxt if nxt else float("inf")
        verdict = "met" if ratio >= 20 else "NOT met"
        print(f"  next run vs peer: {ratio:.1f}x faster (target >= 20x: {verdict})")
        print(f"  one migration added vs peer: {peer / added:.1f}x faster")
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        drop_templates(url, project.apps[0])
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.exit(main())
