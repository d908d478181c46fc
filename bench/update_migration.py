"""update_migration on a generated 20 apps x 250 migrations project with a merge conflict.

A feature branch adds a chain of two migrations to one app, main adds one to the same app; the
branch merges main and the lockfile conflicts. Each repetition re-creates that conflicted merge
(``git merge --abort`` + ``git merge main``, untimed), then times the whole process of
``manage.py update_migration`` next to ``manage.py diffsettings`` (Django's start-up floor),
interleaved, and prints the medians and the time beyond the floor. Target: <= 0.5 s beyond.

    .venv/bin/python bench/update_migration.py [--apps 20] [--migrations 250] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generate import Project, generate

TARGET_BEYOND = 0.5
APP_INDEX = 5


def _git(project: Project, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=project.root,
        env={**project.env, "GIT_EDITOR": "true"},
        capture_output=True,
        text=True,
        check=check,
    )


def _migration(label: str, name: str, parent: str, field: str) -> str:
    return (
        "from django.db import migrations, models\n\n"
        "from migtools import CheckedMigration\n\n\n"
        "class Migration(CheckedMigration):\n"
        "    is_post_deployment = False\n\n"
        "    dependencies = [\n"
        f'        ("{label}", "{parent}"),\n'
        "    ]\n\n"
        "    operations = [\n"
        "        migrations.AddField(\n"
        '            model_name="item",\n'
        f'            name="{field}",\n'
        "            field=models.IntegerField(default=0),\n"
        "        ),\n"
        "    ]\n"
    )


def make_conflict(project: Project) -> str:
    """Commit the lockfile, then a branch and main that both add migrations to one app."""
    label = project.apps[APP_INDEX]
    directory = project.root / label / "migrations"
    leaf = project.leaves[label]
    number = int(leaf.split("_")[0])
    project.manage("migrations_lockfile")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "lockfile")
    _git(project, "checkout", "-q", "-b", "feature")
    first = f"{number + 1:04d}_item_feature_a"
    second = f"{number + 2:04d}_item_feature_b"
    (directory / f"{first}.py").write_text(_migration(label, first, leaf, "feature_a"))
    (directory / f"{second}.py").write_text(_migration(label, second, first, "feature_b"))
    project.manage("migrations_lockfile")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "feature")
    _git(project, "checkout", "-q", "main")
    mainline = f"{number + 1:04d}_item_mainline"
    (directory / f"{mainline}.py").write_text(_migration(label, mainline, leaf, "mainline"))
    project.manage("migrations_lockfile")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "main")
    _git(project, "checkout", "-q", "feature")
    return label


def reconflict(project: Project) -> None:
    if (project.root / ".git" / "MERGE_HEAD").exists():
        _git(project, "merge", "--abort")
    merge = _git(project, "merge", "main", check=False)
    if "CONFLICT" not in merge.stdout:
        raise SystemExit(f"expected a lockfile conflict, got:\n{merge.stdout}{merge.stderr}")


CPU: dict[str, list[float]] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(project: Project, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = project.manage(*args, check=False)
    elapsed = time.perf_counter() - start
    CPU.setdefault(args[0], []).append(_children_cpu() - cpu)
    if proc.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return elapsed, proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--migrations", type=int, default=250)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    args = parser.parse_args(argv)

    from tests.pgserver import ensure_database_url

    os.environ["DATABASE_URL"] = ensure_database_url()
    with tempfile.TemporaryDirectory(prefix="migtools-bench-") as tmp:
        root = args.keep or Path(tmp) / "proj"
        project = generate(
            root, args.apps, args.migrations, git=True, cross_app_fks=True, overwrite=True
        )
        label = make_conflict(project)
        reconflict(project)
        timed(project, "diffsettings")  # warm-up: byte-code caches, page cache
        _t, first = timed(project, "update_migration")
        floor: list[float] = []
        ours: list[float] = []
        for _rep in range(args.reps):
            reconflict(project)
            floor.append(timed(project, "diffsettings")[0])
            elapsed, proc = timed(project, "update_migration")
            ours.append(elapsed)
            assert "Next: git merge --continue" in proc.stdout, proc.stdout
        check = project.manage("migrations_lockfile", "--check", check=False)
        if check.returncode != 0:
            raise SystemExit(f"lockfile check failed after update_migration:\n{check.stdout}")

    floor_median, ours_median = statistics.median(floor), statistics.median(ours)
    beyond = ours_median - floor_median
    print(
        f"update_migration on {args.apps} apps x {args.migrations} migrations "
        f"({args.apps * args.migrations} files), a 2-migration chain in {label} moved after "
        f"main's; median of {args.reps} runs, whole processes:"
    )
    print(f"  floor   manage.py diffsettings     {floor_median:7.3f} s")
    print(
        f"  ours    manage.py update_migration {ours_median:7.3f} s   "
        f"beyond the floor {beyond:7.3f} s (target <= {TARGET_BEYOND} s)"
    )
    # CPU time (user + system) of the same processes: on a shared, loaded machine wall time
    # mostly measures waiting for a core; CPU time does not
    cpu_floor = statistics.median(CPU["diffsettings"][1:])
    cpu_ours = statistics.median(CPU["update_migration"][1:])
    print(
        f"  cpu     diffsettings {cpu_floor:.3f} s, update_migration {cpu_ours:.3f} s, "
        f"beyond {cpu_ours - cpu_floor:.3f} s; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores"
    )
    print("First run's output:\n" + "".join(f"    {line}\n" for line in first.stdout.splitlines()))
    return 0 if beyond <= TARGET_BEYOND else 1


if __name__ == "__main__":
    sys.exit(main())
