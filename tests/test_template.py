"""Test databases cloned from content-keyed templates (``migtools.testing.template``,
``creation``, ``runner``), driven through real pytest / ``manage.py test`` subprocesses on the
session's PostgreSQL.

Each test writes its own app (a unique label, so templates never collide between tests). Every
migration's RunPython inserts a marker row into the database *and* appends its name to a log
file: the rows prove what the test database holds (data seeded by migrations survives), the
log proves which migrations were replayed, in which process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.test import override_settings

from migtools import conf
from migtools.errors import SettingsError
from migtools.testing.template import Key, compute_key, usable_prefix

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent

MIGRATION = """\
import os

from django.db import migrations, models


def mark(apps, schema_editor):
    apps.get_model("{label}", "Marker").objects.create(note="{note}")
    with open(os.environ["MT_TEMPLATE_LOG"], "a") as log:
        log.write("{name}\\n")


class Migration(migrations.Migration):
    dependencies = {deps}
    operations = [
        {create}
        migrations.RunPython(mark, migrations.RunPython.noop),
    ]
"""

CREATE = (
    'migrations.CreateModel("Marker", [("id", models.BigAutoField(primary_key=True)), '
    '("note", models.CharField(max_length=40))]),'
)

INNER_TESTS = """\
import os

import pytest
from django.db import connection


@pytest.mark.django_db
@pytest.mark.parametrize("n", range({tests}))
def test_markers(n):
    with connection.cursor() as cursor:
        cursor.execute("SELECT note FROM {label}_marker ORDER BY id")
        notes = [row[0] for row in cursor.fetchall()]
    assert notes == os.environ["MT_EXPECT"].split(",")
"""


@dataclass
class Inner:
    root: Path
    label: str
    test_db: str
    log: Path
    pytester: pytest.Pytester

    def write_migration(self, number: int, note: str | None = None) -> None:
        name = f"{number:04d}_m"
        deps = f"[('{self.label}', '{number - 1:04d}_m')]" if number > 1 else "[]"
        source = MIGRATION.format(
            label=self.label,
            note=note or name,
            name=name,
            deps=deps,
            create=CREATE if number == 1 else "",
        )
        (self.root / self.label / "migrations" / f"{name}.py").write_text(source)

    def replayed(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []

    def run(self, *args: str, expect: str, tests: int = 1) -> pytest.RunResult:
        os.environ["MT_EXPECT"] = expect
        self.pytester.makepyfile(test_inner=INNER_TESTS.format(label=self.label, tests=tests))
        return self.pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)

    def templates(self) -> dict[str, dict[str, object]]:
        """This test's templates on the server: name -> key metadata."""
        with _admin() as conn:
            rows = conn.execute(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname LIKE 'mt\\_tpl\\_%'"
            ).fetchall()
        found = {}
        for name, comment in rows:
            meta = json.loads(comment) if comment else {}
            if any(node.startswith(self.label + ".") for node in meta.get("migrations", {})):
                found[str(name)] = meta
        return found

    def comment(self, database: str) -> str | None:
        with _admin() as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                (database,),
            ).fetchone()
        return None if row is None else row[0]


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    return psycopg.connect(url, autocommit=True)


def _settings(label: str, test_db: str, extra: str = "") -> str:
    return textwrap.dedent(
        f"""
        from tests.settings import *  # noqa: F403
        INSTALLED_APPS = ["migtools", "django.contrib.contenttypes", "django.contrib.auth",
                          {label!r}]
        MIGTOOLS_APPS: list[str] = []  # the markers are plain migrations
        DATABASES = {{"default": {{**DATABASES["default"], "TEST": {{"NAME": {test_db!r}}}}}}}
        TEST_RUNNER = "migtools.testing.runner.TemplateTestRunner"
        """
    ) + textwrap.dedent(extra)


@pytest.fixture
def inner(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Inner]:
    label = f"tpl{uuid.uuid4().hex[:8]}"
    test_db = f"test_{label}"
    root = pytester.path
    (root / label / "migrations").mkdir(parents=True)
    (root / label / "__init__.py").write_text("")
    (root / label / "migrations" / "__init__.py").write_text("")
    (root / label / "models.py").write_text("")
    (root / "inner_settings.py").write_text(_settings(label, test_db))
    pytester.makeini(
        "[pytest]\nDJANGO_SETTINGS_MODULE = inner_settings\ndjango_find_project = false\n"
    )
    log = tmp_path_factory.mktemp("log") / "replayed.txt"
    monkeypatch.setenv("MT_TEMPLATE_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), str(REPO)]))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.delenv("MT_EXPECT", raising=False)
    project = Inner(root, label, test_db, log, pytester)
    project.write_migration(1)
    project.write_migration(2)
    yield project
    with _admin() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (test_db + "%",)
        ).fetchall()
        for name in [row[0] for row in rows] + list(project.templates()):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_next_run_clones_the_template(inner: Inner) -> None:
    first = inner.run("-q", expect="0001_m,0002_m")
    first.assert_outcomes(passed=1)
    assert inner.replayed() == ["0001_m", "0002_m"]
    first.stdout.fnmatch_lines(
        ["migtools: test databases cloned from mt_tpl_* (built now from scratch: * applied)"]
    )
    (template,) = inner.templates()

    second = inner.run("-q", expect="0001_m,0002_m")  # the seeded rows are in the clone
    second.assert_outcomes(passed=1)
    assert inner.replayed() == ["0001_m", "0002_m"]  # nothing replayed
    second.stdout.fnmatch_lines([f"migtools: test databases cloned from {template}"])
    assert list(inner.templates()) == [template]


def test_added_migration_is_the_only_one_applied(inner: Inner) -> None:
    inner.run("-q", expect="0001_m,0002_m").assert_outcomes(passed=1)
    (old,) = inner.templates()
    inner.write_migration(3)

    result = inner.run("-q", expect="0001_m,0002_m,0003_m")
    result.assert_outcomes(passed=1)
    assert inner.replayed() == ["0001_m", "0002_m", "0003_m"]  # 0001 and 0002 not re-run
    result.stdout.fnmatch_lines([f"*built now from a copy of {old}: 1 migration applied)"])
    templates = inner.templates()
    assert len(templates) == 2
    (new,) = set(templates) - {old}
    held = sorted(node for node in templates[new]["migrations"] if node.startswith(inner.label))  # type: ignore[attr-defined]
    assert held == [f"{inner.label}.000{n}_m" for n in (1, 2, 3)]


def test_edited_migration_rebuilds_the_template(inner: Inner) -> None:
    inner.run("-q", expect="0001_m,0002_m").assert_outcomes(passed=1)
    (old,) = inner.templates()
    inner.write_migration(1, note="edited")

    result = inner.run("-q", expect="edited,0002_m")
    result.assert_outcomes(passed=1)
    assert inner.replayed() == ["0001_m", "0002_m", "0001_m", "0002_m"]
    result.stdout.fnmatch_lines(["*built now from scratch*"])
    assert old in inner.templates() and len(inner.templates()) == 2


def test_xdist_workers_clone_and_never_replay(inner: Inner) -> None:
    pytest.importorskip("xdist")
    first = inner.run("-n", "2", "--reuse-db", expect="0001_m,0002_m", tests=6)
    first.assert_outcomes(passed=6)
    assert inner.replayed() == ["0001_m", "0002_m"]  # one worker built, the other waited
    (template,) = inner.templates()
    digest = template.removeprefix("mt_tpl_")
    for worker in ("gw0", "gw1"):  # both workers' databases are clones of the template
        assert inner.comment(f"{inner.test_db}_{worker}") == f"migtools-template {digest}"

    second = inner.run("-n", "2", "--create-db", expect="0001_m,0002_m", tests=6)
    second.assert_outcomes(passed=6)
    assert inner.replayed() == ["0001_m", "0002_m"]  # neither worker replayed the history


def test_reuse_db_keeps_only_an_unchanged_database(inner: Inner) -> None:
    inner.run("-q", "--reuse-db", expect="0001_m,0002_m").assert_outcomes(passed=1)
    kept = inner.run("-q", "--reuse-db", expect="0001_m,0002_m")
    kept.assert_outcomes(passed=1)
    kept.stdout.fnmatch_lines(["migtools: test databases kept (--reuse-db, migrations unchanged)"])

    inner.write_migration(2, note="changed")  # Django alone would keep the stale database
    result = inner.run("-q", "--reuse-db", expect="0001_m,changed")
    result.assert_outcomes(passed=1)
    assert inner.replayed() == ["0001_m", "0002_m"] * 2  # no template lacks only 0002: rebuilt
    result.stdout.fnmatch_lines(["*built now from scratch*"])


def test_off_switch_is_djangos_creation(inner: Inner) -> None:
    settings = inner.root / "inner_settings.py"
    settings.write_text(settings.read_text() + "MIGTOOLS_TEST_TEMPLATES = False\n")
    for _ in range(2):
        result = inner.run("-q", expect="0001_m,0002_m")
        result.assert_outcomes(passed=1)
        assert "migtools: test databases" not in result.stdout.str()
    assert inner.replayed() == ["0001_m", "0002_m"] * 2
    assert inner.templates() == {}


def test_sqlite_falls_back_silently(inner: Inner) -> None:
    settings = inner.root / "inner_settings.py"
    settings.write_text(
        settings.read_text()
        + 'DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}\n'
    )
    result = inner.run("-q", expect="0001_m,0002_m")
    result.assert_outcomes(passed=1)
    assert inner.replayed() == ["0001_m", "0002_m"]
    assert "migtools" not in result.stdout.str()


def _manage_test(inner: Inner, *args: str) -> subprocess.CompletedProcess[str]:
    (inner.root / inner.label / "tests.py").write_text(
        textwrap.dedent(
            f"""
            from django.db import connection
            from django.test import TestCase


            class MarkerTest(TestCase):
                def test_rows(self):
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT note FROM {inner.label}_marker ORDER BY id")
                        notes = [row[0] for row in cursor.fetchall()]
                    self.assertEqual(notes, ["0001_m", "0002_m"])
            """
        )
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "inner_settings"}
    return subprocess.run(
        [sys.executable, "-m", "django", "test", inner.label, "-v", "1", *args],
        cwd=inner.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_manage_py_test_runner(inner: Inner) -> None:
    first = _manage_test(inner)
    assert first.returncode == 0, first.stderr
    assert "built now from scratch" in first.stderr
    assert inner.replayed() == ["0001_m", "0002_m"]

    second = _manage_test(inner, "--keepdb")
    assert second.returncode == 0, second.stderr
    assert "Creating test database for alias 'default' from template mt_tpl_" in second.stderr
    third = _manage_test(inner, "--keepdb")
    assert third.returncode == 0, third.stderr
    assert "its migrations are unchanged" in third.stderr
    assert inner.replayed() == ["0001_m", "0002_m"]


def test_plugin_imports_no_django_without_django_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session of plain tests, the plugin and pytest-django loaded: Django is never imported."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    # Only the two plugins this is about: another installed plugin (django-test-migrations'
    # imports Django at load time) must not decide the outcome.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(
        """
        import sys

        def pytest_collection_finish(session):
            loaded = sorted(name for name in sys.modules if name.split(".")[0] == "django")
            print("DJANGO-MODULES:", loaded)
            print("PLUGIN:", "migtools.pytest_plugin" in sys.modules)
        """
    )
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess(
        "-s", "-p", "no:cacheprovider", "-p", "pytest_django.plugin", "-p", "migtools.pytest_plugin"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["DJANGO-MODULES: []", "PLUGIN: True"])


def test_setting_is_validated() -> None:
    assert conf.test_templates() is True
    with override_settings(MIGTOOLS_TEST_TEMPLATES="no"):
        with pytest.raises(SettingsError) as raised:
            conf.test_templates()
        assert raised.value.check_id == "migtools.E121"
        assert [error.check_id for error in conf.validate()] == ["migtools.E121"]
    with override_settings(MIGTOOLS_TEST_TEMPLATES=False):
        assert conf.test_templates() is False


def test_usable_prefix() -> None:
    key = Key("base", {"a.0001": "x", "a.0002": "y", "a.0003": "z"})
    assert usable_prefix({"a.0001": "x", "a.0002": "y"}, key)
    assert not usable_prefix({"a.0001": "x", "a.0002": "edited"}, key)
    assert not usable_prefix({"a.0001": "x", "a.0009": "y"}, key)  # removed since
    assert not usable_prefix(dict(key.migrations), key)  # nothing to add: not a prefix
    # 0003 is new but must run before the old 0002 (run_before): not a prefix
    parents = {"a.0001": set(), "a.0002": {"a.0001", "a.0003"}}
    assert not usable_prefix({"a.0001": "x", "a.0002": "y"}, key, parents.get)
    parents["a.0002"] = {"a.0001"}
    assert usable_prefix({"a.0001": "x", "a.0002": "y"}, key, parents.get)


def test_key_follows_what_shapes_the_schema() -> None:
    from django.db import connections

    wrapper = connections["default"]
    key = compute_key(wrapper)
    assert "ledger.0005_backfill_entry_kind" in key.migrations  # read from the files
    assert compute_key(wrapper) == key
    with override_settings(MIGTOOLS_TEST_TEMPLATES=False):
        assert compute_key(wrapper).digest == key.digest  # the off switch is not in the key
    with override_settings(MIGTOOLS_LOCK_TIMEOUT="7s"):
        assert compute_key(wrapper).base != key.base
    with override_settings(AUTH_USER_MODEL="alpha.Thing"):
        assert compute_key(wrapper).digest != key.digest


def test_prune_keeps_each_projects_recent_templates() -> None:
    """Pruning keeps the last few templates of the project that built one (the current one
    always), and another project's templates on the same server unless long unused."""
    from django.db import connections

    from migtools.testing.template import KEEP, PREFIX, STALE_AFTER, TemplateStore

    store = TemplateStore(connections["default"])
    tag = uuid.uuid4().hex[:8]
    now = time.time()  # real: a concurrent run's templates must not look stale

    def made(project: str, n: int, used: float) -> str:
        name = f"{PREFIX}prune_{tag}_{project}{n}"
        store.create(name, None)
        meta = {"migtools-template": 1, "base": "b", "used": used}
        meta["migrations"] = {f"{project}_{tag}.0001_m": "x", f"{project}_{tag}_b.0001_m": "y"}
        store.set_comment(name, json.dumps(meta))
        return name

    try:
        mine = [made("a", n, now - 100 + n) for n in range(KEEP + 2)]  # mine[0]: least recent
        recent_other = made("b", 0, now - 3600)
        stale_other = made("b", 1, now - STALE_AFTER - 1)
        dropped = store.prune(mine[0], now=now)
        assert sorted(dropped) == sorted([mine[1], mine[2], stale_other])
        left = set(store.templates())
        assert {mine[0], mine[3], mine[4], recent_other} <= left  # current, newest, other's
        assert not {mine[1], mine[2], stale_other} & left
    finally:
        for name in store.templates():
            if name.startswith(f"{PREFIX}prune_{tag}_"):
                store.drop(name)
        store.close()
