from __future__ import annotations

from pathlib import Path

import pytest

from tests.miniproject import MiniProject, make_project

LEAF = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = []
"""


@pytest.fixture
def project(tmp_path: Path) -> MiniProject:
    proj = make_project(tmp_path / "p")
    assert proj.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    return proj


def test_clean_project_has_no_warnings(project: MiniProject) -> None:
    result = project.manage("check")
    assert result.returncode == 0
    assert "migtools." not in result.err + result.out


def test_missing_lockfile_w001(project: MiniProject) -> None:
    project.lockfile.unlink()
    result = project.manage("check")
    assert result.returncode == 0  # a Warning never blocks
    assert f"(migtools.W001) No lockfile at {project.lockfile}." in result.err


def test_stale_lockfile_w002(project: MiniProject) -> None:
    project.lockfile.write_text(project.lockfile.read_text().replace("0001_initial", "0000_x"))
    result = project.manage("check")
    assert (
        "(migtools.W002) Lockfile is stale: shop: lockfile says '0000_x', latest migration is "
        "'0001_initial'." in result.err
    )


def test_conflict_markers_w003_and_several_leaves_w004(project: MiniProject) -> None:
    project.write("shop/migrations/0002_a.py", LEAF)
    project.write("shop/migrations/0002_b.py", LEAF)
    project.lockfile.write_text("<<<<<<< HEAD\nshop: 0002_a\n=======\nshop: 0002_b\n>>>>>>> x\n")
    result = project.manage("check")
    assert result.returncode == 0
    assert "(migtools.W003)" in result.err
    assert "(migtools.W004) App 'shop' has several leaf migrations: 0002_a, 0002_b." in result.err
    assert "HINT: Run 'python manage.py update_migration'." in result.err


def test_unimported_model_module_w005(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p")
    (proj.root / "shop/models.py").unlink()
    proj.write("shop/models/__init__.py", "from .item import Item  # noqa: F401\n")
    proj.write(
        "shop/models/item.py",
        "from django.db import models\n\n\nclass Item(models.Model):\n    pass\n",
    )
    forgotten = proj.write(
        "shop/models/forgotten.py",
        "from django.db import models\n\n\nclass Lost(models.Model):\n    pass\n",
    )
    proj.write("shop/models/helpers.py", "def f():\n    return 1\n")
    result = proj.manage("check")
    assert result.err.count("migtools.W005") == 1
    assert f"{forgotten} defines models but is not imported by shop.models" in result.err


def test_shadowed_command_w006(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p", apps=("shop",))
    proj.write("other/__init__.py", "")
    proj.write("other/management/__init__.py", "")
    proj.write("other/management/commands/__init__.py", "")
    proj.write(
        "other/management/commands/makemigrations.py",
        "from django.core.management.commands.makemigrations import Command  # noqa: F401\n",
    )
    settings = proj.root / "proj/settings.py"
    settings.write_text(settings.read_text().replace('["migtools",', '["other", "migtools",'))
    result = proj.manage("check")
    assert (
        "(migtools.W006) The 'makemigrations' command of app 'other' shadows migtools' own."
        in result.err
    )


def test_dynamic_migration_w007(project: MiniProject) -> None:
    project.write(
        "shop/migrations/0002_dyn.py",
        LEAF.replace('[("shop", "0001_initial")]', 'list([("shop", "0001_initial")])'),
    )
    result = project.manage("check")
    assert "(migtools.W007)" in result.err
    assert "0002_dyn.py:5: not a literal list or tuple" in result.err


# -- Settings (migtools.checks) ----------------------------------------------------------------


def test_bad_settings_are_errors_with_ids_and_hints(tmp_path: Path) -> None:
    proj = make_project(
        tmp_path / "p",
        extra_settings=(
            "MIGTOOLS_LOCK_TIMEOUT = 5\n"
            'MIGTOOLS_LOCK_RETRIES = "three"\n'
            'MIGTOOLS_RULES = {"volatile-defualt": "off", "volatile-default": "loud"}\n'
        ),
    )
    result = proj.manage("check")
    assert result.returncode == 1
    assert "Traceback" not in result.err
    assert (
        "(migtools.E101) MIGTOOLS_LOCK_TIMEOUT = 5: a bare number is ambiguous (PostgreSQL "
        "would read it as milliseconds)." in result.err
    )
    assert 'HINT: Write a PostgreSQL duration string with its unit, e.g. "5s"' in result.err
    assert "(migtools.E103) MIGTOOLS_LOCK_RETRIES = 'three': expected a whole number." in result.err
    assert "(migtools.E110) MIGTOOLS_RULES names an unknown rule 'volatile-defualt'." in result.err
    assert (
        "Did you mean 'volatile-default'? `manage.py verify_migrations --explain volatile-default`"
        in result.err
    )
    assert "(migtools.E110) MIGTOOLS_RULES['volatile-default'] = 'loud': not a level." in result.err


def test_a_timeout_above_postgresqls_limit_is_refused_by_the_check(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p", extra_settings='MIGTOOLS_LOCK_TIMEOUT = "30d"\n')
    for command in ("check", "migrate"):
        result = proj.manage(command)
        assert result.returncode == 1, command
        assert "Traceback" not in result.err
        assert (
            "(migtools.E101) MIGTOOLS_LOCK_TIMEOUT = '30d': above PostgreSQL's limit for a "
            "timeout (2147483647ms, about 24.8 days)." in result.err
        )
        assert 'HINT: Give at most "24d", or None for no limit.' in result.err


def test_valid_settings_pass_the_check(tmp_path: Path) -> None:
    proj = make_project(
        tmp_path / "p",
        extra_settings=(
            'MIGTOOLS_LOCK_TIMEOUT = "0.5s"\nMIGTOOLS_STATEMENT_TIMEOUT = None\n'
            'MIGTOOLS_LOCK_RETRY_DELAY = "250ms"\nMIGTOOLS_APPS = ["shop"]\n'
            'MIGTOOLS_RULES = {"volatile-default": "warning"}\n'
        ),
    )
    result = proj.manage("check")
    assert result.returncode == 0, result.err
    assert "migtools." not in result.err


def test_baseline_names_a_missing_migration_w103(tmp_path: Path) -> None:
    proj = make_project(
        tmp_path / "p", extra_settings='MIGTOOLS_BASELINE = {"shop": "0009_nosuch"}'
    )
    assert proj.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    result = proj.manage("check")
    assert result.returncode == 0  # it exempts nothing: a Warning
    assert "(migtools.W103) MIGTOOLS_BASELINE['shop'] = '0009_nosuch'" in result.err
    fixed = make_project(
        tmp_path / "q", extra_settings='MIGTOOLS_BASELINE = {"shop": "0001_initial"}'
    )
    assert fixed.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    assert "W103" not in fixed.manage("check").err


def test_unknown_rule_in_ignore_rules_w102(project: MiniProject) -> None:
    path = project.root / "shop" / "migrations" / "0001_initial.py"
    original = path.read_text()
    marker = "class Migration(CheckedMigration):\n"
    assert marker in original
    path.write_text(
        original.replace(marker, marker + '    ignore_rules = {"volatile-default": "ok"}\n')
    )
    control = project.manage("check")
    assert control.returncode == 0
    assert "W102" not in control.err  # a known id: no warning
    path.write_text(
        original.replace(marker, marker + '    ignore_rules = {"volatile-defualt": "x"}\n')
    )
    result = project.manage("check")
    assert result.returncode == 0  # a Warning never blocks
    line = path.read_text().splitlines().index('    ignore_rules = {"volatile-defualt": "x"}') + 1
    assert (
        f"(migtools.W102) {path}:{line}: ignore_rules names an unknown rule 'volatile-defualt'; it "
        "silences nothing." in result.err
    )


def test_misspelt_setting_w101(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p", extra_settings='MIGTOOLS_LOCK_TIMOUT = "5s"')
    result = proj.manage("check")
    assert result.returncode == 0
    assert "(migtools.W101) MIGTOOLS_LOCK_TIMOUT is not a migtools setting" in result.err


def test_lockfile_not_utf8_is_a_warning(project: MiniProject) -> None:
    project.lockfile.write_bytes(project.lockfile.read_bytes() + b"\nshop: 0001_\xff\n")
    result = project.manage("check")
    assert result.returncode == 0
    assert "Traceback" not in result.err
    lines = project.lockfile.read_bytes().count(b"\n")
    assert f"(migtools.W002) {project.lockfile}:{lines}: byte 0xff is not UTF-8" in result.err
    check = project.manage("migrations_lockfile", "--check")
    assert check.returncode == 1
    assert "is not UTF-8" in check.err
    rewrite = project.manage("migrations_lockfile")
    assert rewrite.returncode == 0, rewrite.err
    assert project.manage("migrations_lockfile", "--check").returncode == 0
