"""The squash lifecycle on a generated app of 500 migrations (issue: the squash lifecycle).

One app, ``app00``, of N migrations (``0001_initial`` + AddField chain) on PostgreSQL. Steps:
``squashmigrations app00 N`` (all of them, kept side by side), then timed, interleaved with the
floor (``manage.py diffsettings``, Django's start-up): ``verify_squashes --offline`` (project
states) and ``verify_squashes`` (also both paths on two scratch databases, catalogs compared).
Then what test-database creation runs, ``migrate`` from an empty database, before the squash,
with the squash (replaced files still present) and after ``prune_squashed`` (timed once too).

    .venv/bin/python bench/squash.py [--migrations 500] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generate import Project, generate

from tests.pgserver import ensure_database_url


def timed(project: Project, *args: str) -> float:
    start = time.perf_counter()
    result = project.manage(*args, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def fresh_database(project: Project, name: str) -> None:
    import psycopg

    url = ensure_database_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = url.rsplit("/", 1)[0]
    project.env["DATABASE_URL"] = f"{base}/{name}"


def migrate_from_empty(project: Project) -> float:
    fresh_database(project, "bench_squash")
    return timed(project, "migrate")


def git(project: Project, *args: str) -> None:
    subprocess.run(
        ["git", *args], cwd=project.root, env=project.env, check=True, capture_output=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--migrations", type=int, default=500)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    ensure_database_url()
    with tempfile.TemporaryDirectory() as tmp:
        project = generate(Path(tmp) / "proj", apps=1, migrations=args.migrations, git=True)
        label = project.apps[0]
        project.manage("migrations_lockfile")
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "lockfile")
        before = migrate_from_empty(project)
        last = project.leaves[label]
        project.manage("squashmigrations", label, last, "--noinput")
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "squash")

        times: dict[str, list[float]] = {"floor": [], "offline": [], "database": []}
        commands = {
            "floor": ("diffsettings",),
            "offline": ("verify_squashes", "--offline"),
            "database": ("verify_squashes",),
        }
        for command in commands.values():  # warm-up (byte-code caches)
            timed(project, *command)
        for _ in range(args.reps):
            for name, command in commands.items():
                times[name].append(timed(project, *command))
        with_squash = migrate_from_empty(project)
        start = time.perf_counter()
        result = project.manage("prune_squashed", check=False)
        prune = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(result.stdout + result.stderr)
        after = migrate_from_empty(project)

    floor = statistics.median(times["floor"])
    print(
        f"verify_squashes on one app of {args.migrations} migrations squashed into one "
        f"(median of {args.reps}, whole processes, PostgreSQL):"
    )
    print(f"  floor    manage.py diffsettings                 {floor:7.2f} s")
    for name, shown in (("offline", "verify_squashes --offline"), ("database", "verify_squashes")):
        median = statistics.median(times[name])
        print(
            f"  {name:8} manage.py {shown:28} {median:7.2f} s   beyond the floor "
            f"{median - floor:7.2f} s"
        )
    print("migrate from an empty database (what test-database creation runs), once each:")
    print(f"  before the squash                      {before:7.2f} s")
    print(f"  with the squash (replaced files kept)  {with_squash:7.2f} s")
    print(f"  after prune_squashed                   {after:7.2f} s")
    print(f"  prune_squashed itself                  {prune:7.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
