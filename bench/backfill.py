"""Backfill under load: 4 writer threads insert and update random rows of a 2M-row table while
a data migration updates every row, (a) plain Django: ``RunPython`` with one ``update()``,
(b) migtools: ``RunBackfill(batch_size=5000)``. Prints, per side, the migrate time, the writes
that failed and the longest writer stall, then the ratio of the two migrate times.

Targets (GUIDE.md, "Measuring speed", backfill anchor): RunBackfill has 0 failed writes, a
longest writer stall <= 0.1 s and takes at most 2x the single UPDATE (throttling off).

    python bench/backfill.py                  # 2,000,000 rows
    python bench/backfill.py --rows 200000    # a quick look

Each side gets a fresh database on the same server (DATABASE_URL, else a throwaway cluster).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dj_database_url  # noqa: E402
import psycopg  # noqa: E402

from tests.pgserver import ensure_database_url  # noqa: E402

SETTINGS = """\
import os
import dj_database_url

SECRET_KEY = "bench"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [{migtools}"django.contrib.contenttypes", "bench_app"]
DATABASES = {{"default": dj_database_url.parse(os.environ["DATABASE_URL"])}}
DATABASES["default"]["ENGINE"] = {engine!r}
DATABASES["default"]["NAME"] = {db!r}
MIGTOOLS_APPS = ["bench_app"]
SILENCED_SYSTEM_CHECKS = ["migtools.W001"]
"""

MANAGE = """\
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""

INITIAL = """\
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):  # plain Django ignores what CheckedMigration adds
    is_post_deployment = False
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Row",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("val", models.IntegerField()),
                ("doubled", models.IntegerField(null=True)),
            ],
        ),
    ]
"""

PLAIN = """\
from django.db import migrations
from django.db.models import F

from migtools import CheckedMigration


def fill(apps, schema_editor):
    apps.get_model("bench_app", "Row").objects.update(doubled=F("val") * 2)


class Migration(CheckedMigration):
    is_post_deployment = True
    dependencies = [("bench_app", "0001_initial")]
    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
"""

BACKFILL = """\
from django.db.models import F

from migtools import CheckedMigration
from migtools.operations import RunBackfill


def fill(apps, batch):
    batch.update(doubled=F("val") * 2)


class Migration(CheckedMigration):
    is_post_deployment = True
    atomic = False
    dependencies = [("bench_app", "0001_initial")]
    operations = [RunBackfill("bench_app.Row", fill, batch_size={batch_size})]
"""


@dataclass
class Stats:
    ok: int = 0
    failed: int = 0
    longest: float = 0.0
    errors: list[str] = field(default_factory=list)


def conninfo(url: str, db: str) -> str:
    cfg = dj_database_url.parse(url)
    return psycopg.conninfo.make_conninfo(
        host=cfg["HOST"],
        port=cfg["PORT"] or 5432,
        user=cfg["USER"],
        password=cfg["PASSWORD"] or None,
        dbname=db,
    )


def project(root: Path, db: str, ours: bool, batch_size: int) -> None:
    (root / "proj").mkdir(parents=True)
    (root / "proj" / "__init__.py").write_text("")
    engine = "migtools.db.backends.postgresql" if ours else "django.db.backends.postgresql"
    (root / "proj" / "settings.py").write_text(
        SETTINGS.format(migtools='"migtools", ' if ours else "", engine=engine, db=db)
    )
    (root / "manage.py").write_text(MANAGE)
    app = root / "bench_app"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    (app / "migrations" / "0001_initial.py").write_text(INITIAL)
    second = BACKFILL.format(batch_size=batch_size) if ours else PLAIN
    (app / "migrations" / "0002_fill.py").write_text(second)


def manage(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": f"{root}{os.pathsep}{ROOT}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True
    )


def write_loop(
    info: str, rows: int, stop: threading.Event, stats: Stats, lock: threading.Lock
) -> None:
    """Inserts and updates of random rows, one statement every 10 ms, each timed."""
    with psycopg.connect(info, autocommit=True) as conn:
        while not stop.is_set():
            started = time.monotonic()
            error = ""
            try:
                if random.random() < 0.5:
                    conn.execute(
                        "INSERT INTO bench_app_row (val) VALUES (%s)", (random.randint(0, 999),)
                    )
                else:
                    conn.execute(
                        "UPDATE bench_app_row SET val = %s WHERE id = %s",
                        (random.randint(0, 999), random.randint(1, rows)),
                    )
            except psycopg.Error as exc:
                error = str(exc).splitlines()[0]
            took = time.monotonic() - started
            with lock:
                stats.longest = max(stats.longest, took)
                if error:
                    stats.failed += 1
                    if len(stats.errors) < 3:
                        stats.errors.append(error)
                else:
                    stats.ok += 1
            time.sleep(max(0.0, 0.01 - took))


def side(
    url: str, rows: int, threads: int, ours: bool, batch_size: int
) -> tuple[Stats, float, int]:
    db = f"bench_bf_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    info = conninfo(url, db)
    root = Path(tempfile.mkdtemp(prefix="bf_")) / "p"
    project(root, db, ours, batch_size)
    try:
        result = manage(root, url, "migrate", "bench_app", "0001_initial", "-v", "0")
        if result.returncode:
            raise SystemExit(result.stderr)
        with psycopg.connect(info, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO bench_app_row (val) SELECT g %% 1000 FROM generate_series(1, %s) g",
                (rows,),
            )
            conn.execute("VACUUM ANALYZE bench_app_row")
        stats, lock, stop = Stats(), threading.Lock(), threading.Event()
        workers = [
            threading.Thread(target=write_loop, args=(info, rows, stop, stats, lock))
            for _ in range(threads)
        ]
        for w in workers:
            w.start()
        time.sleep(1.0)
        with lock:
            stats.longest = 0.0  # warmed up: measure the migration window only
        started = time.monotonic()
        result = manage(root, url, "migrate", "bench_app", "-v", "0")
        took = time.monotonic() - started
        time.sleep(0.5)
        stop.set()
        for w in workers:
            w.join()
        if result.returncode:
            stats.errors.append("migrate failed: " + result.stderr.strip().splitlines()[-1])
            stats.failed += 1
        with psycopg.connect(info, autocommit=True) as conn:
            missing = conn.execute(
                "SELECT count(*) FROM bench_app_row WHERE id <= %s AND doubled IS NULL", (rows,)
            ).fetchone()
        return stats, took, int(missing[0]) if missing else -1
    finally:
        with psycopg.connect(conninfo(url, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args(argv)
    url = ensure_database_url()
    print(f"{args.rows:,} rows, {args.threads} writer threads (inserts + updates of random rows)")
    results = {}
    for name, ours in (("django", False), ("migtools", True)):
        stats, took, missing = side(url, args.rows, args.threads, ours, args.batch_size)
        results[name] = (stats, took)
        label = "RunPython + update()" if not ours else f"RunBackfill({args.batch_size})"
        print(
            f"{name:>9} {label:>22}: migrate {took:6.2f}s  writes ok {stats.ok:6d}  failed "
            f"{stats.failed:3d}  longest writer stall {stats.longest:6.3f}s  rows left {missing}"
        )
        for error in stats.errors:
            print(f"           {error}")
    plain, ours_ = results["django"], results["migtools"]
    ratio = ours_[1] / plain[1]
    met = ours_[0].failed == 0 and ours_[0].longest <= 0.1 and ratio <= 2.0
    print(
        f"RunBackfill / single UPDATE: {ratio:.2f}x (target <= 2x); stall "
        f"{ours_[0].longest:.3f}s vs {plain[0].longest:.3f}s (target <= 0.1s, 0 failed): "
        f"{'target met' if met else 'target MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
