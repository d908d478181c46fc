"""The rename map of a rebase: renames done at earlier stops, which later commits of the same
rebase still name by their old names.

Kept in ``$GIT_DIR/migtools/renames.json`` with the rebase's ``onto`` and ``orig-head``. It
holds while that rebase is in progress, and after it ends for as long as git's ``ORIG_HEAD``
still is that ``orig-head`` and ``HEAD`` descends from ``onto`` (a commit replayed without a
stop may still name an old name: the next run fixes it, then drops the map). A map written by
another rebase is ignored and dropped, so it never leaks into a later unrelated run.

Besides the renames, the map keeps each moved chain's new parent (``parents``): a migration
test added by a later commit, whose ``migrate_from`` names the chain's old parent, moves to
the new one as a test resolved at the stop itself does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from migtools.gitrepo import GitRepo

FILE = "renames.json"
LEGACY = "migtools-renames.json"  # the first round's $GIT_DIR/migtools-renames.json

Key = tuple[str, str]
Renames = dict[str, dict[str, str]]
Parents = dict[Key, tuple[Key, Key]]  # first moved migration (old key) -> (old, new parent)


@dataclass
class RenameMap:
    renames: Renames = field(default_factory=dict)
    parents: Parents = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.renames or self.parents)


def path(repo: GitRepo) -> Path:
    return repo.state_dir / FILE


def _load(file: Path) -> dict[str, object] | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _belongs(repo: GitRepo, data: Mapping[str, object]) -> bool:
    """Whether the map ``data`` is the one of the rebase in progress, or of the rebase that
    just ended (``ORIG_HEAD`` its orig-head, ``HEAD`` on top of its onto)."""
    onto, orig_head = data.get("onto"), data.get("orig_head")
    if not isinstance(onto, str) or not isinstance(orig_head, str):
        return False
    key = repo.rebase_key()
    if key is not None:
        return [onto, orig_head] == list(key)
    if repo.state() is not None:
        return False
    return repo.resolve("ORIG_HEAD") == orig_head and repo.is_ancestor(onto, "HEAD")


def load(repo: GitRepo) -> RenameMap:
    """The map of the rebase in progress or just ended (empty when none, or another's)."""
    data = _load(path(repo))
    if data is None or not _belongs(repo, data):
        return RenameMap()
    found = RenameMap()
    renames = data.get("renames")
    if isinstance(renames, dict):
        found.renames = {
            str(app): {str(k): str(v) for k, v in names.items()}
            for app, names in renames.items()
            if isinstance(names, dict)
        }
    parents = data.get("parents")
    if isinstance(parents, list):
        for row in parents:
            if isinstance(row, list) and len(row) == 6 and all(isinstance(x, str) for x in row):
                found.parents[(row[0], row[1])] = ((row[2], row[3]), (row[4], row[5]))
    return found


def read(repo: GitRepo) -> Renames:
    """The renames of the map :func:`load` returns."""
    return load(repo).renames


def stale(repo: GitRepo) -> list[Path]:
    """Map files that do not belong to the rebase in progress or just ended (if any)."""
    found = [p for p in (repo.git_dir / LEGACY,) if p.exists()]
    current = path(repo)
    if current.exists() and not load(repo):
        found.append(current)
    return found


def drop_stale(repo: GitRepo) -> None:
    for file in stale(repo):
        file.unlink(missing_ok=True)


def drop_finished(repo: GitRepo) -> None:
    """Drop the map once its rebase has ended (a run after it has applied what it could)."""
    if repo.rebase_key() is None:
        path(repo).unlink(missing_ok=True)


def text(
    key: tuple[str, str] | None,
    renames: Mapping[str, Mapping[str, str]],
    parents: Parents | None = None,
) -> str | None:
    """The file content recording ``renames`` for the rebase ``key`` (None: no rebase)."""
    if key is None:
        return None
    data: dict[str, object] = {
        "onto": key[0],
        "orig_head": key[1],
        "renames": {app: dict(sorted(names.items())) for app, names in sorted(renames.items())},
    }
    if parents:
        data["parents"] = [[*first, *old, *new] for first, (old, new) in sorted(parents.items())]
    return json.dumps(data, indent=2) + "\n"


def merged(earlier: Renames, table: Mapping[tuple[str, str], tuple[str, str]]) -> Renames:
    """``earlier`` followed by this stop's renames (chains collapse: a -> b -> c is a -> c)."""
    result = {label: dict(names) for label, names in earlier.items()}
    for (label, old), (_label, new) in table.items():
        names = result.setdefault(label, {})
        for first, later in list(names.items()):
            if later == old:
                names[first] = new
        names[old] = new
    return result


def merged_parents(earlier: Parents, table: Mapping[Key, Key], new: Parents) -> Parents:
    """``earlier`` with this stop's renames applied to its keys and parents, plus ``new``."""

    def follow(key: Key) -> Key:
        return table.get(key, key)

    result = {first: (old, follow(parent)) for first, (old, parent) in earlier.items()}
    result.update(new)
    return result
