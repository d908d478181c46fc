"""The git repository holding the project: the one way migtools reaches git (the ``git``
command; reads never take git's optional locks, index writes go through git).

"Mine" are the migration files that main's side does not have: files absent from the tree of
the main branch (and, during a rebase, of the commit being rebased onto). That rule needs no
ours/theirs: git's "ours" is the branch when main is merged into it, main when the branch is
merged into main, and the upstream during a rebase.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from migtools.errors import GitRefError, GitRepoError, NotAGitRepoError

MERGE = "merge"
REBASE = "rebase"
STATE_DIR = "migtools"  # $GIT_DIR/migtools/: the renamer's journal and rebase rename map
_MAIN_CANDIDATES = ("origin/HEAD", "main", "master")


@dataclass(frozen=True)
class IndexEntry:
    """One index entry as ``git ls-files -s`` shows it (stage 0 when merged)."""

    mode: str
    sha: str
    stage: int
    path: str  # relative to the work tree, posix


@dataclass(frozen=True)
class Binding:
    """The git operation a renamer run belongs to: HEAD, and MERGE_HEAD during a merge or the
    rebase's onto and orig-head during a rebase (None where there is none)."""

    state: str | None
    head: str | None
    merge_head: str | None = None
    onto: str | None = None
    orig_head: str | None = None

    def describe(self) -> str:
        """What the operation is called in messages."""
        return {MERGE: "merge", REBASE: "rebase stop"}.get(self.state or "", "checkout")


@dataclass(frozen=True)
class Stages:
    """The unmerged index stages of one conflicted file (None where a side lacks it)."""

    base: str | None
    ours: str | None
    theirs: str | None


def _rev_parse(start: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``git rev-parse ARGS`` in ``start`` (C locale: its messages are matched)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", *args],
            cwd=start,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except OSError as exc:
        raise GitRepoError(f"cannot run git: {exc}") from None


class GitRepo:
    """One working tree: its root, its merge/rebase state, and the index operations we use."""

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root = root.resolve()
        self.git_dir = git_dir.resolve()
        self._null_oid: str | None = None
        self._bases: dict[tuple[str, str | None], str] = {}

    @classmethod
    def find(cls, path: Path) -> GitRepo:
        """The repository holding ``path`` (a file or a directory, existing or not)."""
        start = path
        while not start.exists() and start != start.parent:
            start = start.parent
        if start.is_file():
            start = start.parent
        # One process when it is a work tree (the common case); the two-step path below says
        # what is wrong otherwise.
        both = _rev_parse(start, "--is-bare-repository", "--absolute-git-dir", "--show-toplevel")
        lines = both.stdout.splitlines()
        if both.returncode == 0 and len(lines) == 3 and lines[0] == "false" and lines[2]:
            return cls(Path(lines[2]), Path(lines[1]))
        proc = _rev_parse(start, "--is-bare-repository", "--absolute-git-dir")
        if proc.returncode != 0:
            if "not a git repository" in proc.stderr:
                raise NotAGitRepoError(str(path))
            raise GitRepoError(f"git rev-parse failed in {start}: {proc.stderr.strip()}")
        bare, git_dir = proc.stdout.splitlines()[:2]
        if bare == "true":
            raise GitRepoError(f"{git_dir} is a bare repository.")
        top = _rev_parse(start, "--show-toplevel")
        if top.returncode != 0 or not top.stdout.strip():
            raise GitRepoError(f"{start} is not in a git work tree: {top.stderr.strip()}")
        return cls(Path(top.stdout.strip()), Path(git_dir))

    # ------------------------------------------------------------------ refs

    def _run(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        # reads never refresh the index behind our back (GIT_OPTIONAL_LOCKS=0)
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}
        try:
            return subprocess.run(
                ["git", *args],
                cwd=self.root,
                input=stdin,
                capture_output=True,
                env=env,
                check=False,
            )
        except OSError as exc:
            raise GitRepoError(f"cannot run git: {exc}") from None

    def _git(self, *args: str, stdin: bytes | None = None) -> str:
        proc = self._run(*args, stdin=stdin)
        if proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip()
            raise GitRepoError(f"git {' '.join(args)} failed: {detail}")
        return proc.stdout.decode("utf-8", "surrogateescape")

    def resolve(self, ref: str) -> str | None:
        proc = self._run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def require_commit(self, ref: str) -> str:
        """The commit ``ref`` names; :class:`GitRefError` (exit 2) with git's reason if none."""
        sha = self.resolve(ref)
        if sha is not None:
            return sha
        proc = self._run("rev-parse", "--end-of-options", ref, "--")
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = reason[0] if reason else f"'{ref}' is not a commit"
        raise GitRefError(f"Git ref '{ref}' does not exist in {self.root}: {detail}")

    def base_of(self, ref: str, until: str | None = None) -> str:
        """The commit a change since ``ref`` starts from: where ``until`` (default HEAD)
        forked from ``ref`` (their merge base, as ``git diff ref...until`` takes it), else
        ``ref`` itself. :class:`GitRefError` (exit 2) when either ref does not exist."""
        known = self._bases.get((ref, until))
        if known is not None:  # one command asks more than once (selection, then changes)
            return known
        if until is None and not ref.startswith("-"):
            # The common case in one process: both are commits and they share history.
            quick = self._run("merge-base", f"{ref}^{{commit}}", "HEAD")
            fork = quick.stdout.decode().strip() if quick.returncode == 0 else ""
            if fork:
                self._bases[ref, until] = fork
                return fork
        sha = self.require_commit(ref)
        if until is not None:
            self.require_commit(until)
        elif self.resolve("HEAD") is None:
            return sha  # no commit yet: nothing to fork from
        proc = self._run("merge-base", sha, until or "HEAD")
        fork = proc.stdout.decode().strip() if proc.returncode == 0 else ""
        self._bases[ref, until] = fork or sha
        return fork or sha

    def changed_since(
        self, ref: str, until: str | None = None, *, untracked: bool = True
    ) -> set[Path]:
        """Files added or changed since ``ref`` (since where the work forked from it, see
        :meth:`base_of`). Up to ``until`` when given (commits only); else up to the working
        tree (committed, staged or not), plus untracked files when ``untracked``."""
        base = self.base_of(ref, until)
        tail = [until] if until is not None else []
        out = self._git("diff", "-z", "--name-only", "--diff-filter=AMR", base, *tail, "--")
        if until is None and untracked:
            out += self._git("ls-files", "-z", "--others", "--exclude-standard")
        return {(self.root / name).resolve() for name in out.split("\0") if name}

    def untracked_in(self, directories: Iterable[Path]) -> set[Path]:
        """Files below ``directories`` that git neither tracks nor ignores (drafts that are
        not part of any commit)."""
        rels = sorted({self.relative(d) for d in directories if d.is_dir()})
        if not rels:
            return set()
        out = self._git("ls-files", "-z", "--others", "--exclude-standard", "--", *rels)
        return {(self.root / name).resolve() for name in out.split("\0") if name}

    def existing_at(self, ref: str, paths: Iterable[Path]) -> set[Path]:
        """Of ``paths``, those the tree of ``ref`` holds (none when ``ref`` names no commit,
        e.g. HEAD before the first commit)."""
        by_rel = {self.relative(p): p for p in paths}
        if not by_rel or self.resolve(ref) is None:
            return set()
        out = self._git("ls-tree", "-r", "-z", "--name-only", ref, "--", *sorted(by_rel))
        return {by_rel[name] for name in out.split("\0") if name in by_rel}

    def show(self, ref: str, path: Path) -> str | None:
        """The text of ``path`` in the tree of ``ref`` (None when absent there)."""
        proc = self._run("show", f"{ref}:{self.relative(path)}")
        if proc.returncode != 0:
            return None
        return proc.stdout.decode("utf-8", "replace")

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

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._run("merge-base", "--is-ancestor", ancestor, descendant).returncode == 0

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

    def _rebase_file(self, name: str) -> str | None:
        directory = self._rebase_dir()
        if directory is None:
            return None
        path = directory / name
        return path.read_text().strip() if path.is_file() else None

    def rebase_onto(self) -> str | None:
        return self._rebase_file("onto")

    def rebase_key(self) -> tuple[str, str] | None:
        """``(onto, orig-head)`` of the rebase in progress: what identifies that rebase."""
        onto, orig_head = self._rebase_file("onto"), self._rebase_file("orig-head")
        if self.state() != REBASE or not onto or not orig_head:
            return None
        return onto, orig_head

    def rebase_remaining(self) -> str | None:
        """The changes of the commits the rebase in progress has yet to replay (their patches,
        without context); None when that cannot be told."""
        directory = self._rebase_dir()
        if directory is None:
            return None
        todo = directory / "git-rebase-todo"
        if not todo.is_file():
            return None
        commits = []
        for line in todo.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in {"p", "pick", "r", "reword", "e", "edit"}:
                commits.append(words[1])
            elif len(words) >= 2 and words[0] in {"s", "squash", "f", "fixup"}:
                commits.append(words[-1] if words[1].startswith("-") else words[1])
        if not commits:
            return ""
        proc = self._run("show", "--format=", "--unified=0", "--no-color", *commits, "--")
        return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None

    def binding(self) -> Binding:
        """The git operation in progress, as a run records what it belongs to."""
        state = self.state()
        merge_head = None
        if state == MERGE:
            merge_head = (self.git_dir / "MERGE_HEAD").read_text().split()[0]
        key = self.rebase_key() if state == REBASE else None
        return Binding(
            state,
            self.resolve("HEAD"),
            merge_head,
            key[0] if key else None,
            key[1] if key else None,
        )

    def main_side_refs(self, main: str) -> list[str]:
        """Commits whose trees are main's side: main, plus the rebase's upstream."""
        refs = [main]
        onto = self.rebase_onto()
        if onto:
            refs.append(onto)
        return refs

    def next_step(self) -> str | None:
        """The git command that continues the merge or rebase in progress (None: neither)."""
        state = self.state()
        if state == MERGE:
            return "git merge --continue"
        if state == REBASE:
            return "git rebase --continue"
        return None

    def unmerged_paths(self) -> list[str]:
        """Files still conflicted in the index (relative, sorted)."""
        out = self._git("ls-files", "-u", "-z")
        return sorted({e.partition("\t")[2] for e in out.split("\0") if e})

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

    def stage(self, paths: Iterable[Path]) -> None:
        """``git add`` every path (deletions included)."""
        rels = sorted({self.relative(p) for p in paths})
        if rels:
            self._git("add", "-A", "--", *rels)

    def index_entries(self, paths: Iterable[Path]) -> list[IndexEntry]:
        """The index entries (every stage) of ``paths``."""
        rels = sorted({self.relative(p) for p in paths})
        if not rels:
            return []
        entries = []
        for line in self._git("ls-files", "-s", "-z", "--", *rels).split("\0"):
            if not line:
                continue
            info, _tab, name = line.partition("\t")
            mode, sha, stage = info.split()
            entries.append(IndexEntry(mode, sha, int(stage), name))
        return entries

    def modified(self, paths: Iterable[Path]) -> set[Path]:
        """Of ``paths``, the merged tracked files whose working tree differs from the index
        (by content: ``git hash-object``, which, unlike ``git diff``, never rewrites the
        index)."""
        by_rel = {self.relative(p): p for p in paths}
        staged = {e.path: e.sha for e in self.index_entries(by_rel.values()) if e.stage == 0}
        unmerged = {e.path for e in self.index_entries(by_rel.values()) if e.stage != 0}
        present = [rel for rel in sorted(staged) if rel not in unmerged and by_rel[rel].is_file()]
        found = {by_rel[rel] for rel in staged if rel not in unmerged and rel not in present}
        if present:
            shas = self._git("hash-object", "--", *present).split()
            found |= {
                by_rel[rel] for rel, sha in zip(present, shas, strict=True) if sha != staged[rel]
            }
        return found

    def bytes_at(self, ref: str, rel: str) -> bytes | None:
        """The content of ``rel`` in the tree of ``ref`` (None: absent)."""
        proc = self._run("cat-file", "blob", f"{ref}:{rel}")
        return proc.stdout if proc.returncode == 0 else None

    @property
    def null_oid(self) -> str:
        """The all-zero object id of this repository's hash (40 digits for SHA-1, 64 for
        SHA-256)."""
        if self._null_oid is None:
            fmt = self._run("rev-parse", "--show-object-format").stdout.decode().strip()
            self._null_oid = "0" * (64 if fmt == "sha256" else 40)
        return self._null_oid

    def blob_text(self, sha: str) -> str:
        return self._git("cat-file", "blob", sha)

    def store_blob(self, data: bytes) -> str:
        """``git hash-object -w``: the object id of ``data``, written to the object store."""
        return self._git("hash-object", "-w", "--stdin", stdin=data).strip()

    def set_index(self, remove: Iterable[str], entries: Iterable[IndexEntry]) -> None:
        """Drop every stage of ``remove`` (relative paths), then add ``entries``, in one
        ``git update-index --index-info`` (git takes the index lock)."""
        lines = [f"0 {self.null_oid}\t{rel}" for rel in remove]
        lines += [f"{e.mode} {e.sha} {e.stage}\t{e.path}" for e in entries]
        if lines:
            self._git(
                "update-index", "--index-info", stdin="".join(f"{x}\n" for x in lines).encode()
            )
            # entries set from blobs carry no stat data: refresh them, or `git merge --abort`
            # and `git reset --merge` take them for modified files
            self._run("update-index", "-q", "--refresh")

    def refresh_index(self) -> None:
        """``git update-index -q --refresh``: stat data of entries whose files match again."""
        self._run("update-index", "-q", "--refresh")

    @property
    def state_dir(self) -> Path:
        """``$GIT_DIR/migtools/``, where the renamer keeps its journal and rename map."""
        return self.git_dir / STATE_DIR
