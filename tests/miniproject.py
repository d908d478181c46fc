"""A small real Django project written into a temp dir and driven through ``manage.py`` in a
subprocess, the way a user runs migtools (settings read ``DATABASE_URL``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

SETTINGS = """\
import os

import dj_database_url

SECRET_KEY = "miniproject"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["migtools", "django.contrib.contenttypes", "django.contrib.auth", {apps}]
DATABASES = {{"default": dj_database_url.parse(os.environ["DATABASE_URL"])}}
{extra}
"""

MANAGE = """\
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""


@dataclass(frozen=True)
class Result:
    out: str
    err: str
    returncode: int


@dataclass
class MiniProject:
    root: Path

    @property
    def lockfile(self) -> Path:
        return self.root / "migrations_lockfile.txt"

    def manage(self, *args: str) -> Result:
        return self.python("manage.py", *args)

    def python(self, script: str, *args: str) -> Result:
        """Run a script of the project (path relative to its root) in a subprocess."""
        env = {**os.environ, "PYTHONPATH": str(self.root), "PYTHONWARNINGS": "ignore"}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        proc = subprocess.run(
            [sys.executable, script, *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
        )
        return Result(proc.stdout, proc.stderr, proc.returncode)

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def add_model_field(self, app: str, line: str) -> None:
        path = self.root / app / "models.py"
        path.write_text(path.read_text() + f"    {line}\n", encoding="utf-8")

    def snapshot(self) -> dict[str, bytes]:
        """Every file's bytes (to prove a refused run changed nothing)."""
        return {
            str(p.relative_to(self.root)): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        }


def make_project(
    root: Path, apps: tuple[str, ...] = ("shop",), extra_settings: str = ""
) -> MiniProject:
    root.mkdir(parents=True, exist_ok=True)
    (root / "proj").mkdir()
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "settings.py").write_text(
        SETTINGS.format(apps=", ".join(repr(a) for a in apps), extra=extra_settings)
    )
    (root / "manage.py").write_text(MANAGE)
    for app in apps:
        (root / app).mkdir()
        (root / app / "__init__.py").write_text("")
        (root / app / "models.py").write_text(
            "from django.db import models\n\n\nclass Item(models.Model):\n"
            "    name = models.CharField(max_length=20)\n"
        )
    return MiniProject(root)
