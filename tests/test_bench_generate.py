"""bench/generate.py must keep producing a project Django loads, with models matching history."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench.generate import generate

# Run in the generated project's own process (its settings, not the test suite's).
PROBE = """
import json
import django
django.setup()
from django.apps import apps
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

loader = MigrationLoader(None, ignore_no_migrations=True)
leaves = {}
for app, name in loader.graph.leaf_nodes():
    leaves.setdefault(app, []).append(name)
changes = MigrationAutodetector(
    loader.project_state(), ProjectState.from_apps(apps)
).changes(graph=loader.graph)
print(json.dumps({"leaves": leaves, "changes": sorted(changes), "nodes": len(loader.graph.nodes)}))
"""


@pytest.mark.parametrize("cross_app_fks", [False, True])
def test_generated_project_loads_with_one_leaf_per_app(tmp_path: Path, cross_app_fks: bool) -> None:
    project = generate(tmp_path / "proj", apps=2, migrations=3, cross_app_fks=cross_app_fks)
    assert project.manage_py.is_file()
    assert project.apps == ["app00", "app01"]
    proc = subprocess.run(
        [project.python, "-c", PROBE],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = {app: names for app, names in result["leaves"].items() if app in project.apps}
    assert ours == {app: [leaf] for app, leaf in project.leaves.items()}
    assert result["changes"] == []  # models.py matches the migrations' final state


def test_generated_project_git_repo(tmp_path: Path) -> None:
    project = generate(tmp_path / "proj", apps=1, migrations=2, git=True)
    head = subprocess.run(
        ["git", "rev-parse", "--abbrev-ref", "HEAD"],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert head.stdout.strip() == "main"
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project.root, capture_output=True, text=True
    )
    assert status.stdout == ""
    migration = project.root / "app00" / "migrations" / "0002_item_field_0002.py"
    text = migration.read_text()
    assert "class Migration(CheckedMigration):" in text
    assert "is_post_deployment = False" in text


def test_large_project_generator_loads_and_matches_its_models(tmp_path: Path) -> None:
    """bench/large_project.py at a small size: every shape, one leaf per app (the squash in
    place of what it replaces), models.py equal to the history's final state."""
    from bench.large_project import MIN_MIGRATIONS, generate_large

    project = generate_large(
        tmp_path / "proj", apps=6, migrations=MIN_MIGRATIONS, database_url="postgres://u@h/x"
    )
    proc = subprocess.run(
        [project.python, "-c", PROBE],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = {app: names for app, names in result["leaves"].items() if app in project.apps}
    assert ours == {app: [leaf] for app, leaf in project.leaves.items()}
    assert result["changes"] == []
    squashed = list((project.root / "app05" / "migrations").glob("0001_squashed_*.py"))
    assert len(squashed) == 1
