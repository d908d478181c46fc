"""Benchmark: ``verify_migrations`` against django-migration-linter's ``lintmigrations
--no-cache`` on the same generated corpus (bench/generate.py), side by side in one run.

    python bench/verify.py [--apps 40] [--migrations 50] [--skip-linter]

Both run as whole ``manage.py`` processes on a real PostgreSQL (throwaway unless DATABASE_URL
is set), over the generated apps only. The floor (``manage.py diffsettings``: Django start-up)
is measured in the same run; the ratio is printed for whole-process times and beyond the floor.
GUIDE targets: >= 15x at 2,000 migrations; 5,000 verified in <= 12 s cold.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate
from migtools.pgserver import ensure_database_url

LINT_SETTINGS = """\
from benchsite.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_migration_linter"]  # noqa: F405
"""


def last_line(out: str, needle: str) -> str:
    lines = [line for line in out.splitlines() if needle in line]
    return lines[-1].strip() if lines else (out.strip().splitlines() or [""])[-1]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc.returncode, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=40)
    parser.add_argument("--migrations", type=int, default=50)
    parser.add_argument("--skip-linter", action="store_true")
    args = parser.parse_args(argv)
    url = ensure_database_url()
    with tempfile.TemporaryDirectory() as tmp:
        project = generate(Path(tmp) / "proj", args.apps, args.migrations, database_url=url)
        (project.root / "benchsite" / "settings_lint.py").write_text(LINT_SETTINGS)
        py, manage = project.python, str(project.manage_py)
        env = project.env
        floor, _, _ = timed([py, manage, "diffsettings"], project.root, env)
        ours, rc, out = timed([py, manage, "verify_migrations"], project.root, env)
        print(
            f"corpus: {args.apps} apps x {args.migrations} = {project.migration_count} migrations"
        )
        print(f"floor (diffsettings):            {floor:7.2f} s")
        print(
            f"migtools verify_migrations:      {ours:7.2f} s  (beyond floor {ours - floor:6.2f} s)"
        )
        print(f"   exit {rc}: {last_line(out, 'verified')}")
        if args.skip_linter:
            return 0
        lint_env = {**env, "DJANGO_SETTINGS_MODULE": "benchsite.settings_lint"}
        lint, lrc, lout = timed(
            [py, manage, "lintmigrations", "--no-cache", "--include-apps", *project.apps],
            project.root,
            lint_env,
        )
        print(
            f"django-migration-linter:         {lint:7.2f} s  (beyond floor {lint - floor:6.2f} s)"
        )
        print(f"   exit {lrc}: {last_line(lout, 'migration')}")
        print(f"ratio whole process: {lint / ours:5.1f}x")
        print(f"ratio beyond floor:  {(lint - floor) / max(ours - floor, 1e-6):5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
