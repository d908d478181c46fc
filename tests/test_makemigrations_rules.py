"""makemigrations writes the safe form or refuses, never both: one case per rule it can meet.

Each case writes ``0001_initial`` for a model, edits the model, and runs the real
``makemigrations`` (interactive, as a developer runs it: a question Django would ask shows up
as a prompt on an empty stdin and fails the case). Then either the migration is written in
its safe form with no error-level finding printed (and ``verify_migrations`` agrees), or
makemigrations exits 1 having written nothing, naming the rule, its recipe's first step and
the ``--explain`` hint.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from migtools.rules.catalogue import CATALOGUE, hint
from tests.miniproject import MiniProject, Result, make_project

MIGTOOLS_ENGINE = "DATABASES['default']['ENGINE'] = 'migtools.db.backends.postgresql'\n"
LARGE = "MIGTOOLS_LARGE_TABLES = ['shop_item']\n"
HEAD = (
    "from django.contrib.postgres.constraints import ExclusionConstraint\n"
    "from django.contrib.postgres.functions import RandomUUID\n"
    "from django.db import models\n\n\n"
)
ITEM = "class Item(models.Model):\n    name = models.CharField(max_length=20)\n"
OTHER = "class Other(models.Model):\n    pass\n\n\n"


@dataclass(frozen=True)
class Case:
    rule: str
    after: str  # the models (below HEAD) after the edit
    before: str = ITEM
    settings: str = ""
    safe: tuple[str, ...] = ()  # written: lines the file holds; empty: refused
    answers: str = ""  # stdin (Django's rename questions)
    id: str = ""


def _item(*lines: str, meta: str = "") -> str:
    body = ITEM + "".join(f"    {line}\n" for line in lines)
    if meta:
        body += f"\n    class Meta:\n        {meta}\n"
    return body


CASES = [
    # -- written in the safe form ---------------------------------------------------------
    Case(
        "index-on-large-table-not-post-deployment",
        _item("code = models.CharField(max_length=5, null=True, db_index=True)"),
        settings=MIGTOOLS_ENGINE + LARGE,
        safe=("    is_post_deployment = True\n    atomic = False\n",),
    ),
    Case(
        "index-not-concurrent",
        _item("code = models.CharField(max_length=5, null=True, db_index=True)"),
        settings=MIGTOOLS_ENGINE,
        safe=("    is_post_deployment = False\n    atomic = False\n",),
        id="index-not-concurrent-migtools-backend",
    ),
    Case(
        "fk-not-valid-missing",
        OTHER + _item("other = models.ForeignKey(Other, models.CASCADE, null=True)"),
        before=OTHER + ITEM,
        settings=MIGTOOLS_ENGINE,
        safe=("    atomic = False\n",),
        id="fk-not-valid-missing-migtools-backend",
    ),
    Case(
        "check-constraint-not-valid-missing",
        _item(
            "qty = models.IntegerField(null=True)",
            meta="constraints = [models.CheckConstraint(condition=models.Q(qty__gte=0), "
            "name='qty_gte_0')]",
        ),
        before=_item("qty = models.IntegerField(null=True)"),
        settings=MIGTOOLS_ENGINE,
        safe=("    atomic = False\n",),
        id="check-constraint-not-valid-missing-migtools-backend",
    ),
    Case(
        "unique-constraint-on-existing-table",
        _item("code = models.CharField(max_length=5, null=True, unique=True)"),
        settings=MIGTOOLS_ENGINE,
        safe=("    atomic = False\n",),
        id="unique-constraint-on-existing-table-migtools-backend",
    ),
    Case(
        "drop-column",
        "class Item(models.Model):\n    pass\n",
        safe=("SafeRemoveField(", "MOVE_TO_PENDING"),
    ),
    Case(
        "drop-table",
        ITEM,
        before=OTHER + ITEM,
        safe=("SafeDeleteModel(", "MOVE_TO_PENDING"),
    ),
    Case(
        "missing-is-post-deployment",
        _item("qty = models.IntegerField(null=True)"),
        safe=("class Migration(CheckedMigration):", "    is_post_deployment = False\n"),
    ),
    Case(
        "drop-index-not-concurrent",  # a warning: written, printed, exit 0
        _item("code = models.CharField(max_length=5, null=True)"),
        before=_item("code = models.CharField(max_length=5, null=True, db_index=True)"),
        safe=("name='code'",),
    ),
    # -- refused before writing ------------------------------------------------------------
    Case("not-null-without-db-default", _item("qty = models.IntegerField()")),
    Case(
        "not-null-without-db-default",
        _item("at = models.DateTimeField(auto_now_add=True)"),
        id="not-null-without-db-default-auto-now-add",
    ),
    Case(
        "not-null-without-db-default",
        _item("code = models.CharField(max_length=5, blank=True)"),
        id="not-null-without-db-default-blank",
    ),
    Case("default-not-db-default", _item("qty = models.IntegerField(default=0)")),
    Case(
        "set-not-null",
        _item("qty = models.IntegerField()"),
        before=_item("qty = models.IntegerField(null=True)"),
        id="set-not-null-no-default",
    ),
    Case(
        "set-not-null",
        _item("qty = models.IntegerField(db_default=0)"),
        before=_item("qty = models.IntegerField(null=True)"),
        id="set-not-null-django-backend",
    ),
    Case(
        "column-type-change",
        _item("qty = models.BigIntegerField(null=True)"),
        before=_item("qty = models.IntegerField(null=True)"),
    ),
    Case(
        "column-type-change",
        _item("qty = models.CharField(max_length=10, null=True)"),
        before=_item("qty = models.IntegerField(null=True)"),
        id="column-type-change-to-text",
    ),
    Case(
        "rename-column",
        "class Item(models.Model):\n    title = models.CharField(max_length=20)\n",
        answers="y\n",
    ),
    Case(
        "rename-table",
        "class Product(models.Model):\n    name = models.CharField(max_length=20)\n",
        answers="y\n",
    ),
    Case(
        "index-not-concurrent",
        _item("code = models.CharField(max_length=5, null=True, db_index=True)"),
        id="index-not-concurrent-django-backend",
    ),
    Case(
        "fk-not-valid-missing",
        OTHER + _item("other = models.ForeignKey(Other, models.CASCADE, null=True)"),
        before=OTHER + ITEM,
        id="fk-not-valid-missing-django-backend",
    ),
    Case(
        "check-constraint-not-valid-missing",
        _item(
            "qty = models.IntegerField(null=True)",
            meta="constraints = [models.CheckConstraint(condition=models.Q(qty__gte=0), "
            "name='qty_gte_0')]",
        ),
        before=_item("qty = models.IntegerField(null=True)"),
        id="check-constraint-not-valid-missing-django-backend",
    ),
    Case(
        "unique-constraint-on-existing-table",
        _item("code = models.CharField(max_length=5, null=True, unique=True)"),
        id="unique-constraint-on-existing-table-django-backend",
    ),
    Case(
        "identifier-too-long",
        # An explicit db_column: Django 6 refuses a too-long autogenerated name itself (E018).
        _item(f"code = models.IntegerField(null=True, db_column={'a' * 70!r})"),
        settings=MIGTOOLS_ENGINE,
    ),
    Case(
        "volatile-default",
        _item("token = models.UUIDField(db_default=RandomUUID())"),
        settings=MIGTOOLS_ENGINE,
    ),
    Case(
        "exclusion-constraint",
        _item(
            meta="constraints = [ExclusionConstraint(name='no_twins', "
            "expressions=[('name', '=')])]",
        ),
        settings=MIGTOOLS_ENGINE + "INSTALLED_APPS += ['django.contrib.postgres']\n",
    ),
    Case(
        # The migtools backend proves NOT NULL lock-light, but the NULL rows are filled
        # with one UPDATE: a data migration, which needs its test first.
        "data-migration-without-test",
        _item("qty = models.IntegerField(db_default=0)"),
        before=_item("qty = models.IntegerField(null=True)"),
        settings=MIGTOOLS_ENGINE,
        id="set-not-null-migtools-backend",
    ),
    Case(
        # Post-deployment would satisfy the size rule; the blocking build still refuses.
        "index-not-concurrent",
        _item("code = models.CharField(max_length=5, null=True, db_index=True)"),
        settings=LARGE,
        id="large-table-index-django-backend",
    ),
]


def _manage(project: MiniProject, *args: str, stdin: str = "") -> Result:
    """``manage.py`` as a developer runs it: interactive, stdin given (empty: any question
    Django asks hits end of file and fails)."""
    env = {**os.environ, "PYTHONPATH": str(project.root), "PYTHONWARNINGS": "ignore"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project.root,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    return Result(proc.stdout, proc.stderr, proc.returncode)


def _project(tmp_path: Path, case: Case) -> MiniProject:
    project = make_project(tmp_path / "p", extra_settings=case.settings)
    (project.root / "shop" / "models.py").write_text(HEAD + case.before)
    made = project.manage("makemigrations", "shop", "-n", "initial")
    assert made.returncode == 0, made.err
    (project.root / "shop" / "models.py").write_text(HEAD + case.after)
    return project


def test_every_error_rule_makemigrations_meets_has_a_case() -> None:
    """The rules an autodetected migration can break (not RunSQL/RunPython/test rules):
    each is covered by a case, so a new rule of that kind needs one."""
    can_meet = {
        rule.id
        for rule in CATALOGUE.values()
        if rule.sql or rule.id == "missing-is-post-deployment"
    } - {
        "concurrently-in-atomic",  # makemigrations never writes CONCURRENTLY itself
        "set-tablespace",  # the autodetector detects no tablespace change
    }
    assert can_meet <= {case.rule for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id or c.rule for c in CASES])
def test_written_safe_or_refused(tmp_path: Path, case: Case) -> None:
    project = _project(tmp_path, case)
    before = project.snapshot()
    result = _manage(project, "makemigrations", "shop", "-n", "change", stdin=case.answers)
    output = result.out + result.err
    assert "Traceback" not in output, output
    assert "Please select a fix" not in output  # no one-off-default question
    written = sorted((project.root / "shop" / "migrations").glob("0002_*.py"))
    if case.safe:
        assert result.returncode == 0, output
        assert ": error: [" not in output, output
        assert len(written) == 1, output
        source = written[0].read_text()
        for line in case.safe:
            assert line in source, source
        verified = project.manage("verify_migrations", "shop")
        assert verified.returncode == 0, verified.out + verified.err
        assert ": error: [" not in verified.out, verified.out
        return
    assert result.returncode == 1, output
    assert written == []
    assert project.snapshot() == before  # nothing written, lockfile untouched
    assert f"[{case.rule}]" in result.err, result.err
    assert CATALOGUE[case.rule].first_step in result.err, result.err
    assert hint(case.rule) in result.err, result.err


def test_not_null_refused_with_noinput_too(tmp_path: Path) -> None:
    case = Case("not-null-without-db-default", _item("qty = models.IntegerField()"))
    project = _project(tmp_path, case)
    before = project.snapshot()
    result = project.manage("makemigrations", "shop", "-n", "change", "--noinput")
    assert result.returncode == 1, result.err
    assert "shop.Item.qty: NOT NULL column added with no default at all" in result.err
    assert "give it db_default=<value>, or null=True" in result.err
    assert "default=" not in result.err.replace("db_default=", "")  # none it does not have
    assert project.snapshot() == before


def test_callable_default_is_named(tmp_path: Path) -> None:
    case = Case(
        "default-not-db-default",
        "import uuid\n\n\n" + _item("token = models.UUIDField(default=uuid.uuid4)"),
    )
    project = _project(tmp_path, case)
    before = project.snapshot()
    result = project.manage("makemigrations", "shop", "-n", "change")
    assert result.returncode == 1, result.err
    assert "its default= is a callable (uuid4)" in result.err
    assert project.snapshot() == before


def test_large_table_index_says_it_runs_after_the_deploy(tmp_path: Path) -> None:
    case = CASES[0]
    project = _project(tmp_path, case)
    result = project.manage("makemigrations", "shop", "-n", "change")
    assert result.returncode == 0, result.err
    assert "shop.0002_change builds an index on shop_item: written with " in result.out
    assert "is_post_deployment = True" in result.out


def test_update_is_judged_without_the_migration_it_replaces(tmp_path: Path) -> None:
    """--update rewrites the leaf: the state it is judged on is the one before that leaf."""
    case = Case(
        "index-on-large-table-not-post-deployment",
        _item("qty = models.IntegerField(null=True)"),
        settings=MIGTOOLS_ENGINE + LARGE,
    )
    project = _project(tmp_path, case)
    first = project.manage("makemigrations", "shop", "-n", "add_qty")
    assert first.returncode == 0, first.err
    path = project.root / "shop" / "migrations" / "0002_add_qty.py"
    assert "    is_post_deployment = False\n" in path.read_text()
    models = project.root / "shop" / "models.py"
    models.write_text(
        models.read_text().replace(
            "qty = models.IntegerField(null=True)",
            "qty = models.IntegerField(null=True, db_index=True)",
        )
    )
    result = project.manage("makemigrations", "shop", "--update")
    assert result.returncode == 0, result.err
    assert ": error: [" not in result.out + result.err
    source = path.read_text()
    assert "    is_post_deployment = True\n    atomic = False\n" in source, source
    assert "name='qty'" in source and "db_index=True" in source
