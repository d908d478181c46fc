"""The pre-commit hooks (``.pre-commit-hooks.yaml``): ``migtools-lockfile`` and ``migtools-verify``.

Both are ``language: script`` hooks: pre-commit runs ``hooks/migtools-*`` from its own clone of
this repository with the ``python3`` first on PATH and installs nothing (the lockfile check
imports only the standard library and :mod:`migtools.cli`; the verifier needs the project's own
interpreter anyway, which this module finds). This module uses the standard library only.

What a hook judges is what pre-commit hands it: the file names (staged files on a commit; the
named ones with ``--files``; every tracked one with ``--all-files``; the files changed between
the refs with ``--from-ref/--to-ref``, which pre-commit also exports as ``PRE_COMMIT_FROM_REF``
and ``PRE_COMMIT_TO_REF``). pre-commit sets unstaged edits aside while hooks run, and both
hooks leave out migration files git does not track: a draft beside the commit never counts.

``migtools-verify`` runs ``manage.py verify_migrations --files FILE...`` (plus ``--since FROM
--until TO`` in CI mode, which also reports migrations edited after they were merged) with the
project's interpreter: ``--python PATH`` or ``$MIGTOOLS_PYTHON``, else the active virtualenv
(``$VIRTUAL_ENV``), else ``.venv``/``venv``/``env`` beside ``manage.py`` or at the repository
root, else the ``python3`` running the hook. When that interpreter cannot import Django or
migtools (a commit from an IDE without the virtualenv), one line says which interpreter was
tried and how to name the right one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

LOCKFILE = "migtools-lockfile"
VERIFY = "migtools-verify"
PYTHON_ENV = "MIGTOOLS_PYTHON"
_VENV_NAMES = (".venv", "venv", "env")
# verify_migrations options a hook's `args:` may carry, each with its value
_PASSED_ON = ("--database", "--format", "--path-prefix", "--settings", "--verbosity", "-v")
_PROBE = (
    "import importlib.util as u\n"
    "print(' and '.join(m for m in ('django', 'migtools') if u.find_spec(m) is None))\n"
)


def _error(hook: str, message: str) -> int:
    print(f"{hook}: {message}", file=sys.stderr)
    return 1


def lockfile(argv: Sequence[str]) -> int:
    """``migtools lockfile --check --staged`` (the file names pre-commit passes are accepted
    and ignored: the lockfile is checked against every migration the commit holds)."""
    try:
        from migtools import cli
    except ImportError as exc:  # tomllib: Python 3.11+
        version = ".".join(map(str, sys.version_info[:3]))
        return _error(
            LOCKFILE,
            f"{sys.executable} is Python {version} ({exc}): the hook needs Python 3.11 or "
            "newer as the python3 first on PATH.",
        )
    return cli.main(["lockfile", "--check", "--staged", *argv])


def _bin(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _candidates(manage_dir: Path, root: Path) -> Iterator[tuple[str, Path]]:
    active = os.environ.get("VIRTUAL_ENV")
    if active:
        yield "the active virtualenv", _bin(Path(active))
    for directory in dict.fromkeys((manage_dir, root)):
        for name in _VENV_NAMES:
            yield f"{name}/", _bin(directory / name)
    yield "the python3 running the hook", Path(sys.executable)


def find_python(explicit: str | None, manage_dir: Path, root: Path) -> tuple[Path, str]:
    """The interpreter that runs ``manage.py``, and where it came from."""
    if explicit:
        return Path(explicit), "--python"
    if os.environ.get(PYTHON_ENV):
        return Path(os.environ[PYTHON_ENV]), f"${PYTHON_ENV}"
    for origin, path in _candidates(manage_dir, root):
        if path.is_file():
            return path, origin
    return Path(sys.executable), "the python3 running the hook"


def missing_modules(python: Path) -> str | None:
    """What ``python`` cannot import of Django and migtools ("" when nothing; None when it
    does not run)."""
    try:
        proc = subprocess.run(
            [str(python), "-c", _PROBE], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip()


def find_manage(explicit: str | None, root: Path) -> Path | str:
    """``manage.py``: ``--manage``, else the one at the repository root, else the only one
    git tracks. A string is the reason none was found."""
    if explicit:
        path = Path(explicit)
        return path.resolve() if path.is_file() else f"--manage {explicit}: no such file."
    if (root / "manage.py").is_file():
        return (root / "manage.py").resolve()
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--", "manage.py", "*/manage.py"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    found = [p for p in proc.stdout.decode("utf-8", "replace").split("\0") if p]
    if len(found) == 1:
        return (root / found[0]).resolve()
    where = f" (git tracks {', '.join(sorted(found))})" if found else ""
    return (
        f"no manage.py at the repository root{where}: name it in the hook's "
        "`args: [--manage, path/to/manage.py]`."
    )


def _verify_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=VERIFY, add_help=False)
    parser.add_argument("--manage")
    parser.add_argument("--python")
    for option in _PASSED_ON:
        parser.add_argument(option, dest=f"pass_{option.lstrip('-')}")
    parser.add_argument("files", nargs="*")
    return parser


def verify(argv: Sequence[str]) -> int:
    """``manage.py verify_migrations --files FILE...`` with the project's interpreter."""
    try:
        args = _verify_parser().parse_args(list(argv))
    except SystemExit as exc:
        return 2 if exc.code else 0
    root = Path.cwd()  # pre-commit runs hooks from the repository root
    files = [str(Path(f).resolve()) for f in args.files if Path(f).is_file()]
    if not files:
        return 0
    manage = find_manage(args.manage, root)
    if isinstance(manage, str):
        return _error(VERIFY, manage)
    python, origin = find_python(args.python, manage.parent, root)
    missing = missing_modules(python)
    if missing is None or missing:
        problem = "does not run" if missing is None else f"cannot import {missing}"
        return _error(
            VERIFY,
            f"{python} ({origin}) {problem}: the hook runs manage.py with the project's "
            "interpreter. Activate the project's virtualenv before committing, or name its "
            f"python: {PYTHON_ENV}=/path/to/venv/bin/python, or the hook's "
            "`args: [--python, /path/to/venv/bin/python]`.",
        )
    command = [str(python), str(manage), "verify_migrations", "--files", *files]
    from_ref = os.environ.get("PRE_COMMIT_FROM_REF")
    to_ref = os.environ.get("PRE_COMMIT_TO_REF")
    if from_ref and to_ref:
        command += ["--since", from_ref, "--until", to_ref]
    for option in _PASSED_ON:
        value = getattr(args, f"pass_{option.lstrip('-')}")
        if value is not None:
            command += [option, value]
    try:
        return subprocess.call(command, cwd=manage.parent)
    except OSError as exc:
        return _error(VERIFY, f"cannot run {python}: {exc}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    hooks = {"lockfile": lockfile, "verify": verify}
    if not args or args[0] not in hooks:
        return _error("migtools.hook", f"usage: python -m migtools.hook {{{'|'.join(hooks)}}} ...")
    return hooks[args[0]](args[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
