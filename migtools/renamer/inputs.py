"""What a renamer plan is computed from, read once: the managed apps' migration files, which of
them are the branch's ("mine"), the lockfile (and its conflict sides), the migration tests, and
the rename map of the rebase in progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from migtools import conf as mt_settings
from migtools import project
from migtools.errors import LockfileError
from migtools.gitrepo import REBASE, GitRepo
from migtools.graph import lockfile
from migtools.graph.disk import AppMigrations, locate, read_app
from migtools.project import find_test_files
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


def gather(repo: GitRepo, main: str | None = None) -> Inputs:
    """Read the managed apps, the git state, the lockfile and the test files."""
    main_ref = repo.main_branch(main if main is not None else mt_settings.main_branch())
    apps = {c.label: read_app(c.label) for c in project.managed_apps()}
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
    lock_path = project.lockfile_path().resolve()
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
        test_files=find_test_files(mt_settings.migration_test_dirs(), repo.root),
        rename_map=rename_map.renames,
        rename_parents=rename_map.parents,
        in_rebase=repo.state() == REBASE,
        rename_map_path=renamemap.path(repo),
        main=main_ref,
        root=repo.root,
        rebase_key=repo.rebase_key(),
    )


def scope(repo: GitRepo) -> jn.Scope:
    """The files a journal of this project may touch (:class:`~migtools.renamer.journal.Scope`):
    the managed apps' migration files, the lockfile and the migration tests."""
    located = (locate(c.label)[1] for c in project.managed_apps())
    dirs = frozenset(d.resolve() for d in located if d is not None)
    tests = mt_settings.migration_test_dirs()
    root = repo.root
    return jn.Scope(
        root=root,
        migration_dirs=dirs,
        lockfile=project.lockfile_path(),
        is_test=lambda path: project.is_test_path(path, tests, root),
    )


def _parse_side(text: str) -> dict[str, str]:
    try:
        return lockfile.split_conflict(text).ours
    except LockfileError:
        return {}
