"""verify_migrations and sqlmigrate on a real project and real PostgreSQL: every rule has a
migration that triggers it and one that must not (stage-aware cases and
SeparateDatabaseAndState included)."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.miniproject import MiniProject, make_project

HEAD = """\
from django.db import migrations, models
import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently
from django.contrib.postgres.constraints import ExclusionConstraint
from migtools import CheckedMigration
from migtools.operations import DeletionAction, SafeRemoveField
{extra_imports}


class Migration({base}):
{attrs}
    dependencies = [{deps}]

    operations = [
{ops}
    ]
"""

# (name, operations source, class attributes, base class, extra imports)
MIGRATIONS: list[tuple[str, str, str, str, str]] = [
    (
        "0001_initial",
        """
        migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True)),
                                        ("name", models.CharField(max_length=20))]),
        migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))]),
        migrations.CreateModel("Gone", [("id", models.BigAutoField(primary_key=True))]),
        migrations.AddField("item", "memo", models.TextField(null=True)),
        migrations.AddField("item", "note", models.TextField(null=True)),
        migrations.AddField("item", "flag", models.BooleanField(null=True)),
        migrations.AddField("item", "qty", models.IntegerField(null=True)),
        migrations.AddIndex("item", models.Index(fields=["name"], name="new_table_idx")),
        """,
        "",
        "CheckedMigration",
        "",
    ),
    (
        "0002_notnull",
        'migrations.AddField("item", "n1", models.IntegerField(default=0)),',
        "",
        "",
        "",
    ),
    (
        "0003_default",
        'migrations.AddField("item", "n2", models.IntegerField(null=True, default=3)),',
        "",
        "",
        "",
    ),
    (
        "0004_db_default",
        'migrations.AddField("item", "n3", models.IntegerField(db_default=3)),',
        "",
        "",
        "",
    ),
    (
        "0005_index",
        'migrations.AddIndex("item", models.Index(fields=["memo"], name="memo_idx")),',
        "",
        "",
        "",
    ),
    (
        "0006_index_concurrent",
        'AddIndexConcurrently("item", models.Index(fields=["note"], name="note_idx")),',
        "    atomic = False\n",
        "",
        "",
    ),
    (
        "0007_unique",
        'migrations.AddConstraint("item", models.UniqueConstraint(fields=["name"], name="item_name_uniq")),',
        "",
        "",
        "",
    ),
    (
        "0008_fk",
        'migrations.AddField("item", "other", models.ForeignKey("shop.Other", null=True, on_delete=django.db.models.deletion.CASCADE, db_index=False)),',
        "",
        "",
        "",
    ),
    (
        "0009_check",
        'migrations.AddConstraint("item", models.CheckConstraint(condition=models.Q(qty__gte=0), name="qty_pos")),',
        "",
        "",
        "",
    ),
    (
        "0010_shrink",
        'migrations.AlterField("item", "name", models.CharField(max_length=10)),',
        "",
        "",
        "",
    ),
    (
        "0011_widen",
        'migrations.AlterField("item", "name", models.CharField(max_length=200)),',
        "",
        "",
        "",
    ),
    ("0012_rename_field", 'migrations.RenameField("item", "name", "title"),', "", "", ""),
    ("0013_rename_model", 'migrations.RenameModel("Other", "Thing"),', "", "", ""),
    ("0014_remove_field", 'migrations.RemoveField("item", "memo"),', "", "", ""),
    (
        "0015_remove_post_deploy",
        'migrations.RemoveField("item", "n2"),',
        "    is_post_deployment = True\n",
        "",
        "",
    ),
    (
        "0016_state_only",
        'migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("item", "n3")]),',
        "",
        "",
        "",
    ),
    (
        "0017_db_drop_in_separate",
        'migrations.SeparateDatabaseAndState(database_operations=[migrations.RunSQL("ALTER TABLE shop_item DROP COLUMN n1", migrations.RunSQL.noop)], state_operations=[migrations.RemoveField("item", "n1")]),',
        "",
        "",
        "",
    ),
    ("0018_delete_model", 'migrations.DeleteModel("Gone"),', "", "", ""),
    (
        "0019_pending",
        'SafeRemoveField("item", "flag", deletion_action=DeletionAction.MOVE_TO_PENDING),',
        "",
        "",
        "",
    ),
    (
        "0020_delete_phase",
        'SafeRemoveField("item", "flag", deletion_action=DeletionAction.DELETE),',
        "",
        "",
        "",
    ),
    (
        "0021_python_no_reverse",
        "migrations.RunPython(forward),",
        "",
        "",
        "from shop.models import Item\n\n\ndef forward(apps, schema_editor):\n    Item.objects.update(name='x')\n",
    ),
    (
        "0022_python_ok",
        "migrations.RunPython(forward, migrations.RunPython.noop),",
        "",
        "",
        "\n\ndef forward(apps, schema_editor):\n    apps.get_model('shop', 'Item').objects.update(qty=1)\n",
    ),
    (
        "0023_mixed",
        'migrations.AddField("item", "n4", models.IntegerField(null=True)),\n        migrations.RunPython(forward, migrations.RunPython.noop),',
        "",
        "",
        "\n\ndef forward(apps, schema_editor):\n    pass\n",
    ),
    (
        "0024_plain",
        'migrations.AddField("item", "n5", models.IntegerField(null=True)),',
        "",
        "migrations.Migration",
        "",
    ),
    (
        "0025_unchecked",
        'migrations.AddField("item", "n6", models.IntegerField(null=True)),',
        "    checked = False\n",
        "CheckedMigration",
        "",
    ),
    (
        "0026_long_identifier",
        'migrations.AddField("item", "n7", models.IntegerField(null=True, db_column="c" * 70)),',
        "",
        "",
        "",
    ),
    (
        "0027_ignored",
        'migrations.AddIndex("item", models.Index(fields=["qty"], name="qty_idx")),',
        '    ignore_rules = {"index-not-concurrent": "tiny table", "index-on-large-table-not-post-deployment": "test"}\n',
        "",
        "",
    ),
    (
        "0028_large_index_post",
        'AddIndexConcurrently("item", models.Index(fields=["n4"], name="n4_idx")),',
        "    is_post_deployment = True\n    atomic = False\n",
        "",
        "",
    ),
    (
        "0029_exclusion",
        'migrations.AddConstraint("item", ExclusionConstraint(name="excl", expressions=[("title", "=")])),',
        "",
        "",
        "",
    ),
    (
        "0030_backfill_pre",
        'RunBackfill("shop.Item", fill),',
        "",
        "",
        "from migtools.operations import RunBackfill\n\n\ndef fill(apps, batch):\n    batch.update(qty=1)\n",
    ),
]

EXPECTED: dict[str, set[str]] = {
    "0001_initial": set(),
    "0002_notnull": {"not-null-without-db-default"},
    "0003_default": {"default-not-db-default"},
    "0004_db_default": set(),
    "0005_index": {"index-not-concurrent", "index-on-large-table-not-post-deployment"},
    "0006_index_concurrent": {"index-on-large-table-not-post-deployment"},
    "0007_unique": {"unique-constraint-on-existing-table"},
    "0008_fk": {"fk-not-valid-missing"},
    "0009_check": {"check-constraint-not-valid-missing"},
    "0010_shrink": {"column-type-change"},
    "0011_widen": set(),
    "0012_rename_field": {"rename-column"},
    "0013_rename_model": {"rename-table"},
    "0014_remove_field": {"drop-column"},
    "0015_remove_post_deploy": set(),
    "0016_state_only": set(),
    "0017_db_drop_in_separate": {"drop-column", "run-sql-not-safe"},
    "0018_delete_model": {"drop-table"},
    "0019_pending": set(),
    "0020_delete_phase": set(),
    "0021_python_no_reverse": {
        "run-python-without-reverse",
        "run-python-imports-model",
        "data-migration-without-test",
    },
    "0022_python_ok": {"run-python-on-large-table"},  # it updates shop_item, a large table
    "0023_mixed": {"schema-and-data-mixed", "data-migration-without-test"},
    "0024_plain": {"missing-is-post-deployment"},
    "0025_unchecked": set(),
    "0026_long_identifier": {"identifier-too-long"},
    "0027_ignored": set(),
    "0028_large_index_post": set(),
    "0029_exclusion": {"exclusion-constraint"},
    "0030_backfill_pre": {"backfill-in-atomic-migration", "backfill-not-post-deployment"},
}

MIGRATION_TEST = """\
from migtools.testing import TestMigrations


class PythonOkTest(TestMigrations):
    app = "shop"
    migrate_from = "0021_python_no_reverse"
    migrate_to = "0022_python_ok"

    def test_one(self):
        pass

    def test_two(self):
        pass
"""


def _write_migrations(project: MiniProject, upto: int) -> None:
    mdir = project.root / "shop" / "migrations"
    mdir.mkdir(exist_ok=True)
    (mdir / "__init__.py").write_text("")
    previous = None
    for name, body, attrs, base, extra in MIGRATIONS[:upto]:
        base = base or "CheckedMigration"
        if (
            base == "CheckedMigration"
            and "is_post_deployment" not in attrs
            and "checked" not in attrs
        ):
            attrs = "    is_post_deployment = False\n" + attrs
        deps = f"('shop', '{previous}')" if previous else ""
        ops = textwrap.indent(textwrap.dedent(body).strip(), " " * 8)
        source = HEAD.format(
            extra_imports=extra, base=base, attrs=attrs or "    pass\n", deps=deps, ops=ops
        )
        (mdir / f"{name}.py").write_text(source)
        previous = name


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> MiniProject:
    root = tmp_path_factory.mktemp("verify") / "proj"
    project = make_project(
        root,
        extra_settings=(
            "INSTALLED_APPS += ['django.contrib.sites', 'allauth', 'allauth.account']\n"
            "SITE_ID = 1\n"
            "MIDDLEWARE = ['allauth.account.middleware.AccountMiddleware']\n"
            "MIGTOOLS_APPS = ['shop']\n"
            "MIGTOOLS_LARGE_TABLES = ['shop_item']\n"
            "MIGTOOLS_MIGRATION_TEST_DIRS = ['tests']\n"
        ),
    )
    (root / "tests").mkdir()
    (root / "tests" / "test_shop_migrations.py").write_text(MIGRATION_TEST)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    _write_migrations(project, 1)
    result = project.manage("migrate", "shop", "0001", "-v0")
    assert result.returncode == 0, result.err
    _write_migrations(project, len(MIGRATIONS))
    return project


@pytest.fixture(scope="module")
def findings(project: MiniProject) -> list[dict[str, object]]:
    result = project.manage("verify_migrations", "shop", "--format", "json")
    assert result.returncode == 1 and result.out, result.err[-3000:]
    data = json.loads(result.out)
    assert data["migrations"] == len(MIGRATIONS)
    return list(data["findings"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rule_fixture(findings: list[dict[str, object]], name: str) -> None:
    got = {str(f["rule"]) for f in findings if f["migration"] == name}
    assert got == EXPECTED[name]


def test_every_rule_that_operations_reach_is_triggered() -> None:
    triggered = set().union(*EXPECTED.values())
    from migtools.rules.catalogue import CATALOGUE

    sql_only = {
        "drop-index-not-concurrent",
        "concurrently-in-atomic",
        "set-not-null",
        "set-tablespace",
        "volatile-default",
        "migration-test-multiple-methods",  # off by default: see test_rule_levels_setting
        "migration-edited-after-merge",  # git history: see test_edited_after_merge
        "sql-not-collected",  # one case per kind: tests/test_uncollectable.py
        "run-without-hints",  # needs a router that reads hints: tests/test_multidb.py
    }
    assert set(CATALOGUE) - triggered == sql_only


def _text_blocks(out: str) -> dict[str, list[str]]:
    """Default text output: each rule id -> every line of its findings' blocks."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        match = re.search(r": (?:error|warning): \[([a-z0-9-]+)\] ", line)
        if match and not line.startswith(" "):
            current = blocks.setdefault(match.group(1), [])
        elif not line.startswith(" "):
            current = None
        if current is not None:
            current.append(line)
    return blocks


def test_default_text_says_what_to_do_for_every_rule(project: MiniProject) -> None:
    from migtools.rules.catalogue import CATALOGUE

    result = project.manage("verify_migrations", "shop")
    assert result.returncode == 1
    blocks = _text_blocks(result.out)
    triggered = set().union(*EXPECTED.values())
    assert set(blocks) == triggered
    for rule_id in triggered:
        text = "\n".join(blocks[rule_id])
        assert f"    fix: {CATALOGUE[rule_id].recipe[0]}" in text, rule_id
        assert f"`manage.py verify_migrations --explain {rule_id}` for why" in text, rule_id
    assert "http" not in result.out


def test_explain_works_for_every_rule_offline(project: MiniProject) -> None:
    from migtools.rules.catalogue import CATALOGUE

    script = (
        "from django.core.management import call_command\n"
        "from migtools.rules.catalogue import CATALOGUE\n"
        "for rule_id in CATALOGUE:\n"
        "    print('=====', rule_id)\n"
        "    call_command('verify_migrations', explain=rule_id)\n"
    )
    result = project.manage("shell", "-c", script)
    assert result.returncode == 0, result.err
    parts = dict(
        (chunk.split("\n", 1)[0].strip(), chunk) for chunk in result.out.split("===== ")[1:]
    )
    assert set(parts) == set(CATALOGUE)
    for rule_id, rule in CATALOGUE.items():
        assert f"{rule_id}: {rule.title}" in parts[rule_id]
        assert f"Why: {rule.why}" in parts[rule_id]
        for n, step in enumerate(rule.recipe, 1):
            assert f"  {n}. {step}" in parts[rule_id]
    one = project.manage("verify_migrations", "--explain", "drop-column")
    assert one.returncode == 0 and one.out.startswith("drop-column: ")
    bad = project.manage("verify_migrations", "--explain", "drop-colum")
    assert bad.returncode == 2
    assert bad.err.strip().splitlines() == [
        "CommandError: Unknown rule 'drop-colum'; did you mean 'drop-column'?"
    ]


def test_findings_point_at_file_line_and_statement(
    findings: list[dict[str, object]], project: MiniProject
) -> None:
    (f,) = [
        f
        for f in findings
        if f["migration"] == "0005_index" and f["rule"] == "index-not-concurrent"
    ]
    assert f["path"] == "shop/migrations/0005_index.py"  # relative to the repository root
    source = (project.root / str(f["path"])).read_text().splitlines()
    assert "AddIndex" in source[int(str(f["line"])) - 1]
    assert f["sql"] == 'CREATE INDEX "memo_idx" ON "shop_item" ("memo")'
    assert f["operation_index"] == 0


def test_rule_levels_setting(project: MiniProject) -> None:
    settings = project.root / "proj" / "settings.py"
    original = settings.read_text()
    settings.write_text(
        original + "MIGTOOLS_RULES = {'migration-test-multiple-methods': 'warning', "
        "'index-not-concurrent': 'off'}\n"
    )
    try:
        result = project.manage("verify_migrations", "shop", "--format", "json")
    finally:
        settings.write_text(original)
    data = json.loads(result.out)
    rules = {(f["migration"], f["rule"], f["level"]) for f in data["findings"]}
    assert ("0022_python_ok", "migration-test-multiple-methods", "warning") in rules
    assert not any(r == "index-not-concurrent" for _, r, _ in rules)


def test_github_format_and_summary(project: MiniProject) -> None:
    result = project.manage("verify_migrations", "shop", "0005", "--format", "github")
    assert result.returncode == 1
    assert "::error file=shop/migrations/0005_index.py,line=" in result.out
    assert "title=migtools index-not-concurrent::" in result.out
    assert result.out.strip().endswith("1 migration verified: 2 errors, 0 warnings.")


def test_clean_migration_exits_zero(project: MiniProject) -> None:
    result = project.manage("verify_migrations", "shop", "0004")
    assert result.returncode == 0, result.out + result.err
    assert "1 migration verified: 0 errors, 0 warnings." in result.out


def test_unknown_app_is_usage_error(project: MiniProject) -> None:
    result = project.manage("verify_migrations", "nope")
    assert result.returncode == 2
    assert "No installed app with label 'nope'" in result.err
    result = project.manage("sqlmigrate", "nope", "0001")
    assert result.returncode == 2


def test_sqlmigrate_comments_before_statement(project: MiniProject) -> None:
    from migtools.rules.catalogue import CATALOGUE

    result = project.manage("sqlmigrate", "shop", "0005")
    assert result.returncode == 0, result.err
    lines = result.out.splitlines()
    index = lines.index('CREATE INDEX "memo_idx" ON "shop_item" ("memo");')
    # Each finding: what is wrong, the recipe's first step, the --explain pointer.
    assert lines[index - 3].startswith("-- migtools: index-on-large-table-not-post-deployment: ")
    assert lines[index - 2] == (
        "-- migtools:   fix: " + CATALOGUE["index-on-large-table-not-post-deployment"].recipe[0]
    )
    assert lines[index - 1] == (
        "-- migtools:   `manage.py verify_migrations --explain "
        "index-on-large-table-not-post-deployment` for why and the full recipe"
    )
    assert lines[index - 6].startswith("-- migtools: index-not-concurrent: Index 'memo_idx'")
    assert lines[0] == "BEGIN;" and lines[-1] == "COMMIT;"
    check = project.manage("sqlmigrate", "shop", "0005", "--check")
    assert check.returncode == 1
    assert check.out == result.out
    clean = project.manage("sqlmigrate", "shop", "0004", "--check")
    assert clean.returncode == 0
    assert "-- migtools:" not in clean.out


def test_sqlmigrate_prints_no_op_for_a_state_only_operation(project: MiniProject) -> None:
    result = project.manage("sqlmigrate", "shop", "0019")
    assert result.returncode == 0, result.err
    lines = result.out.splitlines()
    header = lines.index("-- MOVE_TO_PENDING field flag from item")
    assert lines[header + 2] == "-- (no-op)"
    assert "CANNOT BE WRITTEN AS SQL" not in result.out


DJANGO_SQLMIGRATE = """\
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
django.setup()
from django.core.management import call_command
from django.core.management.commands.sqlmigrate import Command

call_command(Command(), sys.argv[1], sys.argv[2])
"""


def test_sqlmigrate_matches_django_without_findings(project: MiniProject) -> None:
    project.write("django_sqlmigrate.py", DJANGO_SQLMIGRATE)
    for name in ("0001", "0005", "0012", "0017", "0021"):
        ours = project.manage("sqlmigrate", "shop", name)
        django = project.python("django_sqlmigrate.py", "shop", name)
        assert django.returncode == 0, django.err
        stripped = [line for line in ours.out.splitlines() if not line.startswith("-- migtools:")]
        assert stripped == django.out.splitlines()


def test_unapplied_selection(project: MiniProject) -> None:
    result = project.manage("verify_migrations", "shop", "--unapplied", "--format", "json")
    data = json.loads(result.out)
    assert data["migrations"] == len(MIGRATIONS) - 1  # 0001 is applied


# Real third-party history, judged as production meets it (each migration with every earlier
# one deployed): (exit code, migrations verified, sorted (migration, rule, level) findings).
CONTRIB_EXPECTED: dict[str, tuple[int, int, list[tuple[str, str, str]]]] = {
    "auth": (0, 12, []),
    "contenttypes": (
        1,
        2,
        [
            ("0002_remove_content_type_name", "drop-column", "error"),
            ("0002_remove_content_type_name", "schema-and-data-mixed", "warning"),
        ],
    ),
    "sites": (
        1,
        2,
        [
            ("0002_alter_domain_unique", "index-not-concurrent", "error"),
            ("0002_alter_domain_unique", "unique-constraint-on-existing-table", "error"),
        ],
    ),
    "account": (
        1,
        9,
        [
            (
                "0003_alter_emailaddress_create_unique_verified_email",
                "index-not-concurrent",
                "error",
            ),
            (
                "0003_alter_emailaddress_create_unique_verified_email",
                "unique-constraint-on-existing-table",
                "error",
            ),
            ("0004_alter_emailaddress_drop_unique_email", "drop-index-not-concurrent", "warning"),
            ("0005_emailaddress_idx_upper_email", "index-not-concurrent", "error"),
            ("0007_emailaddress_idx_email", "drop-index-not-concurrent", "warning"),
            # The index and its _like twin: one finding.
            ("0007_emailaddress_idx_email", "index-not-concurrent", "error"),
            ("0009_emailaddress_unique_primary_email", "index-not-concurrent", "error"),
        ],
    ),
}


def test_contrib_and_allauth_verify(project: MiniProject) -> None:
    """Django's contrib apps and django-allauth, applied as in production: the exact exit
    code and findings (the verifier judges them without crashing, and what it finds is
    real: a dropped column, unique constraints and indexes built under a full lock)."""
    for target in ("auth", "sites", "account"):
        migrated = project.manage("migrate", target, "-v0")
        assert migrated.returncode == 0, migrated.err
    for app, (code, count, expected) in CONTRIB_EXPECTED.items():
        result = project.manage("verify_migrations", app, "--format", "json")
        assert "Traceback" not in result.err, result.err
        data = json.loads(result.out)
        got = sorted((f["migration"], f["rule"], f["level"]) for f in data["findings"])
        assert (result.returncode, data["migrations"], got) == (code, count, expected), app


# -- a long chain on one model ------------------------------------------------------------

CHAIN_LENGTH = 300
# (field declaration, rule ids it triggers on the existing table), by position in the chain
CHAIN_FIELDS: list[tuple[str, set[str]]] = [
    ("models.IntegerField(default=0)", {"not-null-without-db-default"}),
    ("models.IntegerField(null=True, default=3)", {"default-not-db-default"}),
    ("models.IntegerField(db_default=3)", set()),
    ("models.TextField(null=True)", set()),
    (
        'models.ForeignKey("chain.Item", null=True, on_delete=django.db.models.deletion.CASCADE)',
        {"fk-not-valid-missing", "index-not-concurrent"},
    ),
]
CHAIN_SCRIPT = """\
import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
django.setup()
from django.db import connection

from migtools.verifier.run import Verifier
from migtools.verifier.select import full_plan, load

loader = load(connection)
nodes = [n for n in full_plan(loader) if n[0] == "chain"]
report = Verifier(connection, loader).run(set(nodes))
one_pass = {m.node[1]: m for m in report.migrations}
out = {"names": [m.node[1] for m in report.migrations], "mismatches": [], "findings": {}}
for name, m in one_pass.items():
    out["findings"][name] = sorted(f.rule_id for f in m.findings)
# Reference: each migration verified alone (its state built from scratch, rendered once) and
# the SQL Django's own apply collects for it from loader.project_state.
for node in nodes[1::7] + nodes[-3:]:
    alone = Verifier(connection, load(connection)).run({node}).migrations[0]
    mine = one_pass[node[1]]
    if alone.entries != mine.entries or alone.findings != mine.findings:
        out["mismatches"].append(["alone", node[1], alone.entries, mine.entries])
    migration = loader.graph.nodes[node]
    state = loader.project_state(node, at_end=False)
    with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
        migration.apply(state, editor, collect_sql=True)
    if editor.collected_sql != mine.entries:
        out["mismatches"].append(["django", node[1], editor.collected_sql, mine.entries])
json.dump(out, sys.stdout)
"""


def _chain_operation(number: int) -> str:
    """The operation of migration ``number`` (2..): an AddField on chain.Item, with an
    AlterField and a RemoveField of earlier fields now and then (Django's own state path in
    the middle of the chain)."""
    if number % 60 == 0:
        width = 20 + number
        return f'migrations.AlterField("item", "name", models.CharField(max_length={width}))'
    if number % 97 == 0:
        return f'migrations.RemoveField("item", "f{number - 1 - 3:04d}")'
    decl, _ = CHAIN_FIELDS[number % len(CHAIN_FIELDS)]
    return f'migrations.AddField("item", "f{number:04d}", {decl})'


def _chain_expected(number: int) -> set[str]:
    if number % 60 == 0:
        return set()  # a wider varchar: no rewrite
    if number % 97 == 0:
        return {"drop-column"}
    return CHAIN_FIELDS[number % len(CHAIN_FIELDS)][1]


@pytest.fixture(scope="module")
def chain_project(tmp_path_factory: pytest.TempPathFactory) -> MiniProject:
    root = tmp_path_factory.mktemp("chain") / "proj"
    project = make_project(root, apps=("chain",), extra_settings="MIGTOOLS_APPS = ['chain']\n")
    mdir = root / "chain" / "migrations"
    mdir.mkdir()
    (mdir / "__init__.py").write_text("")
    head = (
        "from django.db import migrations, models\nimport django.db.models.deletion\n"
        "from migtools import CheckedMigration\n\n\nclass Migration(CheckedMigration):\n"
        "    is_post_deployment = False\n    dependencies = [{deps}]\n"
        "    operations = [\n        {ops},\n    ]\n"
    )
    (mdir / "0001_initial.py").write_text(
        head.format(
            deps="",
            ops='migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True)), '
            '("name", models.CharField(max_length=20))])',
        )
    )
    result = project.manage("migrate", "chain", "-v0")
    assert result.returncode == 0, result.err
    previous = "0001_initial"
    for number in range(2, CHAIN_LENGTH + 1):
        name = f"{number:04d}_step"
        (mdir / f"{name}.py").write_text(
            head.format(deps=f"('chain', '{previous}')", ops=_chain_operation(number))
        )
        previous = name
    (root / "chain_check.py").write_text(CHAIN_SCRIPT)
    return project


def test_long_chain_on_one_model_same_findings(chain_project: MiniProject) -> None:
    """300 migrations growing one model (the operations the pass applies to the rendered
    model in place, with Django's own path now and then): every migration gets the findings
    and the SQL it gets when verified alone, the SQL Django collects for it, and the rules
    its field triggers."""
    result = chain_project.python("chain_check.py")
    assert result.returncode == 0, result.err[-3000:]
    out = json.loads(result.out)
    assert len(out["names"]) == CHAIN_LENGTH
    assert out["mismatches"] == []
    for number in range(2, CHAIN_LENGTH + 1):
        assert set(out["findings"][f"{number:04d}_step"]) == _chain_expected(number), number


# -- --since GIT_REF ----------------------------------------------------------------------

SINCE_HEAD = """\
from django.db import migrations, models
from migtools import CheckedMigration


class Migration({base}):
{attrs}    dependencies = [{deps}]

    operations = [
        {op},
    ]
"""

# (name, operation, checked): each migration triggers a rule of its own, so the findings
# show which migrations were selected. 0001 is a plain Migration: missing-is-post-deployment.
SINCE_MIGRATIONS: list[tuple[str, str, bool]] = [
    (
        "0001_initial",
        'migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True)), '
        '("name", models.CharField(max_length=20))])',
        False,
    ),
    (
        "0002_stock",
        'migrations.AddField("item", "stock", models.IntegerField(null=True, default=3))',
        True,
    ),
    (
        "0003_name_idx",
        'migrations.AddIndex("item", models.Index(fields=["name"], name="since_name_idx"))',
        True,
    ),
    ("0004_qty", 'migrations.AddField("item", "qty", models.IntegerField(default=0))', True),
]
SINCE_RULES = {
    "0001_initial": {"missing-is-post-deployment"},
    "0002_stock": {"default-not-db-default"},
    "0003_name_idx": {"index-not-concurrent"},
    "0004_qty": {"not-null-without-db-default"},
}


def _write_since_migration(project: MiniProject, index: int) -> Path:
    name, op, checked = SINCE_MIGRATIONS[index]
    previous = SINCE_MIGRATIONS[index - 1][0] if index else None
    path = project.root / "sincetest" / "migrations" / f"{name}.py"
    path.write_text(
        SINCE_HEAD.format(
            base="CheckedMigration" if checked else "migrations.Migration",
            attrs="    is_post_deployment = False\n" if checked else "",
            deps=f"('sincetest', '{previous}')" if previous else "",
            op=op,
        )
    )
    return path


def _selected(project: MiniProject, *args: str) -> tuple[int, dict[str, set[str]]]:
    result = project.manage("verify_migrations", "--format", "json", *args)
    assert result.returncode == 1 and result.out, result.err[-3000:]
    data = json.loads(result.out)
    rules: dict[str, set[str]] = {}
    for f in data["findings"]:
        assert f["app_label"] == "sincetest"
        rules.setdefault(str(f["migration"]), set()).add(str(f["rule"]))
    return int(data["migrations"]), rules


def test_since_git_ref_selects_added_and_changed_migrations(tmp_path: Path) -> None:
    """Commit A: 0001, 0002. Commit B: 0003. Then, uncommitted: 0002 edited and 0004 new
    (untracked). `--since HEAD~1` (= A) selects 0002, 0003, 0004; `--since <sha of B>`
    selects 0002 and 0004; 0001, unchanged since both, never."""
    project = make_project(
        tmp_path / "proj", apps=("sincetest",), extra_settings="MIGTOOLS_APPS = ['sincetest']\n"
    )
    mdir = project.root / "sincetest" / "migrations"
    mdir.mkdir()
    (mdir / "__init__.py").write_text("")

    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(project.root), *args], capture_output=True, text=True, check=True
        )
        return proc.stdout.strip()

    git("init", "-q", "-b", "main")
    _write_since_migration(project, 0)
    changed = _write_since_migration(project, 1)
    git("add", "-A")
    git("commit", "-q", "-m", "A: 0001, 0002")
    _write_since_migration(project, 2)
    git("add", "-A")
    git("commit", "-q", "-m", "B: 0003")
    head = git("rev-parse", "HEAD")
    changed.write_text(changed.read_text() + "# edited after B\n")
    _write_since_migration(project, 3)  # untracked

    # Without --since: all four, each judged with every earlier migration deployed (GUIDE,
    # "What counts as a new table"): the table of 0001 is new only in 0001, so every
    # migration's own finding shows.
    count, rules = _selected(project)
    assert count == 4 and rules == SINCE_RULES
    # --unapplied: the four are one deploy, so the table 0001 creates is new in the others.
    count, rules = _selected(project, "--unapplied")
    assert count == 4 and rules == {"0001_initial": SINCE_RULES["0001_initial"]}

    count, rules = _selected(project, "--since", "HEAD~1")
    assert count == 3
    assert rules == {n: SINCE_RULES[n] for n in ("0002_stock", "0003_name_idx", "0004_qty")}

    count, rules = _selected(project, "--since", head)
    assert count == 2
    assert rules == {n: SINCE_RULES[n] for n in ("0002_stock", "0004_qty")}

    count, rules = _selected(project, "sincetest", "--since", head)
    assert count == 2 and set(rules) == {"0002_stock", "0004_qty"}

    bad = project.manage("verify_migrations", "--since", "no-such-ref")
    assert bad.returncode == 2, bad.out + bad.err


def test_concurrent_index_in_atomic_migration_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    assert project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    assert project.manage("migrate").returncode == 0
    project.write(
        "shop/migrations/0002_concurrent.py",
        HEAD.format(
            extra_imports="",
            base="CheckedMigration",
            attrs="    is_post_deployment = True\n",
            deps="('shop', '0001_initial')",
            ops='        AddIndexConcurrently("item", models.Index(fields=["name"], name="n_idx")),',
        ),
    )
    result = project.manage("verify_migrations", "shop", "0002", "--format", "json")
    assert result.returncode == 1, result.err
    findings = json.loads(result.out)["findings"]
    assert [f["rule"] for f in findings] == ["concurrently-in-atomic"]
    assert "Traceback" not in result.err


def test_baseline_history_is_left_out_of_the_default_selection(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p", extra_settings='MIGTOOLS_BASELINE = {"shop": "0002_old_sql"}'
    )
    assert project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    for number, name in ((2, "old_sql"), (3, "new_sql")):
        project.write(
            f"shop/migrations/000{number}_{name}.py",
            HEAD.format(
                extra_imports="",
                base="CheckedMigration",
                attrs="    is_post_deployment = False\n",
                deps=f"('shop', '{'0001_initial' if number == 2 else '0002_old_sql'}')",
                ops='        migrations.RunSQL("SELECT 1", migrations.RunSQL.noop),',
            ),
        )
    result = project.manage("verify_migrations", "--format", "json")
    flagged = {f["migration"] for f in json.loads(result.out)["findings"]}
    assert flagged == {"0003_new_sql"}
    # Naming the app and migration still verifies adopted history.
    named = project.manage("verify_migrations", "shop", "0002", "--format", "json")
    assert {f["migration"] for f in json.loads(named.out)["findings"]} == {"0002_old_sql"}


# -- --files, --until and migration-edited-after-merge ------------------------------------------

ADD_FIELD = """\
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("shop", "{after}")]
    operations = [migrations.AddField("item", "{field}", models.TextField(null=True))]
"""


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def merged(tmp_path: Path) -> MiniProject:
    """main: 0001 and 0002 (merged); a branch `work` off it."""
    project = make_project(tmp_path / "p")
    assert project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    project.write(
        "shop/migrations/0002_memo.py", ADD_FIELD.format(after="0001_initial", field="memo")
    )
    _git(project.root, "init", "-q", "-b", "main")
    _git(project.root, "add", "-A")
    _git(project.root, "commit", "-qm", "0001, 0002")
    _git(project.root, "checkout", "-qb", "work")
    return project


def _rules(project: MiniProject, *args: str) -> tuple[int, dict[str, set[str]]]:
    result = project.manage("verify_migrations", "--format", "json", *args)
    assert result.out, result.err[-3000:]
    found: dict[str, set[str]] = {}
    for f in json.loads(result.out)["findings"]:
        found.setdefault(f["migration"], set()).add(f["rule"])
    return result.returncode, found


def test_edited_after_merge(merged: MiniProject) -> None:
    path = merged.root / "shop/migrations/0002_memo.py"
    original = path.read_text()
    # Comments, whitespace, a docstring, imports and migtools-only attributes: not edits.
    path.write_text(
        '"""Adds memo."""\nimport os  # unused\n\n'
        + original.replace(
            "is_post_deployment = False",
            "is_post_deployment = True\n    ignore_rules = {'drop-column': 'x'}",
        ).replace("operations = [", "# a comment\n    operations = [  # why\n       ")
    )
    code, rules = _rules(merged, "--since", "main")
    assert code == 0 and rules == {}, rules
    # The operations changed: an error, in the working tree and once committed (--until).
    path.write_text(original.replace('"memo"', '"memo2"'))
    code, rules = _rules(merged, "--since", "main")
    assert code == 1 and rules == {"0002_memo": {"migration-edited-after-merge"}}
    _git(merged.root, "commit", "-qam", "edit 0002")
    code, rules = _rules(merged, "--since", "main", "--until", "HEAD")
    assert code == 1 and rules == {"0002_memo": {"migration-edited-after-merge"}}
    text = merged.manage("verify_migrations", "--since", "main")
    assert "[migration-edited-after-merge] shop.0002_memo: Edited after it was merged" in text.out
    # A migration added on the branch is not "edited after merge".
    merged.write("shop/migrations/0003_note.py", ADD_FIELD.format(after="0002_memo", field="note"))
    code, rules = _rules(merged, "--since", "main")
    assert rules == {"0002_memo": {"migration-edited-after-merge"}}
    # ignore_rules on the migration accepts the edit on purpose.
    path.write_text(
        original.replace('"memo"', '"memo2"').replace(
            "is_post_deployment = False",
            "is_post_deployment = False\n    ignore_rules = "
            "{'migration-edited-after-merge': 'never deployed'}",
        )
    )
    code, rules = _rules(merged, "--since", "main")
    assert code == 0 and rules == {}


def test_files_and_until_select_exactly_the_change(merged: MiniProject) -> None:
    root = merged.root
    merged.write("shop/migrations/0003_drop.py", REMOVE_FIELD_MIGRATION)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "0003")
    # An untracked draft beside it: a second leaf that drops another column.
    merged.write(
        "shop/migrations/0003_draft.py",
        REMOVE_FIELD_MIGRATION.replace(
            'migrations.RemoveField("item", "name")', 'migrations.RemoveField("item", "memo")'
        ),
    )
    code, rules = _rules(merged, "--files", "shop/migrations/0003_drop.py")
    assert code == 1 and rules == {"0003_drop": {"drop-column"}}
    code, rules = _rules(merged, "--since", "main", "--until", "HEAD")
    assert code == 1 and rules == {"0003_drop": {"drop-column"}}
    # --since alone is the working tree: the untracked draft too.
    code, rules = _rules(merged, "--since", "main")
    assert rules == {"0003_drop": {"drop-column"}, "0003_draft": {"drop-column"}}
    # A half-written draft is never even imported by a git-chosen selection.
    merged.write("shop/migrations/0004_wip.py", "class Migration(migrations.Migr\n")
    code, rules = _rules(merged, "--files", "shop/migrations/0003_drop.py")
    assert code == 1 and rules == {"0003_drop": {"drop-column"}}
    code, rules = _rules(merged, "--since", "main", "--until", "HEAD")
    assert code == 1 and rules == {"0003_drop": {"drop-column"}}
    # Both: the migrations in both.
    code, rules = _rules(
        merged,
        "--since",
        "main",
        "--files",
        "shop/migrations/0002_memo.py",
        "shop/migrations/0003_drop.py",
    )
    assert rules == {"0003_drop": {"drop-column"}}
    bad = merged.manage("verify_migrations", "--files", "shop/migrations/nope.py")
    assert bad.returncode == 2 and bad.err.strip().endswith(
        "--files: shop/migrations/nope.py: no such file."
    )
    alone = merged.manage("verify_migrations", "--until", "HEAD")
    assert alone.returncode == 2 and "--until needs --since." in alone.err


def test_files_in_a_repository_without_commits(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    assert project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    project.write(
        "shop/migrations/0002_drop.py",
        REMOVE_FIELD_MIGRATION.replace('("shop", "0002_memo")', '("shop", "0001_initial")'),
    )
    _git(project.root, "init", "-q", "-b", "main")
    _git(project.root, "add", "-A")
    # No HEAD: the staged migrations are one deploy (the table 0001 creates is new in 0002).
    code, rules = _rules(
        project, "--files", "shop/migrations/0001_initial.py", "shop/migrations/0002_drop.py"
    )
    assert code == 0 and rules == {}, rules
    head = project.manage("verify_migrations", "--since", "HEAD")
    assert head.returncode == 2 and "Git ref 'HEAD' does not exist" in head.err


REMOVE_FIELD_MIGRATION = """\
from django.db import migrations

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("shop", "0002_memo")]
    operations = [migrations.RemoveField("item", "name")]
"""


ADD_INDEXED_CHAR = """\
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField("item", "code", models.CharField(max_length=10, null=True, db_index=True)),
    ]
"""


def test_an_index_and_its_like_twin_are_one_finding(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", extra_settings="MIGTOOLS_LARGE_TABLES = ['shop_item']\n")
    assert project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    assert project.manage("migrate", "shop", "-v0").returncode == 0
    project.write("shop/migrations/0002_code.py", ADD_INDEXED_CHAR)
    result = project.manage("verify_migrations", "shop", "0002", "--format", "json")
    findings = json.loads(result.out)["findings"]
    rules = sorted(f["rule"] for f in findings)
    assert rules == ["index-not-concurrent", "index-on-large-table-not-post-deployment"], findings
    assert all("(and its _like twin)" in f["message"] for f in findings)
    assert not any("_like" in (f["sql"] or "") for f in findings)


def _json_findings(project: MiniProject, *args: str) -> tuple[object, str]:
    result = project.manage("verify_migrations", *args, "--format", "json", "-v", "2")
    assert result.returncode in (0, 1) and result.out, result.err[-3000:]
    return json.loads(result.out), result.err


CACHE_BOTH_WAYS = """\
import json, os, sys
import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
django.setup()
from django.db import connection
from migtools.verifier.run import verify

def findings(name):
    report = verify(connection, app_label="shop", name=name)
    return report.cached, [
        (f.rule_id, str(f.level), f.migration_name, f.line, f.message) for f in report.findings
    ]

out = {}
for name in sys.argv[1:]:
    os.environ["MIGTOOLS_STATE_CACHE"] = "0"
    off = findings(name)
    os.environ["MIGTOOLS_STATE_CACHE"] = "1"
    cold, warm = findings(name), findings(name)
    out[name] = [off, cold, warm]
print(json.dumps(out))
"""


def test_state_cache_gives_the_same_findings(project: MiniProject) -> None:
    """Every migration of the rule corpus judged alone, with the state before it replayed
    (cache off), stored (first run) and read back (second run): identical findings."""
    (project.root / "cache_both_ways.py").write_text(CACHE_BOTH_WAYS)
    names = [name for name, *_ in MIGRATIONS]
    result = project.python("cache_both_ways.py", *names)
    assert result.returncode == 0, result.err[-3000:]
    out = json.loads(result.out)
    for name in names:
        (off_cached, off), (_cold_cached, cold), (warm_cached, warm) = out[name]
        assert off == cold == warm, name
        assert off_cached == 0  # the first "cold" run may hit a state an earlier test stored
        assert warm_cached > 0, name  # even 0001: contrib and allauth come first
    got = {name: {f[0] for f in out[name][2][1]} for name in names}
    assert got == {name: EXPECTED.get(name, set()) for name in names}
    stored = list((project.root / "shop" / "migrations" / "__pycache__").glob("migtools-state-*"))
    assert stored


def test_state_cache_is_keyed_by_content(
    project: MiniProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Editing a migration before the selected one misses the cache (the state is replayed
    and the edit is seen); restoring it hits the stored state again."""
    monkeypatch.setenv("MIGTOOLS_STATE_CACHE", "1")
    mdir = project.root / "shop" / "migrations"
    last = MIGRATIONS[-1][0]
    _json_findings(project, "shop", last)
    first, err = _json_findings(project, "shop", last)
    assert "from the cache" in err
    edited = mdir / f"{MIGRATIONS[1][0]}.py"
    source = edited.read_text()
    try:
        edited.write_text(source + "\n# edited\n")
        again, err = _json_findings(project, "shop", last)
        assert "from the cache" not in err
        assert again == first
    finally:
        edited.write_text(source)
    _out, err = _json_findings(project, "shop", last)
    assert "from the cache" in err


def test_conflicting_leaves_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A committed leaf deletes the model an untracked sibling leaf edits: `--since HEAD`
    cannot replay both into one state; it says the graph has conflicting leaves and names
    update_migration (exit 1), without a traceback."""
    project = make_project(tmp_path / "proj", extra_settings="MIGTOOLS_APPS = ['shop']\n")
    mdir = project.root / "shop" / "migrations"
    mdir.mkdir()
    (mdir / "__init__.py").write_text("")
    head = "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n"
    (mdir / "0001_initial.py").write_text(
        head + "    operations = [migrations.CreateModel('Item', "
        "[('id', models.BigAutoField(primary_key=True))])]\n"
    )
    (mdir / "0002_a_drop.py").write_text(
        head + "    dependencies = [('shop', '0001_initial')]\n"
        "    operations = [migrations.DeleteModel('Item')]\n"
    )
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", str(project.root), *args], check=True, capture_output=True)
    (mdir / "0002_z_note.py").write_text(
        head + "    dependencies = [('shop', '0001_initial')]\n"
        "    operations = [migrations.AddField('item', 'note', models.TextField(null=True))]\n"
    )
    result = project.manage("verify_migrations", "--since", "HEAD")
    assert result.returncode == 1, result.out + result.err
    assert "Traceback" not in result.err
    assert "Conflicting migrations" in result.err and "update_migration" in result.err
    assert "0002_a_drop" in result.err and "0002_z_note" in result.err


PLANNED_PROBE = """
import json
import django

django.setup()
from django.db import connection
from migtools.verifier import select

planned = select.load(connection, lazy=True)
ast_only = select._planned
select._planned = lambda connection: None  # Django's loader, over the same stand-ins
django_loader = select.load(connection, lazy=True)
select._planned = ast_only
print(json.dumps({
    "planned": isinstance(planned, select._PlannedLoader),
    "plan": select.full_plan(planned) == select.full_plan(django_loader),
    "nodes": sorted(planned.graph.nodes) == sorted(django_loader.graph.nodes),
    "migrated": sorted(planned.migrated_apps) == sorted(django_loader.migrated_apps),
    "unmigrated": sorted(planned.unmigrated_apps) == sorted(django_loader.unmigrated_apps),
    "leaves": planned.graph.leaf_nodes() == django_loader.graph.leaf_nodes(),
    "applied": sorted(planned.applied_migrations) == sorted(django_loader.applied_migrations),
    "count": len(planned.graph.nodes),
}))
"""

NEW_INDEXED = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("{app}", "{leaf}")]
    operations = [migrations.AddField("item", "code", models.IntegerField(null=True, db_index=True))]
"""


@pytest.mark.parametrize("squashed", [False, True])
def test_history_planned_from_the_graph_on_disk(tmp_path: Path, squashed: bool) -> None:
    """A history ast reads whole is planned without Django's graph: the same plan, nodes,
    leaves and apps as Django's loader gives, and `--since` findings identical with the
    state cache (that path) on and off; with a squash (what is used depends on what is
    applied) Django's loader plans it."""
    from bench.generate import generate

    project = generate(tmp_path / "proj", apps=3, migrations=6, git=True, cross_app_fks=True)
    if squashed:  # the last migration of app00 squashed alone, its file still there
        last = project.root / "app00" / "migrations" / f"{project.leaves['app00']}.py"
        (last.parent / "0006_squashed_0006.py").write_text(
            last.read_text().replace(
                "class Migration(CheckedMigration):\n",
                f"class Migration(CheckedMigration):\n    replaces = [('app00', '{last.stem}')]\n",
            )
        )
    label = project.apps[1]  # the middle app: a cross-app dependency on each side
    (project.root / label / "migrations" / "0007_item_code.py").write_text(
        NEW_INDEXED.format(app=label, leaf=project.leaves[label])
    )

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [project.python, *args],
            cwd=project.root,
            env={**project.env, **env},
            capture_output=True,
            text=True,
            check=False,
        )

    probe = run("-c", PLANNED_PROBE)
    assert probe.returncode == 0, probe.stderr[-3000:]
    facts = json.loads(probe.stdout)
    assert facts.pop("planned") is not squashed
    assert facts.pop("count") > 3 * 6  # + the new one, contenttypes and auth
    assert all(facts.values()), facts
    verify = [str(project.manage_py), "verify_migrations", "--since", "HEAD", "--format", "json"]
    off = run(*verify, MIGTOOLS_STATE_CACHE="0")
    cold, warm = run(*verify), run(*verify)
    assert off.returncode in (0, 1) and off.stdout, off.stderr[-3000:]
    assert off.stdout == cold.stdout == warm.stdout
    report = json.loads(off.stdout)
    assert report["migrations"] == (2 if squashed else 1)  # the squash is new too
    assert any(f["rule"] == "index-not-concurrent" for f in report["findings"]), report
