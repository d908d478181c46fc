"""A repository's migration packages and its ``[tool.migtools]`` table, found without Django.

The settings-free CLI (``migtools lockfile``) cannot ask Django which apps are installed or
what ``AUTH_USER_MODEL`` is, and must not import project code to find out. So:

- the files are git's list (``git ls-files``: tracked, plus untracked ones not ignored, as the
  working tree holds them; with ``staged``, as the pre-commit hook asks, tracked ones only:
  a draft beside the commit is not part of it); every ``<app>/migrations/__init__.py`` in it
  is an app;
- an app's label is the ``label = "..."`` of the AppConfig in its ``apps.py`` (read with
  ``ast``), else the last part of its ``name``, else its directory name;
- what only settings know comes from ``[tool.migtools]`` in the ``pyproject.toml`` named by
  ``--config``, else the nearest one from the current directory up to the repository root::

      [tool.migtools]
      apps = ["shop", "billing"]        # the managed apps (default: every app found)
      exclude = ["legacy", "tests/"]    # labels, or paths (with a "/") below the project
      lockfile = "migrations_lockfile.txt"   # relative to the project directory
      auth_user_model = "accounts.User"      # default "auth.User"
      settings = { OTHER_SWAPPABLE_MODEL = "app.Model" }
      main_branch = "main"                   # MIGTOOLS_MAIN_BRANCH (update-migration)
      migration_test_dirs = ["tests"]        # MIGTOOLS_MIGRATION_TEST_DIRS (update-migration)

Apps are looked for below the project directory (the one holding that ``pyproject.toml``,
else the repository root). Relative paths resolve against it and the lockfile defaults to
``migrations_lockfile.txt`` in it: the base directory rule ``manage.py`` follows too
(``migtools.pyproject``).

A hook runs on every commit, so the leaves are remembered in
``$GIT_DIR/migtools/cli-graph.marshal``, keyed by the config and every migration file's
(size, mtime) in the repository; a run whose files all match skips parsing and the graph
build. As in :mod:`migtools.graph.cache`, files changed less than ``RACY_SECONDS`` before the
run are never trusted, and ``MIGTOOLS_GRAPH_CACHE=0`` turns it off.
"""

from __future__ import annotations

import ast
import marshal
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migtools import __version__, pyproject
from migtools.errors import ConflictError, GitRepoError
from migtools.graph import cache as parsecache
from migtools.graph.disk import AppMigrations, DiskGraph, read_directory, stamps
from migtools.pyproject import ConfigError

LOCKFILE_NAME = "migrations_lockfile.txt"
PYPROJECT = "pyproject.toml"
_MIGRATIONS_INIT = "migrations/__init__.py"
_KEYS = {
    "apps",
    "exclude",
    "lockfile",
    "auth_user_model",
    "settings",
    "main_branch",
    "migration_test_dirs",
    "table_sizes",
}


@dataclass(frozen=True)
class Config:
    """Where the project is, and what its settings would have said."""

    git_root: Path
    git_dir: Path
    project_dir: Path
    lockfile: Path
    apps: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)
    source: Path | None = None  # the pyproject.toml read, if any
    main_branch: str | None = None
    migration_test_dirs: tuple[Path, ...] | None = None  # absolute

    def setting(self, name: str) -> object:
        return self.settings.get(name)


def git_root(start: Path) -> tuple[Path, Path]:
    """The work tree's root and its git directory."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "--absolute-git-dir"],
            cwd=start,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise GitRepoError("git is not installed: the migtools CLI lists files with git.") from None
    if proc.returncode != 0:
        raise GitRepoError(
            f"{start} is not inside a git repository: the migtools CLI finds the migrations "
            "with git's file list."
        )
    top, git_dir = proc.stdout.splitlines()[:2]
    return Path(top).resolve(), Path(git_dir)


def _string_list(table: Mapping[str, Any], key: str, where: Path) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: [tool.migtools] {key} must be a list of strings.")
    return tuple(value)


def read_config(start: Path, config: str | os.PathLike[str] | None = None) -> Config:
    """The config for a run started in ``start``, or of the ``pyproject.toml`` named by
    ``config`` (``--config``; see the module docstring and ``migtools.pyproject``)."""
    table: Mapping[str, Any]
    source: Path | None
    if config is not None:
        table, source = pyproject.named(config)
        root, git_dir = git_root(source.parent)
    else:
        start = start.resolve()
        root, git_dir = git_root(start)
        table, source = pyproject.find(start, root)
    project_dir = source.parent if source is not None else root
    where = source or root / PYPROJECT
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) in [tool.migtools]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KEYS))})."
        )
    settings: dict[str, str] = {"AUTH_USER_MODEL": "auth.User"}
    extra = table.get("settings", {})
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise ConfigError(f"{where}: [tool.migtools] settings must map names to strings.")
    settings.update(extra)
    user_model = table.get("auth_user_model")
    if user_model is not None:
        if not isinstance(user_model, str) or user_model.count(".") != 1:
            raise ConfigError(
                f"{where}: [tool.migtools] auth_user_model must be 'app_label.ModelName'."
            )
        settings["AUTH_USER_MODEL"] = user_model
    lockfile_value = table.get("lockfile")
    if lockfile_value is not None and not (isinstance(lockfile_value, str) and lockfile_value):
        raise ConfigError(f"{where}: [tool.migtools] lockfile must be a path string.")
    lockfile = pyproject.resolve(lockfile_value or LOCKFILE_NAME, project_dir)
    main_branch = table.get("main_branch")
    if main_branch is not None and not (isinstance(main_branch, str) and main_branch):
        raise ConfigError(f"{where}: [tool.migtools] main_branch must be a branch name.")
    test_dirs = _string_list(table, "migration_test_dirs", where)
    return Config(
        git_root=root,
        git_dir=git_dir,
        project_dir=project_dir,
        lockfile=lockfile,
        apps=_string_list(table, "apps", where),
        exclude=_string_list(table, "exclude", where) or (),
        settings=settings,
        source=source,
        main_branch=main_branch,
        migration_test_dirs=(
            tuple(pyproject.resolve(d, project_dir) for d in test_dirs)
            if test_dirs is not None
            else None
        ),
    )


def repository_files(config: Config, *, staged: bool = False) -> list[str]:
    """Paths (relative to the project directory) git lists below it: tracked files and
    untracked ones that are not ignored (tracked ones only with ``staged``)."""
    others = [] if staged else ["--others", "--exclude-standard"]
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--cached", *others, "--", "."],
        cwd=config.project_dir,
        capture_output=True,
    )
    if proc.returncode != 0:
        raise GitRepoError(f"git ls-files failed: {proc.stderr.decode(errors='replace').strip()}")
    return [p for p in proc.stdout.decode("utf-8", errors="surrogateescape").split("\0") if p]


def _listed_modules(
    config: Config, files: list[str], directories: dict[str, Path]
) -> dict[Path, set[str]]:
    """The migration modules ``files`` holds in each of ``directories``."""
    wanted: dict[Path, set[str]] = {d: set() for d in directories.values()}
    for relative in files:
        if not relative.endswith(".py"):
            continue
        path = config.project_dir / relative
        names = wanted.get(path.parent)
        if names is not None:
            names.add(path.name[:-3])
    return wanted


def _class_attrs(node: ast.ClassDef) -> dict[str, object]:
    values: dict[str, object] = {}
    for stmt in node.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = stmt.value.value
        elif (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(stmt.value, ast.Constant)
        ):
            values[stmt.target.id] = stmt.value.value
    return values


def app_label(app_dir: Path) -> str:
    """The label Django would give the app in ``app_dir``, read from its ``apps.py``: the
    AppConfig Django picks (the only one, or the one with ``default = True``)."""
    try:
        tree = ast.parse((app_dir / "apps.py").read_bytes())
    except (OSError, SyntaxError, ValueError):
        return app_dir.name
    configs = [
        _class_attrs(node)
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(
            (b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")).endswith("AppConfig")
            for b in node.bases
        )
    ]
    defaults = [c for c in configs if c.get("default") is True]
    chosen = defaults[0] if len(defaults) == 1 else configs[0] if len(configs) == 1 else None
    if chosen is None:
        return app_dir.name
    label = chosen.get("label")
    if isinstance(label, str) and label:
        return label
    name = chosen.get("name")
    if isinstance(name, str) and name:
        return name.rpartition(".")[2]
    return app_dir.name


def _excluded(relative_dir: str, label: str, exclude: tuple[str, ...]) -> bool:
    for item in exclude:
        if "/" in item:
            prefix = item.strip("/")
            if relative_dir == prefix or relative_dir.startswith(prefix + "/"):
                return True
        elif item == label:
            return True
    return False


def find_apps(config: Config, files: list[str]) -> dict[str, Path]:
    """label -> migrations directory of every app below the project directory that is not
    excluded. Two directories with one label is an error (Django would refuse them too)."""
    found: dict[str, list[Path]] = {}
    for relative in files:
        if relative != _MIGRATIONS_INIT and not relative.endswith("/" + _MIGRATIONS_INIT):
            continue
        directory = (config.project_dir / relative).parent
        if not directory.is_dir():  # deleted in the working tree
            continue
        app_dir = directory.parent
        label = app_label(app_dir)
        relative_dir = app_dir.relative_to(config.project_dir).as_posix()
        if _excluded(relative_dir, label, config.exclude):
            continue
        found.setdefault(label, []).append(directory)
    clashes = {label: dirs for label, dirs in found.items() if len(dirs) > 1}
    if clashes:
        detail = "; ".join(
            f"'{label}' in {', '.join(str(d.parent) for d in sorted(dirs))}"
            for label, dirs in sorted(clashes.items())
        )
        raise ConfigError(
            f"Several apps have the same label: {detail}. List the real ones in "
            "[tool.migtools] apps, or leave the others out with exclude."
        )
    return {label: dirs[0] for label, dirs in sorted(found.items())}


def _referenced_labels(app: AppMigrations) -> set[str]:
    return {
        key[0] for f in app.files.values() for key in (*f.dependencies, *f.replaces, *f.run_before)
    }


@dataclass(frozen=True)
class RememberedGraph:
    """The managed apps' leaves as an earlier run computed them (for the lockfile)."""

    apps: dict[str, AppMigrations]
    leaves_by_app: dict[str, list[str]]

    def conflicts(self) -> dict[str, list[str]]:
        return {label: v for label, v in sorted(self.leaves_by_app.items()) if len(v) > 1}

    def leaf(self, app_label: str) -> str | None:
        leaves = self.leaves_by_app.get(app_label, [])
        if len(leaves) > 1:
            raise ConflictError({app_label: leaves})
        return leaves[0] if leaves else None


CACHE_VERSION = 1
RACY_SECONDS = 2.0


def _cache_path(config: Config) -> Path:
    return config.git_dir / "migtools" / "cli-graph.marshal"


CacheKey = tuple[Any, ...]


def _cache_key(
    config: Config, directories: dict[str, Path], only: dict[Path, set[str]] | None = None
) -> tuple[CacheKey, int]:
    """The key of this run (config, every file's stamp) and the newest mtime_ns in it."""
    newest = 0
    files = []
    for label, directory in directories.items():
        listed = tuple(
            (n, size, mtime)
            for n, (size, mtime) in stamps(directory).items()
            if only is None or n in only[directory]
        )
        newest = max([newest, *(mtime for _, _, mtime in listed)])
        files.append((label, str(directory), listed))
    settings = tuple(sorted(config.settings.items()))
    return (CACHE_VERSION, __version__, config.apps, settings, tuple(files)), newest


def _remembered(config: Config, key: CacheKey) -> dict[str, list[str]] | None:
    try:
        data = marshal.loads(_cache_path(config).read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if isinstance(data, tuple) and len(data) == 2 and data[0] == key:
        leaves = data[1]
        return leaves if isinstance(leaves, dict) else None
    return None


def _remember(config: Config, key: CacheKey, newest: int, graph: DiskGraph, started: float) -> None:
    if newest / 1e9 > started - RACY_SECONDS:
        return  # too recent to trust the stamps
    leaves = {label: graph.leaves(label) for label in graph.apps}
    path = _cache_path(config)
    try:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(marshal.dumps((key, leaves)))
        os.replace(tmp, path)
    except OSError:
        return


def load(config: Config, *, staged: bool = False) -> DiskGraph | RememberedGraph:
    """The managed apps' graph: ``apps`` (default every app found), with the other apps of
    the repository their migrations reach read as context. Apps outside the repository
    (``django.contrib.auth``...) are not known here: references to them are trusted.
    When every file matches the previous run's, its leaves (see the module docstring).
    ``staged``: only the files git tracks (see the module docstring)."""
    started = time.time()
    files = repository_files(config, staged=staged)
    directories = find_apps(config, files)
    only = _listed_modules(config, files, directories) if staged else None
    key: CacheKey | None = None
    newest = 0
    if parsecache.enabled():
        key, newest = _cache_key(config, directories, only)
        leaves = _remembered(config, key)
        if leaves is not None:
            apps = {label: AppMigrations(label, None, directories[label]) for label in leaves}
            return RememberedGraph(apps, leaves)
    graph = _build(config, directories, only)
    if key is not None:
        _remember(config, key, newest, graph, started)
    return graph


def _build(
    config: Config, directories: dict[str, Path], only: dict[Path, set[str]] | None = None
) -> DiskGraph:
    if config.apps is None:
        labels = list(directories)
    else:
        unknown = [label for label in config.apps if label not in directories]
        if unknown:
            raise ConfigError(
                f"[tool.migtools] apps names {', '.join(sorted(unknown))}: no migrations "
                f"package with that label below {config.project_dir}."
            )
        labels = sorted(set(config.apps))
    setting = config.setting

    def read_app(label: str) -> AppMigrations:
        directory = directories[label]
        names = None if only is None else only[directory]
        return read_directory(label, None, directory, setting, names)

    read = {label: read_app(label) for label in labels}
    context: dict[str, AppMigrations] = {}
    pending = sorted(set().union(*(_referenced_labels(a) for a in read.values())))
    while pending:
        label = pending.pop()
        if label in read or label in context or label not in directories:
            continue
        context[label] = read_app(label)
        pending.extend(sorted(_referenced_labels(context[label])))
    return DiskGraph(read.values(), context.values(), registry=sorted(directories))
