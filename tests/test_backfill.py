"""RunBackfill inline, end to end through ``manage.py migrate`` on a real database: every row
visited once, resumable after SIGKILL, atomic migrations and bad keys refused, timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.backfill_helpers import backfill_project, counts, seed
from tests.safety_helpers import query


def _progress(db: str) -> tuple[object, ...]:
    rows = query(
        db,
        "SELECT name, state, rows, batches, last_key, runner, last_error FROM migtools_backfill",
    )
    assert len(rows) == 1, rows
    return rows[0]


def test_every_row_once_in_batches_with_progress_recorded(tmp_path: Path) -> None:
    proj, db = backfill_project(tmp_path / "p", kwargs="batch_size=100")
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    seed(db, "shop_item", 1050)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert counts(db) == {1: 1050}
    name, state, rows, nbatches, last_key, runner, error = _progress(db)
    assert (name, state, rows, nbatches, runner, error) == (
        "shop.0002_backfill",
        "done",
        1050,
        11,
        "inline",
        None,
    )
    assert last_key == str(query(db, "SELECT max(id) FROM shop_item")[0][0])
    # Not a TTY: plain log lines, the last one saying done.
    assert "backfill shop.0002_backfill: 1,050 rows" in result.err
    assert result.err.rstrip().endswith(": done")
    listed = proj.manage("backfills")
    assert listed.returncode == 0, listed.err
    lines = listed.out.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "RUNNER", "ROWS", "RATE", "LAST", "ERROR"]
    assert lines[1].split()[:4] == ["shop.0002_backfill", "done", "inline", "1,050"]


def test_sigkill_mid_backfill_then_migrate_resumes_each_row_exactly_once(tmp_path: Path) -> None:
    proj, db = backfill_project(tmp_path / "p", kwargs="batch_size=50", sleep=0.02)
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    seed(db, "shop_item", 3000)
    env = {**os.environ, "PYTHONPATH": str(proj.root), "PYTHONWARNINGS": "ignore"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "shop"],
        cwd=proj.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = (
                query(db, "SELECT to_regclass('migtools_backfill') IS NOT NULL")[0][0]
                and query(db, "SELECT coalesce(max(rows), 0) FROM migtools_backfill")[0][0]
            )
            if done and int(done) >= 600:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = counts(db)
    assert set(partial) == {0, 1}, partial  # killed in the middle, nothing visited twice
    _, state, rows, *_ = _progress(db)
    assert state == "running"  # the killed run could not say otherwise...
    assert partial[1] == rows  # ...but its progress matches the committed batches exactly
    listed = proj.manage("backfills")
    assert "pending (interrupted after key" in listed.out  # nobody holds its run lock
    assert (
        query(db, "SELECT count(*) FROM django_migrations WHERE name = '0002_backfill'")[0][0] == 0
    )
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert counts(db) == {1: 3000}
    _, state, rows, *_ = _progress(db)
    assert (state, rows) == ("done", 3000)


def test_uuid_primary_key(tmp_path: Path) -> None:
    proj, db = backfill_project(tmp_path / "p", model="Token", kwargs="batch_size=70")
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    seed(db, "shop_token", 500)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert counts(db, "shop_token") == {1: 500}
    assert _progress(db)[2:4] == (500, 8)


def test_filter_restricts_every_batch(tmp_path: Path) -> None:
    proj, db = backfill_project(
        tmp_path / "p",
        kwargs="batch_size=30, filter=models.Q(note__isnull=True)",
        extra_code="from django.db import models\n",
    )
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    seed(db, "shop_item", 200)
    query(db, "UPDATE shop_item SET note = 'skip' WHERE id %% 4 = 0")
    assert proj.manage("migrate", "shop").returncode == 0
    assert query(
        db, "SELECT note IS NULL, n, count(*) FROM shop_item GROUP BY 1, 2 ORDER BY 1"
    ) == [
        (False, 0, 50),
        (True, 1, 150),
    ]


def test_atomic_migration_refused_before_anything_runs(tmp_path: Path) -> None:
    proj, db = backfill_project(tmp_path / "p", atomic=True)
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    seed(db, "shop_item", 10)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1
    assert "Traceback" not in result.err
    # migrate's preflight refuses it before anything runs (the operation's own refusal is the
    # backstop), naming the migration and the rule, with the recipe.
    assert "shop.0002_backfill" in result.err
    assert "[backfill-in-atomic-migration]" in result.err, result.err
    assert "Set `atomic = False` on the migration" in result.err
    assert counts(db) == {0: 10}


def test_statement_timeout_bounds_every_batch_and_fails_clearly(tmp_path: Path) -> None:
    proj, db = backfill_project(
        tmp_path / "p",
        kwargs="batch_size=100",
        extra_code="""
        from django.db import connection


        def slow(apps, batch):
            with connection.cursor() as c:
                c.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
                seen = c.fetchone()
            batch.update(note=f"{seen[0]} {seen[1]}")
            if batch.filter(id__gt=150).exists():
                with connection.cursor() as c:
                    c.execute("SELECT pg_sleep(1)")


        bump = slow
        """,
        settings='MIGTOOLS_STATEMENT_TIMEOUT = "300ms"\nMIGTOOLS_LOCK_TIMEOUT = "100ms"',
    )
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    seed(db, "shop_item", 300)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1
    assert "Traceback" not in result.err
    assert "the batch after key 100 failed: the batch hit statement_timeout (300ms)" in result.err
    # The first batch is committed, with the timeouts of a batch transaction; the second not.
    assert query(db, "SELECT note, count(*) FROM shop_item GROUP BY 1 ORDER BY 1") == [
        ("300ms 100ms", 100),
        (None, 200),
    ]
    _, state, rows, _, last_key, _, error = _progress(db)
    assert (state, rows, last_key) == ("failed", 100, "100")
    assert "statement_timeout" in str(error)
    listed = proj.manage("backfills")
    assert "failed" in listed.out and "statement_timeout" in listed.out


def test_backfills_on_empty_database_and_unknown_names(tmp_path: Path) -> None:
    proj, _db = backfill_project(tmp_path / "p")
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    listed = proj.manage("backfills")
    assert (listed.returncode, listed.out.strip()) == (0, "No backfills recorded.")
    missing = proj.manage("backfills", "--run", "shop.nope")
    assert missing.returncode == 1
    assert "No backfill named 'shop.nope' on database 'default'" in missing.err
    assert "Traceback" not in missing.err
    bad = proj.manage("backfills", "--database", "nope")
    assert bad.returncode == 2 and "Unknown database alias 'nope'" in bad.err


def test_reverse_walks_batches_and_forgets_progress(tmp_path: Path) -> None:
    proj, db = backfill_project(
        tmp_path / "p",
        kwargs="batch_size=40, reverse=unbump",
        extra_code="""
        def unbump(apps, batch):
            batch.update(n=F("n") - 1)
        """,
    )
    assert proj.manage("migrate", "shop", "0001").returncode == 0
    seed(db, "shop_item", 100)
    assert proj.manage("migrate", "shop").returncode == 0
    assert counts(db) == {1: 100}
    back = proj.manage("migrate", "shop", "0001")
    assert back.returncode == 0, back.err
    assert counts(db) == {0: 100}
    assert query(db, "SELECT count(*) FROM migtools_backfill")[0][0] == 0
    again = proj.manage("migrate", "shop")
    assert again.returncode == 0
    assert counts(db) == {1: 100}


def test_backfills_with_the_database_down_is_one_line(tmp_path: Path) -> None:
    proj, _db = backfill_project(
        tmp_path / "p", settings='DATABASES["default"].update(HOST="127.0.0.1", PORT="1")'
    )
    result = proj.manage("backfills")
    assert result.returncode == 1
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert result.err.startswith("CommandError: Database 'default' (name ")
    assert "host 127.0.0.1, port 1) is unreachable: " in result.err
