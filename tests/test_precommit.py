"""The pre-commit hooks (``.pre-commit-hooks.yaml`` and ``migtools/hook.py``), run by pre-commit
itself: a real project with a real ``.pre-commit-config.yaml`` naming both hooks from a copy
of this checkout, committed with ``git commit`` and checked with ``pre-commit run`` in every
mode (staged files, ``--files``, ``--all-files``, ``--from-ref/--to-ref``).

Both hooks are ``language: script``: pre-commit installs nothing, so no wheelhouse is needed;
the ``python3`` first on PATH runs them (here: this test environment's, or a bare virtualenv
without Django to show the one-line message)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from tests.miniproject import MiniProject, make_project

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from generate import GIT_IDENTITY, generate  # noqa: E402

PRE_COMMIT = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which(
    "pre-commit"
)
needs_pre_commit = pytest.mark.skipif(PRE_COMMIT is None, reason="pre-commit is in the test extra")


def test_hook_definitions() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"migtools-lockfile", "migtools-verify"}
    for hook in hooks.values():
        assert hook["language"] == "script"  # nothing installed: no Django, no pglast
        assert os.access(REPO / hook["entry"], os.X_OK), hook["entry"]
    lock, verify = hooks["migtools-lockfile"], hooks["migtools-verify"]
    assert lock["pass_filenames"] is False
    assert verify.get("pass_filenames", True) is True
    pattern = re.compile(lock["files"])
    for path in ("shop/migrations/0002_x.py", "migrations_lockfile.txt", "a/b/apps.py"):
        assert pattern.search(path), path
    assert not pattern.search("shop/models.py")
    assert "github.com" not in (REPO / ".pre-commit-hooks.yaml").read_text()


def test_the_lockfile_hook_imports_only_the_standard_library_and_migtools_cli() -> None:
    """What the lockfile hook needs installed: nothing. Run as pre-commit runs it, with the
    script's own sys.path, and list what it imported from outside the standard library."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{str(REPO / 'hooks/migtools-lockfile')!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(REPO / 'hooks/migtools-lockfile')!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "third = sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)"
        " - {'__main__', 'migtools'})\n"
        "print(third)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", probe], cwd=REPO, capture_output=True, text=True
    )
    assert proc.stdout.splitlines()[-1] == "[]", proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This working tree as it is (tracked and new files, not ignored ones), committed in a
    repository of its own (pre-commit clones the hooks from a commit): (path, sha)."""
    repo = tmp_path_factory.mktemp("hook-repo")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = REPO / relative
        if source.is_file():
            (repo / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / relative)
    env = {**os.environ, **GIT_IDENTITY}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "hooks"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    return repo, sha


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def _env(home: Path, python_bin: Path = Path(sys.executable).parent) -> dict[str, str]:
    """The environment of a commit: python_bin first on PATH, no virtualenv active."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "PYTHONPATH", "MIGTOOLS_PYTHON")
    }
    env.update(GIT_IDENTITY)
    env["PRE_COMMIT_HOME"] = str(home)
    env["PATH"] = f"{python_bin}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONWARNINGS"] = "ignore"
    return env


class Repo:
    """A project in a git repository with both hooks in its .pre-commit-config.yaml."""

    def __init__(self, project: MiniProject, env: dict[str, str]) -> None:
        self.project = project
        self.root = project.root
        self.env = env

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["git", *args], cwd=self.root, env=self.env, capture_output=True, text=True
        )
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def pre_commit(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PRE_COMMIT), *args], cwd=self.root, env=self.env, capture_output=True, text=True
        )

    def stage(self) -> None:
        """``git add -A`` with the lockfile written for what is staged."""
        self.git("add", "-A")
        self.lockfile()
        self.git("add", "-A")

    def lockfile(self) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "migtools.cli", "lockfile", "--staged"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr


def _repo(root: Path, hook_repo: tuple[Path, str], env: dict[str, str]) -> Repo:
    project = make_project(root)
    path, sha = hook_repo
    config = {
        "repos": [
            {
                "repo": str(path),
                "rev": sha,
                "hooks": [{"id": "migtools-lockfile"}, {"id": "migtools-verify"}],
            }
        ]
    }
    (root / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    (root / ".gitignore").write_text("__pycache__/\n")
    repo = Repo(project, env)
    repo.git("init", "-q", "-b", "main")
    return repo


CHECKED = """\
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [{deps}]
    operations = [{ops}]
"""
REMOVE_NAME = 'migrations.RemoveField("item", "name")'
ADD_NOTE = 'migrations.AddField("item", "note", models.TextField(null=True))'


def _migration(repo: Repo, name: str, after: str, ops: str) -> str:
    relative = f"shop/migrations/{name}.py"
    repo.project.write(relative, CHECKED.format(deps=f"('shop', '{after}')", ops=ops))
    return relative


def _failed_on(result: subprocess.CompletedProcess[str], rule: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-4000:]
    assert re.search(r"migtools verify_migrations\.+Failed", out), out[-4000:]
    assert f"[{rule}]" in out, out[-4000:]
    assert "Traceback" not in out, out[-4000:]


def _passed(result: subprocess.CompletedProcess[str]) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "Failed" not in out, out[-4000:]


@needs_pre_commit
def test_hooks_judge_exactly_the_change(
    tmp_path: Path, hook_repo: tuple[Path, str], pre_commit_home: Path
) -> None:
    repo = _repo(tmp_path / "proj", hook_repo, _env(pre_commit_home))
    assert repo.project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    repo.stage()
    # The first commit of a repository: no HEAD, judged on its own (safe) content.
    _passed(repo.pre_commit("run"))
    repo.git("commit", "-q", "--no-verify", "-m", "initial")
    repo.pre_commit("install")

    # An unsafe migration, staged: every mode fails on it.
    unsafe = _migration(repo, "0002_drop_name", "0001_initial", REMOVE_NAME)
    repo.stage()
    _failed_on(repo.pre_commit("run"), "drop-column")
    committed = repo.git("commit", "-q", "-m", "drop name", check=False)
    assert committed.returncode == 1
    assert "[drop-column]" in committed.stdout + committed.stderr
    _failed_on(repo.pre_commit("run", "--files", unsafe), "drop-column")
    _failed_on(repo.pre_commit("run", "--all-files"), "drop-column")
    repo.git("commit", "-q", "--no-verify", "-m", "drop name")
    _failed_on(repo.pre_commit("run", "--from-ref", "HEAD~1", "--to-ref", "HEAD"), "drop-column")
    # --all-files judges the committed history as production met it: 0001 is fine.
    everything = repo.pre_commit("run", "--all-files")
    assert "0001_initial" not in everything.stdout

    # A safe commit with an unsafe, untracked draft beside it (a second leaf, even): the
    # commit passes, with pre-commit run and with git commit itself.
    repo.project.add_model_field("shop", "note = models.TextField(null=True)")
    _migration(repo, "0003_note", "0002_drop_name", ADD_NOTE)
    repo.git("add", "-A")
    repo.stage()
    draft = _migration(repo, "0003_draft", "0002_drop_name", 'migrations.DeleteModel("item")')
    assert repo.git("status", "--porcelain", draft).stdout.startswith("??")
    repo.project.write("shop/migrations/0004_wip.py", "class Migration(migrations.Migr\n")
    _passed(repo.pre_commit("run"))
    committed = repo.git("commit", "-q", "-m", "note", check=False)
    assert committed.returncode == 0, committed.stdout + committed.stderr
    # Named explicitly, the draft is judged.
    _failed_on(repo.pre_commit("run", "--files", draft), "drop-table")


@needs_pre_commit
def test_a_first_commit_fails_on_its_own_content(
    tmp_path: Path, hook_repo: tuple[Path, str], pre_commit_home: Path
) -> None:
    repo = _repo(tmp_path / "proj", hook_repo, _env(pre_commit_home))
    assert repo.project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    _migration(repo, "0002_raw", "0001_initial", 'migrations.RunSQL("DROP TABLE legacy")')
    repo.stage()
    repo.pre_commit("install")
    committed = repo.git("commit", "-q", "-m", "first", check=False)
    out = committed.stdout + committed.stderr
    assert committed.returncode == 1, out
    assert "Git ref" not in out and "does not exist" not in out
    assert "[run-sql-not-safe]" in out, out


@needs_pre_commit
def test_without_the_project_s_interpreter_one_line_says_which_to_use(
    tmp_path: Path, hook_repo: tuple[Path, str], pre_commit_home: Path
) -> None:
    """A commit from a GUI: the python3 on PATH has neither Django nor migtools."""
    bare = tmp_path / "bare"
    venv.EnvBuilder(with_pip=False).create(bare)
    repo = _repo(tmp_path / "proj", hook_repo, _env(pre_commit_home, bare / "bin"))
    assert repo.project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    repo.stage()
    result = repo.pre_commit("run", "migtools-verify")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out and "ImportError" not in out
    (line,) = [x for x in out.splitlines() if x.startswith("migtools-verify: ")]
    assert line.startswith(f"migtools-verify: {bare / 'bin'}")
    assert "cannot import django and migtools" in line
    assert "MIGTOOLS_PYTHON=/path/to/venv/bin/python" in line
    # Naming the interpreter is enough; so is a .venv beside manage.py.
    repo.env["MIGTOOLS_PYTHON"] = sys.executable
    _passed(repo.pre_commit("run", "migtools-verify"))
    del repo.env["MIGTOOLS_PYTHON"]
    (repo.root / ".venv" / "bin").mkdir(parents=True)
    wrapper = repo.root / ".venv" / "bin" / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    _passed(repo.pre_commit("run", "migtools-verify"))
    # The lockfile hook needs nothing but Python 3.11+: it runs under the bare one.
    _passed(repo.pre_commit("run", "migtools-lockfile"))


@needs_pre_commit
def test_try_repo_lockfile_hook(
    tmp_path: Path, hook_repo: tuple[Path, str], pre_commit_home: Path
) -> None:
    project = generate(tmp_path / "proj", 3, 4, git=True, cross_app_fks=True)
    subprocess.run([sys.executable, "-m", "migtools.cli", "lockfile"], cwd=project.root, check=True)
    env = _env(pre_commit_home)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=project.root, env=env, check=True, capture_output=True)

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PRE_COMMIT), "try-repo", str(hook_repo[0]), "migtools-lockfile", "--all-files"],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
        )

    git("add", "-A")
    git("commit", "-q", "-m", "lockfile")
    result = hook()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "migtools lockfile" in result.stdout
    assert "Passed" in result.stdout

    app = project.apps[1]
    leaf = project.leaves[app]
    new = project.root / app / "migrations" / "0005_more.py"
    new.write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        f"    dependencies = [({app!r}, {leaf!r})]\n    operations = []\n"
    )
    result = hook()  # untracked: not part of any commit, so not judged
    assert result.returncode == 0, result.stdout[-3000:]
    git("add", "-A")
    result = hook()
    assert result.returncode == 1, result.stdout[-3000:]
    assert "Failed" in result.stdout
    assert f"{app}: lockfile says '{leaf}', latest migration is '0005_more'" in result.stdout


def test_verify_hook_in_a_monorepo_finds_backend_manage_py(tmp_path: Path) -> None:
    """The hook script as pre-commit runs it (from the repository root, file names relative
    to it): the only manage.py git tracks is used, run from its directory, and options in
    `args` reach verify_migrations."""
    mono = tmp_path / "mono"
    project = make_project(mono / "backend")
    assert project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    env = _env(tmp_path / "home")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "0001"]):
        subprocess.run(["git", *args], cwd=mono, env=env, check=True, capture_output=True)
    project.write(
        "shop/migrations/0002_drop_name.py",
        CHECKED.format(deps="('shop', '0001_initial')", ops=REMOVE_NAME),
    )
    subprocess.run(["git", "add", "-A"], cwd=mono, env=env, check=True)
    changed = "backend/shop/migrations/0002_drop_name.py"

    def hook(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REPO / "hooks" / "migtools-verify"), *args],
            cwd=mono,
            env=env,
            capture_output=True,
            text=True,
        )

    result = hook("--format", "github", changed)
    assert result.returncode == 1, result.stderr
    assert f"::error file={changed},line=" in result.stdout
    assert hook("backend/shop/migrations/0001_initial.py").returncode == 0
    # Two manage.py files: one line asking which.
    (mono / "tools").mkdir()
    (mono / "tools" / "manage.py").write_text("")
    subprocess.run(["git", "add", "-A"], cwd=mono, env=env, check=True)
    which = hook(changed)
    assert which.returncode == 1
    assert which.stderr == (
        "migtools-verify: no manage.py at the repository root (git tracks backend/manage.py, "
        "tools/manage.py): name it in the hook's `args: [--manage, path/to/manage.py]`.\n"
    )
    assert hook("--manage", "backend/manage.py", changed).returncode == 1
    assert hook("--manage", "backend/manage.py", "backend/shop/models.py").returncode == 0
