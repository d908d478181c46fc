"""The verifier's output formats (migtools.verifier.report): text, github, gitlab, markdown;
on reports built here, and end to end through ``verify_migrations`` on a real project."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from migtools.rules.catalogue import CATALOGUE, Finding, Level
from migtools.verifier import report as formats
from migtools.verifier.run import merge
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


def test_every_rule_has_an_anchor_in_docs_rules() -> None:
    headings = set(re.findall(r"^## `([a-z0-9-]+)`$", (REPO / "docs/rules.md").read_text(), re.M))
    assert set(CATALOGUE) <= headings


def test_text_ends_each_finding_with_the_first_step_and_explain_and_the_recipe_at_v2() -> None:
    lines = formats.as_text(_report())
    first = CATALOGUE["drop-column"].recipe[0]
    assert lines[-3:-1] == [
        f"    fix: {first}",
        "    `manage.py verify_migrations --explain drop-column` for why and the full recipe",
    ]
    assert not any("SafeRemoveField" in line for line in lines)  # step 2 is -v 2 only
    verbose = formats.as_text(_report(), verbosity=2)
    recipe = CATALOGUE["drop-column"].recipe
    assert verbose[-1 - len(recipe) : -1] == [f"    {n}. {s}" for n, s in enumerate(recipe, 1)]
    assert verbose[-2 - len(recipe)] == f"    why: {CATALOGUE['drop-column'].why}"
    assert not any("--explain" in line for line in verbose)


def test_github_annotation_carries_every_recipe_step() -> None:
    (line, summary) = formats.as_github(_report())
    assert line.startswith(
        "::error file=shop/migrations/0002_drop.py,line=7,title=migtools drop-column::"
    )
    body = line.split("::", 2)[2].replace("%0A", "\n")
    for n, step in enumerate(CATALOGUE["drop-column"].recipe, 1):
        assert f"\n{n}. {step}" in body.replace("%25", "%")
    assert "SafeRemoveField(..., deletion_action=DeletionAction.DELETE)" in body
    assert body.endswith(f"Why: {CATALOGUE['drop-column'].why}")
    assert "http" not in body
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
    assert "- **error** `drop-column` (operation 1" in body
    assert "http" not in body
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
    assert "**error** `drop-column`" in result.out


def test_text_through_the_command_says_what_to_do(project: MiniProject) -> None:
    result = project.manage("verify_migrations", "shop", "0002")
    assert f"    fix: {CATALOGUE['drop-column'].recipe[0]}" in result.out
    assert "--explain drop-column` for why and the full recipe" in result.out
    assert "http" not in result.out
    assert "SafeRemoveField" not in result.out
    result = project.manage("verify_migrations", "shop", "0002", "-v", "2")
    assert "    2. Replace RemoveField with `SafeRemoveField(" in result.out
    gitlab = project.manage("verify_migrations", "shop", "--format", "gitlab")
    assert json.loads(gitlab.out)[0]["check_name"] == "drop-column"


# -- reviewer-facing limits, end to end on a 120-model app ------------------------------------

MODELS = 120
REMOVE_FIELDS = """\
from django.db import migrations

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("shop", "{after}")]
    operations = [
{ops}
    ]
"""


def _remove(after: str, field: str, models: range) -> str:
    ops = "\n".join(f'        migrations.RemoveField("model{i:03d}", "{field}"),' for i in models)
    return REMOVE_FIELDS.format(after=after, ops=ops)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> MiniProject:
    """A new app of 120 models (0001, as makemigrations writes it), then 0002 dropping a
    column of each (120 errors), 0003 dropping another of 15 (15 errors) and 0004, a RunSQL
    of three identical statements."""
    proj = make_project(tmp_path_factory.mktemp("big") / "p")
    lines = ["from django.db import models", ""]
    for i in range(MODELS):
        parent = f'    parent = models.ForeignKey("model{i - 1:03d}", models.CASCADE, null=True)\n'
        lines.append(
            f"class Model{i:03d}(models.Model):\n"
            "    name = models.CharField(max_length=100, db_index=True)\n"
            "    a = models.IntegerField(null=True)\n"
            "    b = models.IntegerField(null=True)\n" + (parent if i else "")
        )
    (proj.root / "shop" / "models.py").write_text("\n".join(lines))
    made = proj.manage("makemigrations", "shop", "-n", "initial")
    assert made.returncode == 0, made.err
    proj.write("shop/migrations/0002_drop_a.py", _remove("0001_initial", "a", range(MODELS)))
    proj.write("shop/migrations/0003_drop_b.py", _remove("0002_drop_a", "b", range(15)))
    proj.write(
        "shop/migrations/0004_raw.py",
        REMOVE_FIELDS.format(
            after="0003_drop_b",
            ops='        migrations.RunSQL(["DROP TABLE legacy"] * 3, migrations.RunSQL.noop),',
        ),
    )
    return proj


def test_markdown_of_a_120_model_app_fits_a_comment_and_names_every_finding(
    big: MiniProject,
) -> None:
    from markdown_it import MarkdownIt

    findings = json.loads(big.manage("verify_migrations", "shop", "--format", "json").out)
    assert findings["schema"] == formats.JSON_SCHEMA
    assert findings["errors"] >= MODELS + 15
    result = big.manage("verify_migrations", "shop", "--format", "markdown")
    assert result.returncode == 1
    body = result.out
    assert len(body) <= formats.MARKDOWN_LIMIT
    full = re.search(r"The full report \(([\d,]+) characters\)", body)
    assert full and int(full.group(1).replace(",", "")) > 65_536
    assert body.startswith(formats.MARKDOWN_MARKER)
    lines = body.splitlines()
    for f in findings["findings"]:
        wanted = f"`{f['rule']}`"
        assert any(wanted in line and f["message"] in line for line in lines), f
    assert "](" not in body  # no links: the rule text ships in the package
    # What was left out is said, and the SQL that fits is folded in <details>.
    assert "_SQL left out for room: " in body
    assert "<details><summary><code>shop.0002_drop_a</code></summary>" in body  # findings first

    # CommonMark: every SQL fence opens and closes, and the note after them is prose.
    tokens = MarkdownIt("commonmark").parse(body)
    fences = [t for t in tokens if t.type == "fence"]
    assert fences and all(t.info == "sql" for t in fences)
    assert len(fences) == body.count("<details><summary>")
    paragraphs = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "paragraph_open"]
    assert any(p.startswith("_SQL left out for room: ") for p in paragraphs)
    html = MarkdownIt("commonmark").render(body)
    assert "<table>" not in html  # CommonMark has no tables: they stay text, GFM renders them
    assert html.count('<pre><code class="language-sql">') == len(fences)


def test_the_full_markdown_renders_with_commonmark() -> None:
    from markdown_it import MarkdownIt

    body = formats.as_markdown(_report())
    tokens = MarkdownIt("commonmark").parse(body)
    assert [t.info for t in tokens if t.type == "fence"] == ["sql", "sql"]
    html = MarkdownIt("commonmark").render(body)
    assert "<a href" not in html and "<code>drop-column</code>" in html


def test_github_annotations_past_ten_go_to_the_step_summary(
    big: MiniProject, tmp_path: Path
) -> None:
    summary_file = tmp_path / "summary.md"
    summary_file.write_text("earlier step\n")
    env_result = _manage_env(
        big, {"GITHUB_STEP_SUMMARY": str(summary_file)}, "shop", "0003", "--format", "github"
    )
    assert env_result.returncode == 1
    errors = [line for line in env_result.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == formats.GITHUB_ANNOTATIONS
    assert errors[-1].endswith(
        "%0A%0A5 more errors moved to the job summary (GitHub shows 10 error annotations per step)."
    )
    assert not any("moved to the job summary" in line for line in errors[:-1])
    written = summary_file.read_text()
    assert written.startswith("earlier step\n### migtools: 5 findings past GitHub's 10")
    rows = [line for line in written.splitlines() if line.startswith("| error |")]
    assert len(rows) == 5
    # Each finding is in exactly one place.
    for n in range(15):
        model = f"model{n:03d}"
        places = sum(model in line for line in errors) + sum(model in row for row in rows)
        assert places == 1, model
    # Without GITHUB_STEP_SUMMARY every annotation is printed (nowhere else to put them).
    plain = _manage_env(big, {}, "shop", "0003", "--format", "github")
    assert len([x for x in plain.stdout.splitlines() if x.startswith("::error ")]) == 15


def _manage_env(
    project: MiniProject, extra: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project.root), "PYTHONWARNINGS": "ignore", **extra}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("GITHUB_STEP_SUMMARY", None) if "GITHUB_STEP_SUMMARY" not in extra else None
    return subprocess.run(
        [sys.executable, "manage.py", "verify_migrations", *args],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
    )


def test_gitlab_fingerprints_are_unique_per_occurrence_and_stable(big: MiniProject) -> None:
    first = json.loads(big.manage("verify_migrations", "shop", "0004", "--format", "gitlab").out)
    assert [i["check_name"] for i in first].count(first[0]["check_name"]) >= 3
    same = [i for i in first if "legacy" in i["description"] or i["check_name"] == "drop-table"]
    assert len(same) >= 3
    prints = [i["fingerprint"] for i in first]
    assert len(set(prints)) == len(prints)
    again = json.loads(big.manage("verify_migrations", "shop", "0004", "--format", "gitlab").out)
    assert [i["fingerprint"] for i in again] == prints
    # No absolute path in what is hashed: the same report from another checkout agrees.
    moved = formats.Paths(root="/elsewhere/checkout")
    here = formats.Paths(root=str(big.root))

    def relocated(report: formats.Report, old: str, new: str) -> formats.Report:
        out = formats.Report()
        for m in report.migrations:
            fs = [
                Finding(**{**f.__dict__, "path": f.path.replace(old, new) if f.path else None})
                for f in m.findings
            ]
            out.migrations.append(
                formats.MigrationReport(
                    m.node, m.path.replace(old, new) if m.path else None, findings=fs
                )
            )
        return out

    report = _report()
    cwd = str(Path.cwd())
    a = json.loads(formats.as_gitlab(report, paths=formats.Paths(root=cwd)))
    b = json.loads(formats.as_gitlab(relocated(report, cwd, "/elsewhere/checkout"), paths=moved))
    assert [i["fingerprint"] for i in a] == [i["fingerprint"] for i in b]
    assert here.show(str(big.root / "shop/migrations/0004_raw.py")) == "shop/migrations/0004_raw.py"


def test_reviewer_formats_name_files_from_the_repository_root(tmp_path: Path) -> None:
    """A monorepo: the Django project in backend/, manage.py run from there."""
    mono = tmp_path / "mono"
    proj = make_project(mono / "backend")
    assert proj.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    proj.write("shop/migrations/0002_drop_name.py", REMOVE_FIELD)
    subprocess.run(["git", "init", "-q", "-b", "main", str(mono)], check=True)
    wanted = "backend/shop/migrations/0002_drop_name.py"

    github = proj.manage("verify_migrations", "shop", "0002", "--format", "github").out
    assert f"::error file={wanted},line=" in github
    gitlab = json.loads(proj.manage("verify_migrations", "shop", "0002", "--format", "gitlab").out)
    assert {i["location"]["path"] for i in gitlab} == {wanted}
    data = json.loads(proj.manage("verify_migrations", "shop", "0002", "--format", "json").out)
    assert {f["path"] for f in data["findings"]} == {wanted}
    markdown = proj.manage("verify_migrations", "shop", "0002", "--format", "markdown").out
    assert f"`{wanted}`" in markdown
    # The text format stays relative to the current directory (for terminals).
    text = proj.manage("verify_migrations", "shop", "0002").out
    assert text.startswith("shop/migrations/0002_drop_name.py:")

    prefixed = proj.manage(
        "verify_migrations", "shop", "0002", "--format", "gitlab", "--path-prefix", "svc/"
    ).out
    assert json.loads(prefixed)[0]["location"]["path"] == f"svc/{wanted}"


# -- several databases: each fact once ----------------------------------------------------


def _on(alias: str, *, whole: bool = False) -> formats.Report:
    """The report of ``shop.0002_drop`` as verified on ``alias``: the drop (about the
    operation) and, with ``whole``, a finding about the migration as a whole."""
    report = _report()
    m = report.migrations[1]
    m.findings = [dataclasses.replace(f, database=alias) for f in m.findings]
    if whole:
        m.findings.insert(
            0,
            Finding(
                "missing-is-post-deployment",
                Level.ERROR,
                "No is_post_deployment.",
                app_label="shop",
                migration_name="0002_drop",
                database=alias,
            ),
        )
    return report


def test_a_finding_every_database_gives_alike_is_one_line_naming_them() -> None:
    """No router and two aliases (tests/settings.py): the drop holds on both; text, github,
    gitlab and markdown say it once, naming both databases; JSON keeps one record per
    database (``database`` stays one alias); the whole-migration finding stays once."""
    merged = merge([_on("default", whole=True), _on("other", whole=True)])
    drops = [f for f in merged.findings if f.rule_id == "drop-column"]
    assert len(drops) == 1
    assert (drops[0].database, drops[0].databases) == ("default", ("default", "other"))
    whole = [f for f in merged.findings if f.rule_id == "missing-is-post-deployment"]
    assert [(f.database, f.databases) for f in whole] == [("default", ())]
    assert (merged.errors, merged.warnings) == (2, 0)

    text = formats.as_text(merged)
    heads = [line for line in text if "[drop-column]" in line]
    assert heads == [
        "shop/migrations/0002_drop.py:7: error: [drop-column] shop.0002_drop (databases "
        "'default' and 'other') (operation 1: Remove field name from item): Removes column "
        "'name' of shop_item."
    ]
    assert text[-1] == "2 migrations verified: 2 errors, 0 warnings."
    github = [line for line in formats.as_github(merged) if line.startswith("::error ")]
    assert sum("drop-column" in line for line in github) == 1
    assert "::Databases 'default' and 'other': Removes column" in github[-1]
    gitlab = json.loads(formats.as_gitlab(merged))
    assert [issue["description"] for issue in gitlab if issue["check_name"] == "drop-column"] == [
        "shop.0002_drop (databases 'default' and 'other'): Removes column 'name' of shop_item."
    ]
    assert len(gitlab) == 2
    markdown = formats.as_markdown(merged)
    assert markdown.count("`drop-column`") == 1
    assert "`drop-column` (databases 'default' and 'other') (operation 1:" in markdown
    compact = formats.as_markdown(merged, limit=len(markdown) - 1)
    assert "longer than a comment can be" in compact
    assert "`drop-column` (databases 'default' and 'other') (operation 1:" in compact
    assert "-- migtools: drop-column (databases 'default' and 'other'):" in markdown

    data = json.loads(formats.as_json(merged))
    records = [(f["rule"], f["database"]) for f in data["findings"]]
    assert sorted(records) == [
        ("drop-column", "default"),
        ("drop-column", "other"),
        ("missing-is-post-deployment", "default"),
    ]
    assert (data["errors"], data["warnings"]) == (3, 0)  # the records it lists


def test_findings_that_differ_per_database_stay_apart() -> None:
    default, other = _on("default"), _on("other")
    (drop,) = other.migrations[1].findings
    other.migrations[1].findings = [dataclasses.replace(drop, message="Another message.")]
    merged = merge([default, other])
    assert [(f.database, f.databases) for f in merged.findings] == [
        ("default", ()),
        ("other", ()),
    ]
    heads = [line for line in formats.as_text(merged) if "[drop-column]" in line]
    assert len(heads) == 2
    assert "(database 'default')" in heads[0] and "(database 'other')" in heads[1]
    # One alias only: never "databases".
    assert merge([_on("default"), _on("default")]).findings[0].on_database() == (
        " (database 'default')"
    )


@pytest.mark.django_db(databases="__all__")
def test_verify_migrations_prints_a_finding_of_every_database_once() -> None:
    """tests/settings.py: ``default`` and ``other``, no router, so every migration runs on
    both; the RunPython writing a large table is one finding naming both databases."""
    import contextlib
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.test import override_settings

    def run(*args: str) -> tuple[str, str]:
        out, err = StringIO(), StringIO()
        with (
            override_settings(MIGTOOLS_LARGE_TABLES=["ledger_entry"]),
            contextlib.suppress(CommandError),
        ):
            call_command("verify_migrations", "ledger", "0005", *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    text, _ = run()
    heads = [line for line in text.splitlines() if "[run-python-on-large-table]" in line]
    assert len(heads) == 1, text
    assert "(databases 'default' and 'other')" in heads[0]
    assert "1 migration verified: 0 errors, 1 warning." in text  # not 2
    data = json.loads(run("--format", "json")[0])
    hits = [f["database"] for f in data["findings"] if f["rule"] == "run-python-on-large-table"]
    assert sorted(hits) == ["default", "other"]
    only_other, _ = run("--database", "other")
    assert "(database 'other')" in only_other and "databases" not in only_other
