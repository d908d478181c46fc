"""The tasks runner: the migration records the backfill's ranges and enqueues one Django Task
per range; two real ``db_worker`` processes (django-tasks' database backend) finish it, never
taking the same range; ``EnsureBackfilled`` refuses before and passes after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--batch",
            "--no-startup-delay",
            "--interval",
            "0.05",
        ],
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
    assert (
        "EnsureBackfilled(shop.0002_backfill) refuses to go on: shop.0002_backfill is running"
        in refused.err
    )
    applied = {r[0] for r in query(db, "SELECT name FROM django_migrations WHERE app = 'shop'")}
    assert applied == {"0001_initial", "0002_backfill"}
    assert counts(db) == {0: 1000}  # recorded and enqueued, nothing run in the migrate process
    assert query(db, "SELECT count(*) FROM migtools_backfill_range")[0][0] == 40
    tasks = "SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE task_path LIKE %s"
    assert query(db, tasks, ("%.run_backfill_range",))[0][0] == 40
    assert query(db, tasks, ("%.watch_backfill",))[0][0] == 1  # the lease check, booked once

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
    assert listed.out.splitlines()[1].split()[:4] == [
        "shop.0002_backfill",
        "done",
        "tasks",
        "1,000",
    ]


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


def _long_running_worker(root: Path) -> subprocess.Popen[str]:
    """A ``db_worker`` that keeps polling (stopped by the test), as in production."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "ignore"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--interval", "0.05"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


RUN_BEFORE_TASKS = '\nMigration.run_before = [("django_tasks_database", "0001_initial")]\n'


def test_backfill_in_the_deploy_that_creates_the_tasks_tables(tmp_path: Path) -> None:
    """The plan applies the backfill before the tasks backend's own migrations: the ranges are
    recorded in the plan, the tasks enqueued once it is applied."""
    proj, db = backfill_project(tmp_path / "p", kwargs="batch_size=50", apps_extra=TASKS_SETTINGS)
    path = proj.root / "shop" / "migrations" / "0002_backfill.py"
    path.write_text(path.read_text() + RUN_BEFORE_TASKS)
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    seed(db, "shop_item", 200)

    result = proj.manage("migrate")
    assert result.returncode == 0, result.err
    assert "Traceback" not in result.err
    out = result.out
    assert out.index("Applying shop.0002_backfill") < out.index(
        "Applying django_tasks_database.0001_initial"
    )
    assert "Enqueued the tasks of backfill(s) shop.0002_backfill (plan applied)." in out
    assert query(db, "SELECT state, enqueued FROM migtools_backfill") == [("running", True)]
    tasks = dict(
        query(
            db,
            "SELECT split_part(task_path, '.', -1), count(*) "
            "FROM django_tasks_database_dbtaskresult GROUP BY 1",
        )
    )
    assert tasks == {"run_backfill_range": 4, "watch_backfill": 1}

    worker = _worker(proj.root)
    output = worker.communicate(timeout=120)[0]
    assert worker.returncode == 0, output
    assert counts(db) == {1: 200}
    assert query(db, "SELECT state FROM migtools_backfill") == [("done",)]


def test_backfill_recorded_without_the_tasks_tables_is_enqueued_by_the_next_migrate(
    tmp_path: Path,
) -> None:
    proj, db = backfill_project(tmp_path / "p", kwargs="batch_size=50", apps_extra=TASKS_SETTINGS)
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    seed(db, "shop_item", 100)
    result = proj.manage("migrate", "shop")  # the tasks backend's tables are not there yet
    assert result.returncode == 1
    assert "Traceback" not in result.err
    assert (
        "Backfill shop.0002_backfill: recorded, but its tasks could not be enqueued" in result.err
    )
    assert "Run migrate again once the tasks backend works" in result.err
    assert query(db, "SELECT state, enqueued FROM migtools_backfill") == [("running", False)]

    result = proj.manage("migrate")
    assert result.returncode == 0, result.err
    assert "Enqueued the tasks of backfill(s) shop.0002_backfill" in result.out
    worker = _worker(proj.root)
    worker.communicate(timeout=120)
    assert counts(db) == {1: 100}


KILLABLE = """
import os as _os
from pathlib import Path as _Path

_MARKER = _Path(__file__).resolve().parents[2] / "stuck.pid"


def bump(apps, batch):
    if batch.filter(id=1).exists() and not _MARKER.exists():
        _MARKER.write_text(str(_os.getpid()))
        time.sleep(600)  # killed here, mid-range, its batch uncommitted
    batch.update(n=F("n") + 1)
"""


def test_a_killed_worker_range_is_re_enqueued_once_and_every_row_touched_once(
    tmp_path: Path,
) -> None:
    proj, db = backfill_project(
        tmp_path / "p",
        kwargs="batch_size=25",
        sleep=0.05,
        extra_code=KILLABLE,
        settings='MIGTOOLS_BACKFILL_LEASE = "2s"',
        apps_extra=TASKS_SETTINGS,
    )
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    seed(db, "shop_item", 200)
    result = proj.manage("migrate")
    assert result.returncode == 0, result.err

    workers = [_long_running_worker(proj.root) for _ in range(3)]
    try:
        marker = proj.root / "stuck.pid"
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        stuck = int(marker.read_text())
        assert stuck in [w.pid for w in workers]
        os.kill(stuck, signal.SIGKILL)

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if query(db, "SELECT state FROM migtools_backfill") == [("done",)]:
                break
            time.sleep(0.2)
        assert query(db, "SELECT state FROM migtools_backfill") == [("done",)]
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
        outputs = [w.communicate(timeout=60)[0] for w in workers]

    assert counts(db) == {1: 200}, outputs  # every row exactly once
    assert query(db, "SELECT seq, requeued FROM migtools_backfill_range WHERE requeued > 0") == [
        (0, 1)
    ]
    assert query(
        db,
        "SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE task_path LIKE %s",
        ("%run_backfill_range",),
    ) == [(9,)]  # 8 ranges, and the dead worker's range once more
    finished = dict(query(db, "SELECT worker, count(*) FROM migtools_backfill_range GROUP BY 1"))
    assert not any(w.endswith(f":{stuck}") for w in finished), finished
