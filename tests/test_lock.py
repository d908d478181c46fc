"""The migrate lock (``migtools.safety.lock``): a second ``migrate`` waits without holding a
snapshot or a blocked lock request, and says who holds the lock."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from migtools.safety.lock import ADVISORY_LOCK_NAME
from tests.safety_helpers import INITIAL, connect, migration, query, safe_project

FIRST = [("shop", "0001_initial")]


def _key(db: str) -> int:
    digest = hashlib.sha256(f"{ADVISORY_LOCK_NAME}:{db}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def test_waiting_migrate_holds_no_snapshot_and_names_the_holder(tmp_path: Path) -> None:
    proj, db = safe_project(tmp_path / "p")
    migration(proj, "0001_initial", [], INITIAL)
    env = {**os.environ, "PYTHONPATH": str(proj.root), "PYTHONWARNINGS": "ignore"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with connect(db) as holder:
        holder.execute("SET application_name = 'deploy-42'")
        holder.execute("SELECT pg_advisory_lock(%s)", (_key(db),))
        holder_pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "shop"],
            cwd=proj.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "Another migrate is running on this database" in first, first
        assert f"held by pid {holder_pid}, application_name 'deploy-42'" in first
        assert "client 127.0.0.1:" in first and "connected since" in first
        # While it waits: no blocked lock request, and its session holds no snapshot (a
        # concurrent index build of the first deploy would wait for that snapshot).
        samples = []
        for _ in range(15):
            samples.append(
                query(
                    db,
                    "SELECT count(*) FILTER (WHERE backend_xmin IS NOT NULL), "
                    "count(*) FILTER (WHERE backend_xid IS NOT NULL) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND pid <> %s",
                    (holder_pid,),
                )[0]
            )
            assert query(
                db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ) == [(0,)]
            time.sleep(0.1)
        # A poll may be caught mid-statement now and then; most samples see no snapshot.
        assert sum(1 for xmin, _xid in samples if xmin == 0) >= 12, samples
        assert all(xid == 0 for _xmin, xid in samples), samples
        assert proc.poll() is None
        assert query(db, "SELECT to_regclass('shop_item')") == [(None,)]
        holder.execute("SELECT pg_advisory_unlock(%s)", (_key(db),))
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Got the migrate lock after" in err
    assert query(db, "SELECT to_regclass('shop_item')::text") == [("shop_item",)]


def test_lock_is_released_after_migrate(tmp_path: Path) -> None:
    proj, db = safe_project(tmp_path / "p")
    migration(proj, "0001_initial", [], INITIAL)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert "Another migrate" not in result.err
    with connect(db) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_key(db),)).fetchone()
    assert row == (True,)
