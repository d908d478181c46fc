from __future__ import annotations

import difflib

from migtools.renamer import rewrite

RENAMES = {("alpha", "0003_feature"): ("alpha", "0004_feature")}


def _rewrite(source: str, renames=RENAMES, relinks=None) -> str:  # type: ignore[no-untyped-def]
    return rewrite.apply(source, rewrite.migration_edits(source, renames, relinks))


def test_every_quote_style_and_layout_is_kept() -> None:
    source = (
        "# -*- coding: utf-8 -*-\n"
        "# Générée à la main — ünïcode before the names shifts byte offsets.\n"
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('alpha',   '0003_feature'),  # single quotes\n"
        '        ("beta", "0001_initial"),\n'
        "    ]\n"
        '    run_before = (("alpha", r"0003_feature"),)\n'
        "    replaces: list[tuple[str, str]] = [(\"alpha\", '''0003_feature''')]\n"
        "    operations = [migrations.RunSQL('-- 0003_feature stays: not a reference')]\n"
    )

    result = _rewrite(source)

    assert result == (
        "# -*- coding: utf-8 -*-\n"
        "# Générée à la main — ünïcode before the names shifts byte offsets.\n"
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('alpha',   '0004_feature'),  # single quotes\n"
        '        ("beta", "0001_initial"),\n'
        "    ]\n"
        '    run_before = (("alpha", r"0004_feature"),)\n'
        "    replaces: list[tuple[str, str]] = [(\"alpha\", '''0004_feature''')]\n"
        "    operations = [migrations.RunSQL('-- 0003_feature stays: not a reference')]\n"
    )


def test_the_diff_shows_only_the_changed_names() -> None:
    source = (
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [\n"
        '        ("alpha", "0003_feature"),\n'
        '        ("beta", "0003_feature"),\n'
        "    ]\n"
        "    operations = []\n"
    )
    result = _rewrite(source)
    diff = [
        line for line in difflib.ndiff(source.splitlines(), result.splitlines()) if line[:1] in "+-"
    ]
    assert diff == ['-         ("alpha", "0003_feature"),', '+         ("alpha", "0004_feature"),']


def test_relinks_apply_to_dependencies_only() -> None:
    source = (
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('alpha', '0002_base')]\n"
        "    run_before = [('alpha', '0002_base')]\n"
    )
    relinks = {("alpha", "0002_base"): ("alpha", "0003_main")}
    assert _rewrite(source, {}, relinks) == (
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('alpha', '0003_main')]\n"
        "    run_before = [('alpha', '0002_base')]\n"
    )


def test_dynamic_entries_and_other_classes_are_left_alone() -> None:
    source = (
        "NAME = '0003_feature'\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('alpha', NAME), ('alpha', '0003_' 'feature'),\n"
        "                    migrations.swappable_dependency(settings.AUTH_USER_MODEL)]\n"
    )
    assert _rewrite(source) == source


def test_migration_tests_move_from_to_the_new_parent() -> None:
    source = (
        "class TestBackfill(TestMigrations):\n"
        '    app = "alpha"\n'
        '    migrate_from = "0002_base"\n'
        "    migrate_to = '0003_feature'\n\n"
        "class TestUnrelated(TestMigrations):\n"
        "    app = 'alpha'\n"
        "    migrate_from = '0002_base'  # starts at the base, tests main's migration\n"
        "    migrate_to = '0003_main'\n\n"
        "class TestPairs(TestMigrations):\n"
        "    migrate_from = [('alpha', '0002_base'), ('beta', '0001_initial')]\n"
        "    migrate_to = [('alpha', '0003_feature'), ('beta', '0001_initial')]\n"
    )
    new_parents = {("alpha", "0003_feature"): (("alpha", "0002_base"), ("alpha", "0003_main"))}

    result = rewrite.apply(source, rewrite.test_edits(source, RENAMES, new_parents))

    assert result == (
        "class TestBackfill(TestMigrations):\n"
        '    app = "alpha"\n'
        '    migrate_from = "0003_main"\n'
        "    migrate_to = '0004_feature'\n\n"
        "class TestUnrelated(TestMigrations):\n"
        "    app = 'alpha'\n"
        "    migrate_from = '0002_base'  # starts at the base, tests main's migration\n"
        "    migrate_to = '0003_main'\n\n"
        "class TestPairs(TestMigrations):\n"
        "    migrate_from = [('alpha', '0003_main'), ('beta', '0001_initial')]\n"
        "    migrate_to = [('alpha', '0004_feature'), ('beta', '0001_initial')]\n"
    )


def test_a_bare_name_needs_an_app_or_a_unique_match() -> None:
    source = "class T:\n    migrate_to = '0003_feature'\n"
    two_apps = {**RENAMES, ("beta", "0003_feature"): ("beta", "0009_feature")}
    assert rewrite.test_edits(source, two_apps, {}) == []
    assert rewrite.apply(source, rewrite.test_edits(source, RENAMES, {})) == (
        "class T:\n    migrate_to = '0004_feature'\n"
    )
