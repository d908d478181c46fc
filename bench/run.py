"""Run every benchmark in bench/, one after the other (``make bench``).

A benchmark is any ``bench/*.py`` except this runner, the generator and helpers named
``_*.py``. ``python bench/run.py [NAME ...]`` runs only the named ones (``lockfile_check`` or
``lockfile_check.py``). One throwaway PostgreSQL is started here when DATABASE_URL is unset and
shared by every benchmark. Exits non-zero when a benchmark fails; the others still run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
NOT_BENCHES = {"run.py", "generate.py"}


def discover() -> list[Path]:
    return sorted(
        p
        for p in BENCH_DIR.glob("*.py")
        if p.name not in NOT_BENCHES and not p.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    available = {p.stem: p for p in discover()}
    if argv:
        unknown = [n for n in argv if n.removesuffix(".py") not in available]
        if unknown:
            print(
                f"Unknown benchmark(s): {', '.join(unknown)}. Available: {', '.join(available)}",
                file=sys.stderr,
            )
            return 2
        scripts = [available[n.removesuffix(".py")] for n in argv]
    else:
        scripts = list(available.values())

    sys.path.insert(0, str(BENCH_DIR.parent))
    from tests.pgserver import ensure_database_url

    ensure_database_url()  # exported in os.environ: the benchmarks' processes share it
    failed = []
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(script)], cwd=BENCH_DIR.parent).returncode
        print(
            f"== {script.stem}: exit {code} after {time.perf_counter() - start:.0f} s\n", flush=True
        )
        if code:
            failed.append(script.stem)
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
