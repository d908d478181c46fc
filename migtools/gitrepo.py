"""The git repository holding the project, as update_migration needs it (GitPython).

"Mine" are the migration files that main's side does not have: files absent from the tree of
the main branch (and, during a rebase, of the commit being rebased onto). That rule needs no
ours/theirs: git's "ours" is the branch when main is merged into it, main when the branch is
merged into main, and the upstream during a rebase.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import git

from migtools.errors import GitRepoError, NotAGitRepoError

MERGE = "merge"
REBASE = "rebase"
RENAME_MAP = "migtools-renames.json"
_MAIN_CANDIDATES = ("origin/HEAD", "main", "master")


@dataclass(frozen=True)
class Stages:
    """The unmerged index stages of one conflicted file (None where a side lacks it)."""

    base: str | None
    ours: str | None
    theirs: str | None


class GitRepo:
    """One working tree: its root, its merge/rebase state, and the index operations we use."""

    def __init__(self, repo: git.Repo) -> None:
        self.repo = repo
        if repo.working_tree_dir is None:
            raise GitRepoError(f"{repo.git_dir} is a bare repository.")
        self.root = Path(repo.working_tree_dir).resolve()
        self.git_dir = Path(repo.git_dir).resolve()

    @classmethod
    def find(cls, path: Path) -> GitRepo:
        """The repository holding ``path`` (a file or a directory, existing or not)."""
        start = path
        while not start.exists() and start != start.parent:
            start = start.parent
        if start.is_file():
            start = start.parent
        try:
            return cls(git.Repo(start, search_parent_directories=True))
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise NotAGitRepoError(str(path)) from None

    # ------------------------------------------------------------------ refs

    def _git(self, *args: str) -> str:
        try:
            return str(self.repo.git.execute(["git", *args], strip_newline_in_stdout=False))
        except git.GitCommandError as exc:
            detail = (exc.stderr or "").strip().removeprefix("stderr:").strip().strip("'")
            raise GitRepoError(f"git {' '.join(args)} failed: {detail}") from None

    def resolve(self, ref: str) -> str | None:
        try:
            return str(self.repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}"))
        except git.GitCommandError:
            return None

    def main_branch(self, configured: str | None = None) -> str:
        """The main branch: ``configured`` (MIGTOOLS_MAIN_BRANCH), else origin/HEAD, main,
        master, whichever exists first."""
        if configured:
            if self.resolve(configured) is None:
                raise GitRepoError(
                    f"MIGTOOLS_MAIN_BRANCH is '{configured}', but no such branch or ref exists "
                    f"in {self.root}."
                )
            return configured
        for candidate in _MAIN_CANDIDATES:
            if self.resolve(candidate) is not None:
                return candidate
        raise GitRepoError(
            f"Cannot tell which branch is main in {self.root}: none of "
            f"{', '.join(_MAIN_CANDIDATES)} exists. Set MIGTOOLS_MAIN_BRANCH."
        )

    def merge_base(self, a: str, b: str = "HEAD") -> str | None:
        try:
            return str(self.repo.git.merge_base(a, b)) or None
        except git.GitCommandError:
            return None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            self.repo.git.merge_base("--is-ancestor", ancestor, descendant)
        except git.GitCommandError:
            return False
        return True

    # ------------------------------------------------------------------ state

    def _rebase_dir(self) -> Path | None:
        for name in ("rebase-merge", "rebase-apply"):
            directory = self.git_dir / name
            if directory.is_dir() and name == "rebase-merge":
                return directory
            if directory.is_dir() and not (directory / "applying").exists():
                return directory  # rebase-apply also serves `git am`; "applying" marks that
        return None

    def state(self) -> str | None:
        """``"merge"`` or ``"rebase"`` while one is in progress, else None."""
        if self._rebase_dir() is not None:
            return REBASE
        if (self.git_dir / "MERGE_HEAD").is_file():
            return MERGE
        return None

    def rebase_onto(self) -> str | None:
        directory = self._rebase_dir()
        if directory is None:
            return None
        onto = directory / "onto"
        return onto.read_text().strip() if onto.is_file() else None

    def main_side_refs(self, main: str) -> list[str]:
        """Commits whose trees are main's side: main, plus the rebase's upstream."""
        refs = [main]
        onto = self.rebase_onto()
        if onto:
            refs.append(onto)
        return refs

    def next_step(self) -> str | None:
        state = self.state()
        if state == MERGE:
            return "git merge --continue"
        if state == REBASE:
            return "git rebase --continue"
        return None

    # ------------------------------------------------------------------ trees and index

    def relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            raise GitRepoError(f"{path} is outside the git repository at {self.root}.") from None

    def names_in(self, ref: str, directories: Iterable[Path]) -> dict[Path, set[str]]:
        """File names directly under each of ``directories`` in the tree of ``ref``."""
        rels = {self.relative(d): d for d in directories}
        found: dict[Path, set[str]] = {d: set() for d in rels.values()}
        if not rels:
            return found
        out = self._git("ls-tree", "-r", "-z", "--name-only", ref, "--", *rels)
        for entry in out.split("\0"):
            parent, _slash, name = entry.rpartition("/")
            directory = rels.get(parent)
            if directory is not None:
                found[directory].add(name)
        return found

    def mine_names(self, main: str, files: Mapping[Path, Iterable[str]]) -> dict[Path, set[str]]:
        """Of the file names in each directory, those main's side lacks (fast form of
        :meth:`mine` for thousands of files)."""
        theirs: dict[Path, set[str]] = {d: set() for d in files}
        for ref in self.main_side_refs(main):
            for directory, names in self.names_in(ref, files).items():
                theirs[directory] |= names
        return {d: {n for n in names if n not in theirs[d]} for d, names in files.items()}

    def mine(self, main: str, paths: Iterable[Path]) -> set[Path]:
        """Of ``paths`` (files on disk), those that main's side lacks."""
        by_dir: dict[Path, list[str]] = {}
        for path in paths:
            by_dir.setdefault(path.resolve().parent, []).append(path.name)
        found = self.mine_names(main, by_dir)
        return {d / n for d, names in found.items() for n in names}

    def tracked(self, paths: Iterable[Path]) -> set[Path]:
        """Of ``paths``, those git tracks (as given)."""
        by_rel = {self.relative(p): p for p in paths}
        if not by_rel:
            return set()
        out = self._git("ls-files", "-z", "--", *by_rel)
        return {by_rel[p] for p in out.split("\0") if p in by_rel}

    def unmerged_stages(self, path: Path) -> Stages | None:
        """The index stages of ``path`` when it is unmerged (a conflict), else None."""
        rel = self.relative(path)
        out = self._git("ls-files", "-u", "-z", "--", rel)
        blobs: dict[int, str] = {}
        for entry in out.split("\0"):
            if not entry:
                continue
            info, _tab, _name = entry.partition("\t")
            _mode, sha, stage = info.split()
            blobs[int(stage)] = sha
        if not blobs:
            return None

        def text(stage: int) -> str | None:
            sha = blobs.get(stage)
            return self._git("cat-file", "blob", sha) if sha else None

        return Stages(base=text(1), ours=text(2), theirs=text(3))

    def move(self, old: Path, new: Path) -> None:
        """``git mv old new`` (the file must be tracked)."""
        self._git("mv", "--", self.relative(old), self.relative(new))

    def stage(self, paths: Iterable[Path]) -> None:
        """``git add`` every path (deletions included)."""
        rels = sorted({self.relative(p) for p in paths})
        if rels:
            self._git("add", "-A", "--", *rels)

    @property
    def index_path(self) -> Path:
        return self.git_dir / "index"

    # ------------------------------------------------------------------ rename map

    @property
    def rename_map_path(self) -> Path:
        return self.git_dir / RENAME_MAP

    def read_rename_map(self) -> dict[str, dict[str, str]]:
        """Renames done at earlier stops of a rebase: ``{app: {old: new}}``."""
        try:
            data = json.loads(self.rename_map_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            str(app): {str(k): str(v) for k, v in names.items()}
            for app, names in data.items()
            if isinstance(names, dict)
        }

    def rename_map_text(self, renames: Mapping[str, Mapping[str, str]]) -> str:
        return (
            json.dumps(
                {app: dict(names) for app, names in renames.items()}, indent=2, sort_keys=True
            )
            + "\n"
        )
