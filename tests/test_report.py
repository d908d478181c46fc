"""The verifier's output formats (migtools.verifier.report): text, github, gitlab, markdown;
on reports built here, and end to end through ``verify_migrations`` on a real project."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from migtools.rules.catalogue import CATALOGUE, Finding, Level
from migtools.verifier import report as formats
from tests.miniproject import MiniProject, make_project

REPO = Path(__file__).resolve().parent.parent


def _report() -> formats.Report:
    drop = Finding(
        "drop-column",
        Level.ERROR,
        "Removes column 'name' of shop_item.",
        app_label="shop",
        migration_name="0002_drop",
        operation_index=0,
        operation="Remove field name from item",
        sql='ALTER TABLE "shop_item" DROP COLUMN "name" CASCADE;',
        path=str(Path.cwd() / "shop/migrations/0002_drop.py"),
        line=7,
    )
    first = formats.MigrationReport(
        ("shop", "0001_initial"),
        str(Path.cwd() / "shop/migrations/0001_initial.py"),
        entries=['CREATE TABLE "shop_item" ("id" bigint NOT NULL PRIMARY KEY);'],
        op_starts=[0],
    )
    second = formats.MigrationReport(
        ("shop", "0002_drop"),
        drop.path,
        entries=["--", "-- Remove field name from item", "--", drop.sql or ""],
        findings=[drop],
        op_starts=[0],
    )
    return formats.Report([first, second])


def test_docs_url_is_the_repository_of_pyproject_and_every_rule_has_an_anchor() -> None:
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    assert f"{urls['Repository']}/blob/main/docs/rules.md" == formats.DOCS_URL
    headings = set(re.findall(r"^## `([a-z0-9-]+)`$", (REPO / "docs/rules.md").read_text(), re.M))
    assert set(CATALOGUE) <= headings


def test_text_ends_each_finding_with_its_docs_link_and_recipe_at_v2() -> None:
    lines = formats.as_text(_report())
    assert lines[-2] == f"    docs: {formats.DOCS_URL}#drop-column"
    assert not any("SafeRemoveField" in line for line in lines)
    verbose = formats.as_text(_report(), verbosity=2)
    recipe = CATALOGUE["drop-column"].recipe
    assert verbose[-2 - len(recipe) : -2] == [f"    {n}. {s}" for n, s in enumerate(recipe, 1)]
    assert verbose[-2] == f"    docs: {formats.DOCS_URL}#drop-column"


def test_github_annotation_carries_every_recipe_step() -> None:
    (line, summary) = formats.as_github(_report())
    assert line.startswith(
        "::error file=shop/migrations/0002_drop.py,line=7,title=migtools drop-column::"
    )
    body = line.split("::", 2)[2].replace("%0A", "\n")
    for n, step in enumerate(CATALOGUE["drop-column"].recipe, 1):
        assert f"\n{n}. {step}" in body.replace("%25", "%")
    assert "SafeRemoveField(..., deletion_action=DeletionAction.DELETE)" in body
    assert body.endswith(f"Docs: {formats.DOCS_URL}#drop-column")
    assert summary == "2 migrations verified: 1 error, 0 warnings."


def test_gitlab_code_quality_report() -> None:
    issues = json.loads(formats.as_gitlab(_report()))
    assert len(issues) == 1
    issue = issues[0]
    assert issue["check_name"] == "drop-column"
    assert issue["severity"] == "major"
    assert issue["location"] == {"path": "shop/migrations/0002_drop.py", "lines": {"begin": 7}}
    assert "SafeRemoveField" in issue["content"]["body"]
    assert re.fullmatch(r"[0-9a-f]{64}", issue["fingerprint"])
    assert json.loads(formats.as_gitlab(_report()))[0]["fingerprint"] == issue["fingerprint"]
    assert json.loads(formats.as_gitlab(formats.Report())) == []


def test_markdown_has_a_sql_block_per_migration_and_the_full_recipe() -> None:
    body = formats.as_markdown(_report())
    assert body.startswith(formats.MARKDOWN_MARKER + "\n### migtools: 2 migrations verified")
    assert body.count("```sql\n") == 2
    assert "#### `shop.0001_initial`" in body and "#### `shop.0002_drop`" in body
    assert "No findings." in body  # 0001
    assert "-- migtools: drop-column: Removes column 'name' of shop_item." in body
    assert f"[`drop-column`]({formats.DOCS_URL}#drop-column)" in body
    for n, step in enumerate(CATALOGUE["drop-column"].recipe, 1):
        assert f"    {n}. {step}" in body


def test_markdown_fence_is_never_closed_by_the_sql() -> None:
    m = formats.MigrationReport(("a", "0001_x"), None, entries=["SELECT '```';"])
    body = formats.as_markdown(formats.Report([m]))
    assert "````sql\nSELECT '```';\n````" in body


# -- end to end ------------------------------------------------------------------------------

REMOVE_FIELD = """\
from django.db import migrations

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RemoveField("item", "name")]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> MiniProject:
    proj = make_project(tmp_path_factory.mktemp("report") / "p")
    assert proj.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    # Applied, so shop_item is an existing table to the verifier.
    assert proj.manage("migrate", "shop", "0001", "-v0").returncode == 0
    proj.write("shop/migrations/0002_drop_name.py", REMOVE_FIELD)
    return proj


def test_plain_remove_field_annotation_names_safe_remove_field(project: MiniProject) -> None:
    result = project.manage("verify_migrations", "shop", "--format", "github")
    assert result.returncode == 1
    (annotation,) = [line for line in result.out.splitlines() if "drop-column" in line]
    assert annotation.startswith("::error file=shop/migrations/0002_drop_name.py,line=")
    assert "SafeRemoveField(..., deletion_action=DeletionAction.MOVE_TO_PENDING)" in annotation


def test_markdown_through_the_command(project: MiniProject) -> None:
    result = project.manage("verify_migrations", "shop", "--format", "markdown")
    assert result.returncode == 1
    assert result.out.startswith(formats.MARKDOWN_MARKER)
    assert result.out.count("```sql\n") == 2
    assert 'DROP COLUMN "name"' in result.out
    assert "**error** [`drop-column`]" in result.out


def test_text_through_the_command_links_the_docs(project: MiniProject) -> None:
    result = project.manage("verify_migrations", "shop", "0002")
    assert f"    docs: {formats.DOCS_URL}#drop-column" in result.out
    assert "SafeRemoveField" not in result.out
    result = project.manage("verify_migrations", "shop", "0002", "-v", "2")
    assert "    2. Replace RemoveField with `SafeRemoveField(" in result.out
    gitlab = project.manage("verify_migrations", "shop", "--format", "gitlab")
    assert json.loads(gitlab.out)[0]["check_name"] == "drop-column"
