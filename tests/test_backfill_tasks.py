"""The tasks runner: the migration records the backfill's ranges and enqueues one Django Task
per range; two real ``db_worker`` processes (django-tasks' database backend) finish it, never
taking the same range; ``EnsureBackfilled`` refuses before and passes after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backfill_helpers import backfill_project, counts, seed
from tests.safety_helpers import query

pytest.importorskip("django_tasks_db")

TASKS_SETTINGS = """
INSTALLED_APPS.append("django_tasks_db")
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
MIGTOOLS_BACKFILL_RUNNER = "tasks"
"""


def _worker(root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "ignore"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--interval", "0.05"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_workers_finish_a_backfill_and_ensure_backfilled_waits_for_them(tmp_path: Path) -> None:
    proj, db = backfill_project(
        tmp_path / "p", kwargs="batch_size=25", sleep=0.03, ensure=True, apps_extra=TASKS_SETTINGS
    )
    first = proj.manage("migrate", "shop", "0001")
    assert first.returncode == 0, first.err
    assert proj.manage("migrate", "django_tasks_database").returncode == 0
    seed(db, "shop_item", 1000)

    refused = proj.manage("migrate", "shop")
    assert refused.returncode == 1
    assert "Traceback" not in refused.err
    assert "EnsureBackfilled(shop.0002_backfill) refuses to go on: shop.0002_backfill is running" in refused.err
    applied = {r[0] for r in query(db, "SELECT name FROM django_migrations WHERE app = 'shop'")}
    assert applied == {"0001_initial", "0002_backfill"}
    assert counts(db) == {0: 1000}  # recorded and enqueued, nothing run in the migrate process
    assert query(db, "SELECT count(*) FROM migtools_backfill_range")[0][0] == 40
    assert query(db, "SELECT count(*) FROM django_tasks_database_dbtaskresult")[0][0] == 40

    listed = proj.manage("backfills")
    assert "shop.0002_backfill  running (40 range(s) left)  tasks" in listed.out

    workers = [_worker(proj.root), _worker(proj.root)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    assert counts(db) == {1: 1000}  # every row exactly once: no range taken twice
    per_worker = dict(
        query(db, "SELECT worker, count(*) FROM migtools_backfill_range GROUP BY worker")
    )
    assert len(per_worker) == 2, per_worker  # both workers took ranges
    assert sum(per_worker.values()) == 40
    assert query(db, "SELECT state FROM migtools_backfill")[0][0] == "done"

    passed = proj.manage("migrate", "shop")
    assert passed.returncode == 0, passed.err
    listed = proj.manage("backfills")
    assert listed.out.splitlines()[1].split()[:4] == ["shop.0002_backfill", "done", "tasks", "1,000"]


def test_backfills_run_finishes_a_tasks_backfill_inline(tmp_path: Path) -> None:
    proj, db = backfill_project(
        tmp_path / "p", kwargs="batch_size=30", ensure=True, apps_extra=TASKS_SETTINGS
    )
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    assert proj.manage("migrate", "django_tasks_database").returncode == 0
    seed(db, "shop_item", 200)
    assert proj.manage("migrate", "shop").returncode == 1  # EnsureBackfilled refuses
    run = proj.manage("backfills", "--run", "shop.0002_backfill")
    assert run.returncode == 0, run.err
    assert "shop.0002_backfill: done, 200 rows." in run.out
    assert counts(db) == {1: 200}
    # The enqueued tasks find nothing left to claim: a worker run changes nothing.
    worker = _worker(proj.root)
    worker.communicate(timeout=120)
    assert worker.returncode == 0
    assert counts(db) == {1: 200}
    assert proj.manage("migrate", "shop").returncode == 0


def test_empty_table_is_done_at_once_with_tasks(tmp_path: Path) -> None:
    proj, db = backfill_project(tmp_path / "p", ensure=True, apps_extra=TASKS_SETTINGS)
    result = proj.manage("migrate")
    assert result.returncode == 0, result.err
    assert query(db, "SELECT state, rows FROM migtools_backfill") == [("done", 0)]
