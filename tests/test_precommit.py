"""The pre-commit hooks (``.pre-commit-hooks.yaml``), run by pre-commit itself with
``pre-commit try-repo <this checkout>`` in a throwaway git project.

pre-commit builds its own virtualenv for ``language: python`` and pip-installs this checkout
there. That install runs offline (``PIP_NO_INDEX``): migtools' wheel and its dependencies come
from a wheelhouse built here beforehand from the machine's package index."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from generate import GIT_IDENTITY, generate  # noqa: E402

PRE_COMMIT = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which(
    "pre-commit"
)


def test_hook_definitions() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"migtools-lockfile", "migtools-verify"}
    lock = hooks["migtools-lockfile"]
    assert (lock["entry"], lock["language"], lock["pass_filenames"]) == (
        "migtools lockfile --check",
        "python",
        False,
    )
    verify = hooks["migtools-verify"]
    assert verify["language"] == "system"
    assert verify["entry"].startswith("python manage.py verify_migrations")
    pattern = re.compile(lock["files"])
    for path in ("shop/migrations/0002_x.py", "migrations_lockfile.txt", "a/b/apps.py"):
        assert pattern.search(path), path
    assert not pattern.search("shop/models.py")


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree as it is (tracked and new files, not ignored ones), committed in a
    repository of its own: try-repo reads the hook manifest from a commit."""
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
    return repo


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's wheel, its dependencies and the build backend, for offline installs."""
    house = tmp_path_factory.mktemp("wheelhouse")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w"]
    for args in ([str(REPO)], ["setuptools>=68", "wheel"]):
        proc = subprocess.run([*pip, str(house), *args], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(house.glob("migtools-*.whl"))
    return house


@pytest.mark.skipif(PRE_COMMIT is None, reason="pre-commit is in the test extra")
def test_try_repo_lockfile_hook(tmp_path: Path, hook_repo: Path, wheelhouse: Path) -> None:
    project = generate(tmp_path / "proj", 3, 4, git=True, cross_app_fks=True)
    subprocess.run([sys.executable, "-m", "migtools.cli", "lockfile"], cwd=project.root, check=True)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)},
        **GIT_IDENTITY,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse),
        "PYTHONPATH": "",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=project.root, env=env, check=True, capture_output=True)

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PRE_COMMIT), "try-repo", str(hook_repo), "migtools-lockfile", "--all-files"],
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
    (project.root / app / "migrations" / "0005_more.py").write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        f"    dependencies = [({app!r}, {leaf!r})]\n    operations = []\n"
    )
    git("add", "-A")
    result = hook()
    assert result.returncode == 1, result.stdout[-3000:]
    assert "Failed" in result.stdout
    assert f"{app}: lockfile says '{leaf}', latest migration is '0005_more'" in result.stdout
