"""Benchmark: one new migration on a long history, ``verify_migrations --since HEAD`` through
the full path against the cached state (``migtools.verifier.statecache``), in one run.

    python bench/verify_incremental.py [--apps 20] [--migrations 250] [--reps 5] [--keep DIR]

On a generated project (bench/generate.py, committed to git, byte-compiled) one migration is
added to the first app (untracked, as in a pre-commit hook). Each contender is a whole
``manage.py`` process, interleaved, median of ``--reps``:

- floor: ``manage.py diffsettings`` (Django start-up, nothing else);
- full path: ``verify_migrations --since HEAD`` with ``MIGTOOLS_STATE_CACHE=0`` (every
  migration module imported, the state replayed from the first migration);
- cached: the same with the cache on, after one run that stored the state;
- each online and offline (``DATABASE_URL`` on a closed loopback port).

The findings of the full path and the cached run must be identical (compared as JSON).
Target (issue 18): cached <= 0.3 s beyond the floor, online and offline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate import (  # noqa: E402
    _migration_source,
    generate,
    migration_name,
)
from bench.verify import closed_port_url  # noqa: E402
from tests.pgserver import ensure_database_url  # noqa: E402


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc.returncode, proc.stdout, proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--migrations", type=int, default=250, help="migrations per app")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="generate into DIR and leave it there")
    args = parser.parse_args(argv)

    url = ensure_database_url()
    root = args.keep or Path(tempfile.mkdtemp(prefix="migtools_bench_incr_")) / "proj"
    project = generate(root, args.apps, args.migrations, git=True, database_url=url, overwrite=True)
    label = project.apps[0]
    number = args.migrations + 1
    new = project.root / label / "migrations" / f"{migration_name(number)}.py"
    new.write_text(_migration_source(label, number, project.leaves[label], None, None))
    subprocess.run(
        [project.python, "-m", "compileall", "-q", str(project.root)],
        env=project.env,
        check=True,
        capture_output=True,
    )
    py, manage = project.python, str(project.manage_py)
    verify = [py, manage, "verify_migrations", "--since", "HEAD", "--format", "json"]
    envs = {
        "online": dict(project.env),
        "offline": {**project.env, "DATABASE_URL": closed_port_url()},
    }
    contenders: dict[str, tuple[list[str], dict[str, str]]] = {
        "floor": ([py, manage, "diffsettings"], project.env)
    }
    for where, env in envs.items():
        contenders[f"full path, {where}"] = (verify, {**env, "MIGTOOLS_STATE_CACHE": "0"})
        contenders[f"cached, {where}"] = (verify, env)
    outputs: dict[str, str] = {}
    for name, (cmd, env) in contenders.items():  # warm-up; stores the cached state
        _wall, rc, out, err = timed(cmd, project.root, env)
        if rc not in (0, 1) or (name != "floor" and not out):
            print(f"{name}: exit {rc}\n{err[-2000:]}", file=sys.stderr)
            return 1
        outputs[name] = out
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.reps):
        for name, (cmd, env) in contenders.items():
            wall, _rc, out, _err = timed(cmd, project.root, env)
            times[name].append(wall)
            if name != "floor" and out != outputs[name]:
                print(f"{name}: output changed between runs", file=sys.stderr)
                return 1
    total = project.migration_count + 1
    print(f"one new migration in {total} (+ contrib): verify_migrations --since HEAD")
    print(f"median of {args.reps} interleaved whole processes; beyond = minus the floor")
    floor = statistics.median(times["floor"])
    ok = True
    for name in contenders:
        median = statistics.median(times[name])
        spread = ", ".join(f"{t:.2f}" for t in times[name])
        beyond = "" if name == "floor" else f"  beyond the floor {median - floor:6.2f} s"
        print(f"  {name:<22} {median:6.2f} s{beyond}  [{spread}]")
    for where in envs:
        same = outputs[f"full path, {where}"] == outputs[f"cached, {where}"]
        cached = statistics.median(times[f"cached, {where}"]) - floor
        full = statistics.median(times[f"full path, {where}"]) - floor
        verdict = "OK" if cached <= 0.3 else "ABOVE TARGET"
        ok = ok and same
        print(
            f"{where}: cached {cached:.2f} s beyond the floor (full path {full:.2f} s, "
            f"{full / max(cached, 1e-3):.1f}x), target <= 0.3 s: {verdict}; "
            f"findings {'identical' if same else 'DIFFER'}"
        )
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
