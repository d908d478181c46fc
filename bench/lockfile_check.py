"""Lockfile check speed: ``migrations_lockfile --check`` against ``makemigrations --check``.

On a generated project (default 20 apps x 250 migrations, PostgreSQL), times whole
``manage.py`` processes, interleaved, several repetitions each (median):

- ``diffsettings``: Django's start-up floor (``django.setup()`` and nothing else);
- ``migrations_lockfile --check``: migtools' check (ours);
- ``makemigrations --check --dry-run``: the peer, Django's own command (run with the project's
  settings minus ``migtools`` in INSTALLED_APPS, so migtools' wrapper does not add its work),
  with its own floor measured the same way;
- for information, ``makemigrations --check --dry-run`` through migtools' wrapper.

Prints whole-process times, the time beyond the floor and the ratio beyond the floor
(target: at least 10x, issue 2).

    python bench/lockfile_check.py [--apps 20] [--migrations 250] [--reps 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generate import Project, generate

from tests.pgserver import ensure_database_url

TARGET = 10.0
PLAIN_SETTINGS = "settings_django"


@dataclass
class Case:
    label: str
    args: tuple[str, ...]
    settings: str
    times: list[float] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def run_once(project: Project, case: Case) -> float:
    env = {**project.env, "DJANGO_SETTINGS_MODULE": case.settings, **case.extra_env}
    start = time.perf_counter()
    proc = subprocess.run(
        [project.python, str(project.manage_py), *case.args],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"{case.label}: `manage.py {' '.join(case.args)}` exited {proc.returncode}:\n"
            f"{proc.stdout}{proc.stderr}"
        )
    return elapsed


def write_plain_settings(project: Project) -> str:
    """A settings module for the peer: the project's settings without migtools installed."""
    package = project.settings_module.rsplit(".", 1)[0]
    path = project.root / package / f"{PLAIN_SETTINGS}.py"
    path.write_text(
        f"from {project.settings_module} import *  # noqa: F403\n\n"
        'INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "migtools"]  # noqa: F405\n',
        encoding="utf-8",
    )
    return f"{package}.{PLAIN_SETTINGS}"


def bench(project: Project, reps: int) -> int:
    plain = write_plain_settings(project)
    ours_settings = project.settings_module
    project.manage("migrations_lockfile")

    floor = Case("floor (diffsettings)", ("diffsettings",), ours_settings)
    ours = Case("migrations_lockfile --check", ("migrations_lockfile", "--check"), ours_settings)
    cold = Case(
        "migrations_lockfile --check, parse cache off",
        ("migrations_lockfile", "--check"),
        ours_settings,
        extra_env={"MIGTOOLS_GRAPH_CACHE": "0"},
    )
    floor_plain = Case("floor, Django alone (diffsettings)", ("diffsettings",), plain)
    peer = Case(
        "makemigrations --check --dry-run (Django)",
        ("makemigrations", "--check", "--dry-run"),
        plain,
    )
    wrapper = Case(
        "makemigrations --check --dry-run (migtools wrapper)",
        ("makemigrations", "--check", "--dry-run"),
        ours_settings,
    )
    cases = [floor, ours, cold, floor_plain, peer, wrapper]
    for case in cases:  # warm-up: byte-code caches, OS file cache, exit codes checked
        run_once(project, case)
    for _ in range(reps):  # interleaved, so drift hits every case alike
        for case in cases:
            case.times.append(run_once(project, case))

    print(
        f"{len(project.apps)} apps x {project.migrations_per_app} migrations "
        f"({project.migration_count} files), median of {reps} runs, whole processes:"
    )
    width = max(len(c.label) for c in cases)
    for case, base in (
        (floor, None),
        (ours, floor),
        (cold, floor),
        (floor_plain, None),
        (peer, floor_plain),
        (wrapper, floor),
    ):
        beyond = "" if base is None else f"   beyond the floor {case.median - base.median:7.3f} s"
        print(f"  {case.label:<{width}}  {case.median:7.3f} s{beyond}")

    ours_beyond = ours.median - floor.median
    peer_beyond = peer.median - floor_plain.median
    whole = peer.median / ours.median
    if ours_beyond <= 0.005:
        print(
            f"  ours is within noise of the floor ({ours_beyond * 1000:+.0f} ms); "
            f"ratio beyond the floor > {peer_beyond / 0.005:.0f}x"
        )
        ratio = float("inf")
    else:
        ratio = peer_beyond / ours_beyond
        print(f"  ratio beyond the floor: {ratio:.1f}x (whole process {whole:.1f}x)")
    cold_beyond = max(cold.median - floor.median, 0.005)
    print(f"  with the parse cache off (every file parsed): {peer_beyond / cold_beyond:.1f}x")
    status = "met" if ratio >= TARGET else "NOT met"
    print(f"  target >= {TARGET:.0f}x beyond the floor: {status}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--migrations", type=int, default=250, help="migrations per app")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="generate into DIR and leave it there")
    args = parser.parse_args(argv)

    database_url = ensure_database_url()
    root = args.keep or Path(tempfile.mkdtemp(prefix="migtools-bench-lockfile-")) / "proj"
    try:
        project = generate(
            root,
            args.apps,
            args.migrations,
            cross_app_fks=args.migrations >= 2,
            database_url=database_url,
            overwrite=args.keep is not None,
        )
        return bench(project, args.reps)
    finally:
        if args.keep is None:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
