"""Benchmark: ``migrate`` of an empty database, plain Django against migtools with every app
baselined (issue 21: "judge only what is checked"), in one run on the same server.

    python bench/migrate_baseline.py [--apps 20] [--migrations 60] [--reps 3] [--keep DIR]
    python bench/migrate_baseline.py --one-new [--apps 20] [--migrations 250] [--reps 5]

On a generated project (bench/generate.py: ``--apps`` x ``--migrations`` AddField chains with
cross-app ForeignKeys, contenttypes and auth), each repetition creates fresh databases and runs
``manage.py migrate -v 0`` as a whole process, interleaved:

- plain: Django alone (``migtools`` removed from ``INSTALLED_APPS``, Django's ENGINE);
- ours: migtools installed, every app baselined at its leaf (``MIGTOOLS_BASELINE``), Django's
  ENGINE;
- ours, migtools ENGINE: the same with ``migtools.db.backends.postgresql``;
- ours, not baselined (for information, one run): every migration checked and judged.

Prints the median of each and the ratio to plain (whole process: ``migrate`` dwarfs Django's
start-up here). Target: ours <= 1.05x plain.

``--one-new`` (issue 18): a database migrated to the whole history is kept as a template; one
migration (an AddField) is added to the first app, and each repetition clones the template and
runs ``migrate`` of that one migration: plain Django against migtools with nothing baselined
(the new migration judged by the preflight), with the state cache (warm: the warm-up run stored
it) and without it (``MIGTOOLS_STATE_CACHE=0``). Target: ours <= 1.2x plain.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.generate import Project, generate  # noqa: E402
from tests.pgserver import ensure_database_url  # noqa: E402

VARIANTS = """\
import os

from benchsite.settings import *  # noqa: F403

DATABASES["default"]["NAME"] = os.environ["BENCH_DB"]  # noqa: F405
VARIANT = os.environ["BENCH_VARIANT"]
if VARIANT == "plain":
    INSTALLED_APPS = [a for a in INSTALLED_APPS if a != "migtools"]  # noqa: F405
else:
    SILENCED_SYSTEM_CHECKS = ["migtools.W001"]
    if VARIANT != "unbaselined":
        MIGTOOLS_BASELINE = {LEAVES!r}
    if VARIANT == "engine":
        DATABASES["default"]["ENGINE"] = "migtools.db.backends.postgresql"  # noqa: F405
"""

NAMES = {
    "plain": "plain Django",
    "ours": "migtools, baselined",
    "engine": "migtools ENGINE, baselined",
    "unbaselined": "migtools, nothing baselined",
}


def create_database(url: str, template: str | None = None) -> str:
    name = f"bench_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    return name


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def run(
    project: Project,
    url: str,
    variant: str,
    template: str | None = None,
    extra: dict[str, str] | None = None,
) -> tuple[float, int, str]:
    db = create_database(url, template)
    env = {
        **project.env,
        "DJANGO_SETTINGS_MODULE": "benchsite.settings_variants",
        "BENCH_DB": db,
        "BENCH_VARIANT": variant,
        **(extra or {}),
    }
    start = time.perf_counter()
    proc = subprocess.run(
        [project.python, str(project.manage_py), "migrate", "-v", "0"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    drop_database(url, db)
    return wall, proc.returncode, (proc.stdout + proc.stderr).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--migrations", type=int, default=60, help="migrations per app")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate into DIR and leave it there")
    parser.add_argument("--no-unbaselined", action="store_true")
    parser.add_argument("--one-new", action="store_true", help="migrate one new migration")
    args = parser.parse_args(argv)
    if args.one_new:
        return one_new(args)

    url = ensure_database_url()
    admin = url.rsplit("/", 1)[0] + "/postgres"
    tmp = Path(tempfile.mkdtemp(prefix="migtools_bench_migrate_"))
    root = args.keep or tmp / "proj"
    project = generate(
        root, args.apps, args.migrations, cross_app_fks=True, database_url=url, overwrite=True
    )
    (project.root / "benchsite" / "settings_variants.py").write_text(
        VARIANTS.replace("{LEAVES!r}", repr(project.leaves))
    )
    subprocess.run(
        [project.python, "-m", "compileall", "-q", str(project.root)],
        env=project.env,
        check=True,
        capture_output=True,
    )
    total = project.migration_count + 30  # contenttypes and auth, roughly
    print(f"migrate from empty: {project.migration_count} project migrations (+ contrib), ")
    print(f"{args.reps} interleaved repetitions, median of whole processes")
    variants = ["plain", "ours", "engine"]
    times: dict[str, list[float]] = {v: [] for v in variants}
    for v in variants:  # warm-up: caches, the server's catalog
        _wall, rc, out = run(project, admin, v)
        if rc:
            print(f"{NAMES[v]}: exit {rc}\n{out[-2000:]}", file=sys.stderr)
            return 1
    for _ in range(args.reps):
        for v in variants:
            wall, rc, out = run(project, admin, v)
            if rc:
                print(f"{NAMES[v]}: exit {rc}\n{out[-2000:]}", file=sys.stderr)
                return 1
            times[v].append(wall)
    plain = statistics.median(times["plain"])
    for v in variants:
        median = statistics.median(times[v])
        spread = ", ".join(f"{t:.2f}" for t in times[v])
        print(f"  {NAMES[v]:<30} {median:7.2f} s  ({median / plain:5.3f}x plain)  [{spread}]")
    if not args.no_unbaselined:
        wall, rc, out = run(project, admin, "unbaselined")
        verdict = "applied" if rc == 0 else f"exit {rc} (refused: {out.splitlines()[-1][:100]})"
        print(
            f"  {NAMES['unbaselined']:<30} {wall:7.2f} s  ({wall / plain:5.3f}x plain), {verdict}"
        )
    ours = max(statistics.median(times[v]) for v in ("ours", "engine"))
    verdict = "OK" if ours <= 1.05 * plain else "ABOVE TARGET"
    print(f"target: baselined <= 1.05x plain: {ours / plain:.3f}x, {verdict} ({total} migrations)")
    return 0


ONE_NEW = {
    "plain": ("plain", {}),
    "ours": ("unbaselined", {}),
    "ours, no state cache": ("unbaselined", {"MIGTOOLS_STATE_CACHE": "0"}),
}


def one_new(args: argparse.Namespace) -> int:
    """``--one-new``: see the module docstring."""
    from bench.generate import _migration_source, migration_name

    url = ensure_database_url()
    admin = url.rsplit("/", 1)[0] + "/postgres"
    tmp = Path(tempfile.mkdtemp(prefix="migtools_bench_migrate1_"))
    root = args.keep or tmp / "proj"
    migrations = args.migrations if args.migrations != 60 else 250
    project = generate(
        root, args.apps, migrations, cross_app_fks=True, database_url=url, overwrite=True
    )
    (project.root / "benchsite" / "settings_variants.py").write_text(
        VARIANTS.replace("{LEAVES!r}", repr(project.leaves))
    )
    template = create_database(admin)
    env = {
        **project.env,
        "DJANGO_SETTINGS_MODULE": "benchsite.settings_variants",
        "BENCH_DB": template,
        "BENCH_VARIANT": "plain",
    }
    start = time.perf_counter()
    subprocess.run(
        [project.python, str(project.manage_py), "migrate", "-v", "0"],
        cwd=project.root,
        env=env,
        check=True,
        capture_output=True,
    )
    print(f"history migrated into the template in {time.perf_counter() - start:.1f} s")
    label = project.apps[0]
    number = migrations + 1
    new = project.root / label / "migrations" / f"{migration_name(number)}.py"
    new.write_text(_migration_source(label, number, project.leaves[label], None, None))
    subprocess.run(
        [project.python, "-m", "compileall", "-q", str(project.root)],
        env=project.env,
        check=True,
        capture_output=True,
    )
    try:
        times: dict[str, list[float]] = {v: [] for v in ONE_NEW}
        for name, (variant, extra) in ONE_NEW.items():  # warm-up; stores the cached state
            _wall, rc, out = run(project, admin, variant, template, extra)
            if rc:
                print(f"{name}: exit {rc}\n{out[-2000:]}", file=sys.stderr)
                return 1
        for _ in range(args.reps):
            for name, (variant, extra) in ONE_NEW.items():
                wall, rc, out = run(project, admin, variant, template, extra)
                if rc:
                    print(f"{name}: exit {rc}\n{out[-2000:]}", file=sys.stderr)
                    return 1
                times[name].append(wall)
    finally:
        drop_database(admin, template)
    print(f"migrate of one new migration on {project.migration_count} (+ contrib), ")
    print(f"{args.reps} interleaved repetitions, median of whole processes")
    plain = statistics.median(times["plain"])
    for name in ONE_NEW:
        median = statistics.median(times[name])
        spread = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"  {name:<22} {median:7.2f} s  ({median / plain:5.3f}x plain)  [{spread}]")
    ours = statistics.median(times["ours"])
    verdict = "OK" if ours <= 1.2 * plain else "ABOVE TARGET"
    print(f"target: ours <= 1.2x plain: {ours / plain:.3f}x, {verdict}")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
