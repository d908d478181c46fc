"""The rename map of a rebase in progress: renames done at earlier stops, which later commits
of the same rebase still name by their old names.

Kept in ``$GIT_DIR/migtools/renames.json`` with the rebase's ``onto`` and ``orig-head``: a map
written by another rebase (or a rebase that has ended) is ignored and dropped, so it never
leaks into a later unrelated run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from migtools.gitrepo import GitRepo

FILE = "renames.json"
LEGACY = "migtools-renames.json"  # the first round's $GIT_DIR/migtools-renames.json

Renames = dict[str, dict[str, str]]


def path(repo: GitRepo) -> Path:
    return repo.state_dir / FILE


def _load(file: Path) -> dict[str, object] | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read(repo: GitRepo) -> Renames:
    """The renames of the rebase in progress (empty when none, or the map is another's)."""
    key = repo.rebase_key()
    data = _load(path(repo))
    if key is None or data is None or [data.get("onto"), data.get("orig_head")] != list(key):
        return {}
    renames = data.get("renames")
    if not isinstance(renames, dict):
        return {}
    return {
        str(app): {str(k): str(v) for k, v in names.items()}
        for app, names in renames.items()
        if isinstance(names, dict)
    }


def stale(repo: GitRepo) -> list[Path]:
    """Map files that do not belong to the rebase in progress (if any)."""
    found = [p for p in (repo.git_dir / LEGACY,) if p.exists()]
    current = path(repo)
    if current.exists() and not read(repo):
        found.append(current)
    return found


def drop_stale(repo: GitRepo) -> None:
    for file in stale(repo):
        file.unlink(missing_ok=True)


def text(key: tuple[str, str] | None, renames: Mapping[str, Mapping[str, str]]) -> str | None:
    """The file content recording ``renames`` for the rebase ``key`` (None: no rebase)."""
    if key is None:
        return None
    data = {
        "onto": key[0],
        "orig_head": key[1],
        "renames": {app: dict(sorted(names.items())) for app, names in sorted(renames.items())},
    }
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
