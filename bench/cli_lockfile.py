"""Settings-free CLI speed: the whole ``migtools lockfile --check`` process against Django's
start-up (``manage.py diffsettings``), measured in the same run.

On a generated git project (default 20 apps x 250 migrations), times whole processes,
interleaved, several repetitions each (median):

- ``manage.py diffsettings``: Django's start-up (``django.setup()`` and nothing else);
- ``manage.py migrations_lockfile --check``: the same check through Django, for reference;
- ``migtools lockfile --check``: the console script, no settings (parse cache warm);
- ``migtools lockfile --check`` with the parse cache off (every file parsed).

Prints the ratio of the CLI's whole process to diffsettings (target: at most one third,
GUIDE "CLI speed"), and whether the CLI process imported Django at all.

    python bench/cli_lockfile.py [--apps 20] [--migrations 250] [--reps 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
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

TARGET = 1 / 3
_SCRIPT = Path(sys.executable).parent / "migtools"  # the console script, as users run it
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "migtools.cli"]


@dataclass
class Case:
    label: str
    argv: list[str]
    extra_env: dict[str, str] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def run_once(project: Project, case: Case) -> float:
    env = {k: v for k, v in {**project.env, **case.extra_env}.items() if v != ""}
    start = time.perf_counter()
    proc = subprocess.run(case.argv, cwd=project.root, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"{case.label}: `{' '.join(case.argv)}` exited {proc.returncode}:\n"
            f"{proc.stdout}{proc.stderr}"
        )
    return elapsed


def imports_django(project: Project) -> bool:
    env = {k: v for k, v in project.env.items() if k != "DJANGO_SETTINGS_MODULE"}
    probe = (
        "import sys, runpy; sys.argv = ['migtools', 'lockfile', '--check', '-v', '0']\n"
        "from migtools.cli import main\n"
        "code = main()\n"
        "print(int('django' in sys.modules)); sys.exit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=project.root, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"probe failed: {proc.stdout}{proc.stderr}")
    return proc.stdout.strip() == "1"


def bench(project: Project, reps: int) -> int:
    project.manage("migrations_lockfile")
    manage = [project.python, str(project.manage_py)]
    no_settings = {"DJANGO_SETTINGS_MODULE": ""}
    floor = Case("manage.py diffsettings (Django start-up)", [*manage, "diffsettings"])
    through_django = Case(
        "manage.py migrations_lockfile --check", [*manage, "migrations_lockfile", "--check"]
    )
    ours = Case("migtools lockfile --check", [*CLI, "lockfile", "--check"], no_settings)
    cold = Case(
        "migtools lockfile --check, parse cache off",
        [*CLI, "lockfile", "--check"],
        {**no_settings, "MIGTOOLS_GRAPH_CACHE": "0"},
    )
    cases = [floor, through_django, ours, cold]
    for case in cases:  # warm-up: byte-code and parse caches, OS file cache, exit codes
        run_once(project, case)
    for _ in range(reps):  # interleaved, so drift hits every case alike
        for case in cases:
            case.times.append(run_once(project, case))

    print(
        f"{len(project.apps)} apps x {project.migrations_per_app} migrations "
        f"({project.migration_count} files), median of {reps} runs, whole processes:"
    )
    width = max(len(c.label) for c in cases)
    for case in cases:
        share = "" if case is floor else f"   {case.median / floor.median:6.2f} x diffsettings"
        print(f"  {case.label:<{width}}  {case.median:7.3f} s{share}")
    ratio = ours.median / floor.median
    print(f"  the CLI imports Django: {'yes' if imports_django(project) else 'no'}")
    print(
        f"  ratio (migtools lockfile --check / diffsettings): {ratio:.2f} "
        f"(1/{1 / ratio:.1f}); target <= 1/3: {'met' if ratio <= TARGET else 'NOT met'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--migrations", type=int, default=250, help="migrations per app")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="generate into DIR and leave it there")
    args = parser.parse_args(argv)

    root = args.keep or Path(tempfile.mkdtemp(prefix="migtools-bench-cli-")) / "proj"
    try:
        project = generate(
            root,
            args.apps,
            args.migrations,
            git=True,
            cross_app_fks=args.migrations >= 2,
            database_url=os.environ.get("DATABASE_URL"),
            overwrite=args.keep is not None,
        )
        return bench(project, args.reps)
    finally:
        if args.keep is None:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
