"""What a renamer plan is computed from, read once: the managed apps' migration files, which of
them are the branch's ("mine"), the lockfile (and its conflict sides), the migration tests, and
the rename map of the rebase in progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from migtools import conf as mt_settings
from migtools import project
from migtools.errors import LockfileError, UnknownAppError
from migtools.gitrepo import REBASE, GitRepo
from migtools.graph import checkout, lockfile
from migtools.graph.disk import AppMigrations, locate, read_app, read_directory
from migtools.project import find_test_files
from migtools.pyproject import ConfigError
from migtools.renamer import journal as jn
from migtools.renamer import renamemap

Key = tuple[str, str]


@dataclass
class Inputs:
    """Everything a plan is computed from."""

    apps: dict[str, AppMigrations]
    mine: set[Key]
    lockfile_path: Path
    lockfile_text: str | None
    lockfile_sides: lockfile.ConflictSides | None
    lockfile_unmerged: bool
    test_files: list[Path]
    rename_map: dict[str, dict[str, str]]
    in_rebase: bool
    rename_map_path: Path | None
    main: str = "main"
    root: Path | None = None
    rebase_key: tuple[str, str] | None = None
    # first moved migration (old key) -> (old parent, new parent), from the rename map
    rename_parents: dict[Key, tuple[Key, Key]] = field(default_factory=dict)
    # an app label given on the command line -> its label (UnknownAppError: exit 2)
    label_of: Callable[[str], str] = field(default=lambda label: label)
    registry: list[str] | None = None  # the apps' order (None: Django's app registry)


@dataclass(frozen=True)
class Source:
    """Where a run finds the project: the managed apps' migrations, the lockfile, the
    migration tests' directories, the main branch, and how an app label given on the command
    line is checked. Django's settings give it for ``manage.py`` (:func:`django_source`),
    ``[tool.migtools]`` for the settings-free CLI."""

    read_apps: Callable[[], dict[str, AppMigrations]]
    migration_dirs: Callable[[], list[Path]]  # without reading a file
    lockfile_path: Path
    test_dirs: list[Path] | None
    main_branch: str | None
    label_of: Callable[[str], str]  # raises UnknownAppError (exit 2)
    registry: list[str] | None = None  # the apps' order (None: Django's app registry)


def django_source() -> Source:
    """The project as Django's settings describe it."""

    def migration_dirs() -> list[Path]:
        located = (locate(c.label)[1] for c in project.managed_apps())
        return [d for d in located if d is not None]

    return Source(
        read_apps=lambda: {c.label: read_app(c.label) for c in project.managed_apps()},
        migration_dirs=migration_dirs,
        lockfile_path=project.lockfile_path(),
        test_dirs=mt_settings.migration_test_dirs(),
        main_branch=mt_settings.main_branch(),
        label_of=lambda label: project.app_config(label).label,
    )


def checkout_source(config: checkout.Config) -> Source:
    """The project as the repository's files and ``[tool.migtools]`` describe it (the
    settings-free CLI): no Django settings, no project import."""
    directories = checkout.find_apps(config, checkout.repository_files(config))
    labels = list(directories) if config.apps is None else sorted(set(config.apps))
    unknown = [label for label in labels if label not in directories]
    if unknown:
        raise ConfigError(
            f"[tool.migtools] apps names {', '.join(sorted(unknown))}: no migrations "
            f"package with that label below {config.project_dir}."
        )

    def label_of(label: str) -> str:
        if label not in directories:
            raise UnknownAppError(label)
        return label

    return Source(
        read_apps=lambda: {
            label: read_directory(label, None, directories[label], config.setting)
            for label in labels
        },
        migration_dirs=lambda: [directories[label] for label in labels],
        lockfile_path=config.lockfile,
        test_dirs=(
            list(config.migration_test_dirs) if config.migration_test_dirs is not None else None
        ),
        main_branch=config.main_branch,
        label_of=label_of,
        registry=sorted(directories),
    )


def gather(repo: GitRepo, main: str | None = None, source: Source | None = None) -> Inputs:
    """Read the managed apps, the git state, the lockfile and the test files."""
    source = source if source is not None else django_source()
    main_ref = repo.main_branch(main if main is not None else source.main_branch)
    apps = source.read_apps()
    files: dict[Path, dict[str, Key]] = {}
    for app in apps.values():
        if app.directory is None or not app.files:
            continue
        directory = app.directory.resolve()
        repo.relative(directory)  # outside the repository: refuse early
        names = files.setdefault(directory, {})
        for mig in app.files.values():
            names[f"{mig.name}.py"] = mig.key
    mine_files = repo.mine_names(main_ref, files)
    mine = {files[d][n] for d, names in mine_files.items() for n in names}
    lock_path = source.lockfile_path.resolve()
    try:
        lock_text: str | None = lock_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        lock_text = None
    except UnicodeDecodeError:
        lock_text = lock_path.read_bytes().decode("utf-8", "replace")
    sides = None
    unmerged = False
    if lock_text is not None and lockfile.has_conflict_markers(lock_text):
        sides = lockfile.split_conflict(lock_text, str(lock_path))
    stages = repo.unmerged_stages(lock_path)
    if stages is not None:
        unmerged = True
        if sides is None and stages.ours is not None and stages.theirs is not None:
            sides = lockfile.ConflictSides(
                ours=_parse_side(stages.ours), theirs=_parse_side(stages.theirs), base=None
            )
    rename_map = renamemap.load(repo)
    return Inputs(
        apps=apps,
        mine=mine,
        lockfile_path=lock_path,
        lockfile_text=lock_text,
        lockfile_sides=sides,
        lockfile_unmerged=unmerged,
        test_files=find_test_files(source.test_dirs, repo.root),
        rename_map=rename_map.renames,
        rename_parents=rename_map.parents,
        in_rebase=repo.state() == REBASE,
        rename_map_path=renamemap.path(repo),
        main=main_ref,
        root=repo.root,
        rebase_key=repo.rebase_key(),
        label_of=source.label_of,
        registry=source.registry,
    )


def scope(repo: GitRepo, source: Source | None = None) -> jn.Scope:
    """The files a journal of this project may touch (:class:`~migtools.renamer.journal.Scope`):
    the managed apps' migration files, the lockfile and the migration tests."""
    source = source if source is not None else django_source()
    tests = source.test_dirs
    root = repo.root
    return jn.Scope(
        root=root,
        migration_dirs=frozenset(d.resolve() for d in source.migration_dirs()),
        lockfile=source.lockfile_path,
        is_test=lambda path: project.is_test_path(path, tests, root),
    )


def _parse_side(text: str) -> dict[str, str]:
    try:
        return lockfile.split_conflict(text).ours
    except LockfileError:
        return {}
