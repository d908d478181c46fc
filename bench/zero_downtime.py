"""Zero-downtime load test: writers keep inserting/updating a big table while (a) plain Django
and (b) migtools apply the same migration; prints failed writes and the longest writer stall.

The migration (the union of the issue's and the guide's lists): add a nullable column, add a
column with db_default, add an index, add a foreign key, add a CHECK constraint, make a filled
column NOT NULL. It is written once as a ``CheckedMigration`` (``is_post_deployment = True``,
``atomic = False``): plain Django ignores those attributes and runs its stock SQL.

    python bench/zero_downtime.py --rows 8000000   # the guide's anchor (takes a few minutes)
    python bench/zero_downtime.py                  # default 2,000,000 rows

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
INSTALLED_APPS = [{migtools}"django.contrib.contenttypes", "django.contrib.auth", "bench_app"]
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


class Migration(CheckedMigration):
    is_post_deployment = False
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Ref", [("id", models.BigAutoField(primary_key=True))]),
        migrations.CreateModel(
            "Row",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("val", models.IntegerField(null=True)),
                ("ref_id_plain", models.BigIntegerField(null=True)),
            ],
        ),
    ]
"""

CHANGES = """\
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = True  # an index on a large table
    atomic = False  # lock-light DDL runs outside a transaction
    dependencies = [("bench_app", "0001_initial")]
    operations = [
        migrations.AddField("row", "note", models.TextField(null=True)),
        migrations.AddField("row", "flag", models.IntegerField(db_default=0)),
        migrations.AddIndex("row", models.Index(fields=["val"], name="row_val_idx")),
        migrations.AddField(
            "row", "ref", models.ForeignKey("bench_app.Ref", models.SET_NULL, null=True,
                                            db_index=False)
        ),
        migrations.AddConstraint(
            "row", models.CheckConstraint(condition=models.Q(val__gte=0), name="row_val_gte_0")
        ),
        migrations.AlterField("row", "val", models.IntegerField()),
    ]
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


def make_project(root: Path, db: str, migtools: bool) -> None:
    (root / "proj").mkdir(parents=True)
    (root / "proj" / "__init__.py").write_text("")
    engine = "migtools.db.backends.postgresql" if migtools else "django.db.backends.postgresql"
    (root / "proj" / "settings.py").write_text(
        SETTINGS.format(migtools='"migtools", ' if migtools else "", engine=engine, db=db)
    )
    (root / "manage.py").write_text(MANAGE)
    app = root / "bench_app"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    (app / "migrations" / "0001_initial.py").write_text(INITIAL)
    (app / "migrations" / "0002_changes.py").write_text(CHANGES)


def manage(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": f"{root}{os.pathsep}{ROOT}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True
    )


def writer(
    info: str, rows: int, stop: threading.Event, stats: Stats, lock: threading.Lock, interval: float
) -> None:
    with psycopg.connect(info, autocommit=True) as conn:
        while not stop.is_set():
            started = time.monotonic()
            try:
                if random.random() < 0.5:
                    conn.execute(
                        "INSERT INTO bench_app_row (val) VALUES (%s)", (random.randint(0, 1000),)
                    )
                else:
                    conn.execute(
                        "UPDATE bench_app_row SET val = %s WHERE id = %s",
                        (random.randint(0, 1000), random.randint(1, rows)),
                    )
                ok = True
                error = ""
            except psycopg.Error as exc:
                ok, error = False, str(exc).splitlines()[0]
            took = time.monotonic() - started
            with lock:
                stats.longest = max(stats.longest, took)
                if ok:
                    stats.ok += 1
                else:
                    stats.failed += 1
                    if len(stats.errors) < 3:
                        stats.errors.append(error)
            time.sleep(max(0.0, interval - took))


def run_side(
    url: str, rows: int, threads: int, migtools: bool, interval: float
) -> tuple[Stats, float, str]:
    db = f"bench_zd_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    info = conninfo(url, db)
    root = Path(tempfile.mkdtemp(prefix="zd_")) / "p"
    make_project(root, db, migtools)
    result = manage(root, url, "migrate", "bench_app", "0001_initial", "-v", "0")
    if result.returncode:
        raise SystemExit(result.stderr)
    t0 = time.monotonic()
    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute("INSERT INTO bench_app_ref (id) SELECT g FROM generate_series(1, 1000) g")
        conn.execute(
            "INSERT INTO bench_app_row (val) SELECT g %% 1000 FROM generate_series(1, %s) g",
            (rows,),
        )
        conn.execute("VACUUM ANALYZE bench_app_row")
    fill = time.monotonic() - t0
    stats, lock, stop = Stats(), threading.Lock(), threading.Event()
    workers = [
        threading.Thread(target=writer, args=(info, rows, stop, stats, lock, interval))
        for _ in range(threads)
    ]
    for w in workers:
        w.start()
    time.sleep(1.0)
    with lock:
        stats.longest = 0.0  # warm-up done: measure the migration window only
    started = time.monotonic()
    result = manage(root, url, "migrate", "bench_app", "-v", "0")
    took = time.monotonic() - started
    time.sleep(0.5)
    stop.set()
    for w in workers:
        w.join()
    if result.returncode:
        stats.errors.append("migrate failed: " + result.stderr.strip().splitlines()[-1])
    with psycopg.connect(conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
    return stats, took, f"fill {fill:.1f}s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--rows",
        type=int,
        default=2_000_000,
        help="rows in the table (the guide's anchor is 8,000,000)",
    )
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--interval",
        type=float,
        default=0.01,
        help="seconds between one writer's statements (steady rate)",
    )
    parser.add_argument("--only", choices=["django", "migtools"])
    args = parser.parse_args(argv)
    url = ensure_database_url()
    print(
        f"{args.rows:,} rows, {args.threads} writer threads, one write per "
        f"{args.interval * 1000:.0f} ms each"
    )
    sides = [s for s in ("django", "migtools") if args.only in (None, s)]
    for side in sides:
        stats, took, fill = run_side(
            url, args.rows, args.threads, side == "migtools", args.interval
        )
        print(
            f"{side:>9}: migrate {took:6.2f}s  writes ok {stats.ok:6d}  failed "
            f"{stats.failed:4d}  longest writer stall {stats.longest:6.3f}s  ({fill})"
        )
        for error in stats.errors:
            print(f"           {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
