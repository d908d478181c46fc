"""What ``python -m build`` ships: the wheel and the sdist hold the package (and the license),
never tests, benchmarks or the example project; the wheel's console script works on its own."""

from __future__ import annotations

import email
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "migtools tests",
    "GIT_AUTHOR_EMAIL": "tests@migtools.invalid",
    "GIT_COMMITTER_NAME": "migtools tests",
    "GIT_COMMITTER_EMAIL": "tests@migtools.invalid",
}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build this working tree (tracked and new files, as git lists them) out of a copy, so
    the checkout gets no build/ or egg-info."""
    source = tmp_path_factory.mktemp("source")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        if (REPO / relative).is_file():
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, source / relative)
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("migtools-*.whl")
    return wheel


def test_wheel_holds_the_package_and_license_only(dist: Path) -> None:
    names = zipfile.ZipFile(_wheel(dist)).namelist()
    outside = [n for n in names if not n.startswith(("migtools/", "migtools-0.1.0.dist-info/"))]
    assert outside == []
    assert "migtools/py.typed" in names
    assert "migtools/cli.py" in names
    assert "migtools-0.1.0.dist-info/licenses/LICENSE" in names
    for forbidden in ("tests/", "bench/", "example_project/", "pgserver"):
        assert not any(forbidden in n for n in names), forbidden
    entry_points = zipfile.ZipFile(_wheel(dist)).read("migtools-0.1.0.dist-info/entry_points.txt")
    assert "migtools = migtools.cli:main" in entry_points.decode()
    assert "migtools = migtools.pytest_plugin" in entry_points.decode()


def test_wheel_metadata(dist: Path) -> None:
    raw = zipfile.ZipFile(_wheel(dist)).read("migtools-0.1.0.dist-info/METADATA").decode()
    meta = email.message_from_string(raw)
    assert meta["Name"] == "migtools"
    assert meta["License-Expression"] == "BSD-3-Clause"
    classifiers = meta.get_all("Classifier") or []
    for wanted in (
        "Framework :: Django :: 5.2",
        "Framework :: Django :: 6.0",
        "Framework :: Django :: 6.1",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ):
        assert wanted in classifiers
    # No project URL until the project has a real home (GUIDE: no URL we do not own).
    assert "urls" not in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta.get_all("Project-URL") is None


# Spelled in two parts so that `git grep` for it finds nothing in the repository either.
NOT_OURS = b"github.com/" + b"migtools"


def test_no_file_of_the_wheel_or_sdist_names_an_organisation_we_do_not_own(dist: Path) -> None:
    wheel = zipfile.ZipFile(_wheel(dist))
    named = [n for n in wheel.namelist() if NOT_OURS in wheel.read(n).lower()]
    assert named == []
    (sdist,) = dist.glob("migtools-*.tar.gz")
    with tarfile.open(sdist) as tar:
        named = [
            m.name
            for m in tar.getmembers()
            if m.isfile() and NOT_OURS in (tar.extractfile(m) or io.BytesIO()).read().lower()
        ]
    assert named == []


def test_sdist_leaves_tests_bench_and_example_out(dist: Path) -> None:
    (sdist,) = dist.glob("migtools-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = [n.split("/", 1)[1] for n in archive.getnames() if "/" in n]
    assert "LICENSE" in names
    assert "migtools/cli.py" in names
    for forbidden in ("tests", "bench", "example_project"):
        assert not any(n == forbidden or n.startswith(forbidden + "/") for n in names), forbidden


def test_console_script_of_the_wheel_runs_without_any_dependency(
    dist: Path, tmp_path: Path
) -> None:
    """Installed with --no-deps (no Django at all), `migtools lockfile` still works."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(_wheel(dist)),
        ],
        check=True,
        capture_output=True,
    )
    project = tmp_path / "proj"
    (project / "shop" / "migrations").mkdir(parents=True)
    (project / "shop" / "migrations" / "__init__.py").write_text("")
    (project / "shop" / "migrations" / "0001_initial.py").write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    initial = True\n    dependencies = []\n    operations = []\n"
    )
    env = {**os.environ, **GIT_IDENTITY}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("PYTHONPATH", None)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True, env=env)
    script = venv / "bin" / "migtools"
    version = subprocess.run([script, "--version"], capture_output=True, text=True, env=env)
    assert version.stdout == "migtools 0.1.0\n"
    probe = subprocess.run([python, "-c", "import django"], capture_output=True, text=True, env=env)
    assert probe.returncode != 0  # Django really is absent
    wrote = subprocess.run(
        [script, "lockfile"], cwd=project, capture_output=True, text=True, env=env
    )
    assert wrote.returncode == 0, wrote.stderr
    assert wrote.stdout == "Wrote migrations_lockfile.txt\n"
    check = subprocess.run(
        [script, "lockfile", "--check"], cwd=project, capture_output=True, text=True, env=env
    )
    assert (check.returncode, check.stdout) == (0, "migrations_lockfile.txt is up to date.\n")
