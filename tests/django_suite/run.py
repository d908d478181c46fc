"""Django's own test suite on Django's PostgreSQL backend and on migtools' backend: every
test's outcome must be the same (migtools is Django's where it is not checking).

    python tests/django_suite/run.py [--parallel N] [module ...]

Downloads the sdist of the installed Django (``pip download``; cached in ``build/django-suite``),
starts a throwaway PostgreSQL server unless ``DATABASE_URL`` is set, runs Django's
``tests/runtests.py`` on the selected modules once per backend (the two runs at the same time),
and compares the outcomes test by test. Exit 0: no difference; 1: a difference (each printed) or
a run that produced no outcomes; 2: bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODULES = (
    "migrations",
    "schema",
    "backends",
    "postgres_tests",
    "indexes",
    "constraints",
    "model_fields",
)
BACKENDS = {
    "django": "django.db.backends.postgresql",
    "migtools": "migtools.db.backends.postgresql",
}


def django_tests(cache: Path) -> Path:
    """The ``tests`` directory of the installed Django's sdist (downloaded once)."""
    import django

    version = django.__version__
    target = cache / f"django-{version}"
    if (target / "tests" / "runtests.py").is_file():
        return target / "tests"
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"django-{version}.tar.gz"
    if not archive.is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"Django=={version}",
                "-d",
                str(cache),
            ],
            check=True,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    return target / "tests"


def start_runs(
    tests: Path, modules: list[str], parallel: int, out: Path
) -> dict[str, tuple[subprocess.Popen[bytes], Path, Path]]:
    runs = {}
    for name, engine in BACKENDS.items():
        outcomes = out / f"{name}.json"
        log = out / f"{name}.log"
        outcomes.unlink(missing_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
            "DJANGO_SUITE_ENGINE": engine,
            "DJANGO_SUITE_DBNAME": f"djsuite_{name}",
            "DJANGO_SUITE_OUTCOMES": str(outcomes),
            "PYTHONWARNINGS": "ignore",
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        cmd = [
            sys.executable,
            str(tests / "runtests.py"),
            "--settings=suite_settings",
            f"--parallel={parallel}",
            "--noinput",
            *modules,
        ]
        with log.open("wb") as handle:
            proc = subprocess.Popen(
                cmd, cwd=tests, env=env, stdout=handle, stderr=subprocess.STDOUT
            )
        runs[name] = (proc, outcomes, log)
    return runs


def compare(ours: dict[str, list[str]], theirs: dict[str, list[str]]) -> list[str]:
    lines = []
    for test in sorted(set(ours) | set(theirs)):
        mine = ours.get(test, ["not run", ""])
        stock = theirs.get(test, ["not run", ""])
        if mine[0] != stock[0]:
            detail = f" ({mine[1]})" if mine[1] else ""
            lines.append(f"{test}: django {stock[0]}, migtools {mine[0]}{detail}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(MODULES))
    parser.add_argument("--parallel", type=int, default=1, help="processes per backend run")
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "django-suite")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from tests.pgserver import ensure_database_url

    tests = django_tests(args.cache)
    ensure_database_url()
    out = args.cache / "runs"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    runs = start_runs(tests, args.modules, args.parallel, out)
    results: dict[str, dict[str, list[str]]] = {}
    for name, (proc, outcomes, log) in runs.items():
        proc.wait()
        if not outcomes.is_file():
            print(
                f"django-suite: the {name} run produced no outcomes; its output:", file=sys.stderr
            )
            print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
            return 1
        results[name] = json.loads(outcomes.read_text())
    elapsed = time.monotonic() - started

    for name, outcomes in results.items():
        counts: dict[str, int] = {}
        for outcome, _ in outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
        print(f"django-suite: {name} backend: {len(outcomes)} tests: {summary}")
    differences = compare(results["migtools"], results["django"])
    print(f"django-suite: {len(args.modules)} module(s), both backends in {elapsed:.0f}s")
    if differences:
        print(f"django-suite: {len(differences)} test(s) differ from Django's backend:")
        for line in differences:
            print(f"  {line}")
        return 1
    print("django-suite: every test's outcome is the same on both backends")
    return 0


if __name__ == "__main__":
    sys.exit(main())
