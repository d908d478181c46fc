"""Benchmark: one data-migration test, django-test-migrations' MigratorTestCase vs migtools'
TestMigrations, on a generated project with 1,000 migrations (4 apps x 250).

The backfill under test is app0's 0150 (100 migrations behind app0's head; the 100 later
migrations depend on it). Each framework gets the same test: seed three rows at 0149, run 0150,
assert the backfill. Each class has ``--tests`` test methods (default 3); they run side by side
in one pytest process (after a warm-up test that creates the test database), per-test times are
taken from pytest's setup+call+teardown, and the ratio is printed. Whole-process times of runs
with each framework alone, and the floor (``django.setup()`` of the same project), are printed
too.

    .venv/bin/python bench/migration_tests.py [--tests N] [--keep DIR] [--django-paths]
        [--irreversible]

``--irreversible`` makes app0's 0200 (50 migrations after the backfill) a RunPython without
reverse_code: the walk back to 0149 is impossible, so migtools builds the snapshot forwards
from an empty database (once) and django-test-migrations replays forwards as always.

``--django-paths`` runs migtools with ``MIGTOOLS_FAST_PATHS = False`` (Django's executor walks
the snapshot back): the cost of the fallback.

Needs django-test-migrations (``pip install -e ".[bench]"``). Starts a throwaway PostgreSQL
when DATABASE_URL is unset.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.pgserver import ensure_database_url  # noqa: E402

APPS = 4
PER_APP = 250
BACKFILL = 150  # app0's backfill; 100 migrations after it
IRREVERSIBLE = 200  # app0's RunPython without reverse_code, with --irreversible
options_irreversible = False

SETTINGS = """
import dj_database_url, os
SECRET_KEY = "bench"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", {apps}]
DATABASES = {{"default": dj_database_url.parse(os.environ["DATABASE_URL"])}}
DATABASES["default"]["TEST"] = {{"NAME": "test_mtbench_" + os.environ.get("BENCH_ID", "0")}}
MIGTOOLS_FAST_PATHS = os.environ.get("BENCH_FAST_PATHS", "1") == "1"
"""

CONFTEST = """
import json, os, pytest

DURATIONS = {}


def pytest_runtest_logreport(report):
    DURATIONS.setdefault(report.nodeid, 0.0)
    DURATIONS[report.nodeid] += report.duration


def pytest_sessionfinish(session):
    path = os.environ.get("BENCH_OUT")
    if path:
        with open(path, "w") as handle:
            json.dump(DURATIONS, handle)
"""

TESTS = '''
import pytest
from django_test_migrations.contrib.unittest_case import MigratorTestCase

from migtools.testing import TestMigrations

FROM = "{before}"
TO = "{backfill}"


@pytest.mark.django_db
def test_000_warmup():
    """Creates the test database (1,000 migrations): not part of any per-test figure."""


def seed(apps):
    Item = apps.get_model("app0", "Item")
    return [Item.objects.create(value=v).pk for v in (5, -1, 0)]


def check(apps, pks):
    Item = apps.get_model("app0", "Item")
    assert [Item.objects.get(pk=pk).flag for pk in pks] == [True, False, False]


class TestMigtools(TestMigrations):
    app = "app0"
    migrate_from = FROM
    migrate_to = TO

    def setup_before_migration(self, apps):
        self.pks = seed(apps)

{ours}

class TestMigtoolsNearHead(TestMigrations):
    """The same test shape one migration behind app1's head: its first test builds a snapshot
    that walks back 1 migration instead of 100 (the cost must not grow with the distance)."""

    app = "app1"
    migrate_from = "{near_from}"
    migrate_to = "{near_to}"

    def setup_before_migration(self, apps):
        Item = apps.get_model("app1", "Item")
        self.pks = [Item.objects.create(value=v).pk for v in (5, -1, 0)]

    def test_near_head(self):
        Item = self.apps.get_model("app1", "Item")
        assert Item.objects.filter(pk__in=self.pks, f{near_number}=None).count() == 3


class TestDjangoTestMigrations(MigratorTestCase):
    migrate_from = ("app0", FROM)
    migrate_to = ("app0", TO)

    def prepare(self):
        self.pks = seed(self.old_state.apps)

{theirs}
'''


def _migration(app: str, number: int) -> str:
    if number == 1:
        return (
            "from django.db import migrations, models\n\n\n"
            "class Migration(migrations.Migration):\n"
            "    initial = True\n"
            "    dependencies = []\n"
            "    operations = [migrations.CreateModel('Item', [\n"
            "        ('id', models.BigAutoField(primary_key=True)),\n"
            "        ('value', models.IntegerField()),\n"
            "        ('flag', models.BooleanField(null=True)),\n"
            "    ])]\n"
        )
    parent = _name(app, number - 1)
    head = f"from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    dependencies = [('{app}', '{parent}')]\n"
    if app == "app0" and number == IRREVERSIBLE and options_irreversible:
        return (
            "from django.db import migrations\n\n\n"
            "def touch(apps, schema_editor):\n"
            "    apps.get_model('app0', 'Item').objects.filter(value=None).delete()\n\n\n"
            "class Migration(migrations.Migration):\n"
            f"    dependencies = [('{app}', '{parent}')]\n"
            "    operations = [migrations.RunPython(touch)]\n"
        )
    if app == "app0" and number == BACKFILL:
        return (
            "from django.db import migrations\n\n\n"
            "def backfill(apps, schema_editor):\n"
            "    Item = apps.get_model('app0', 'Item')\n"
            "    items = Item.objects.using(schema_editor.connection.alias).filter(flag=None)\n"
            "    items.filter(value__gt=0).update(flag=True)\n"
            "    items.filter(value__lte=0).update(flag=False)\n\n\n"
            "class Migration(migrations.Migration):\n"
            f"    dependencies = [('{app}', '{parent}')]\n"
            "    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]\n"
        )
    return head + (
        f"    operations = [migrations.AddField('item', 'f{number}', "
        "models.IntegerField(null=True))]\n"
    )


def _name(app: str, number: int) -> str:
    if app == "app0" and number == IRREVERSIBLE and options_irreversible:
        return f"{number:04d}_irreversible"
    if app == "app0" and number == BACKFILL:
        return f"{number:04d}_backfill_flag"
    return f"{number:04d}_initial" if number == 1 else f"{number:04d}_add_f{number}"


def _models(app: str) -> str:
    """The head state (django-test-migrations drops tables through the current models)."""
    fields = "".join(
        f"    f{number} = models.IntegerField(null=True)\n"
        for number in range(2, PER_APP + 1)
        if not (app == "app0" and number == BACKFILL)
        and not (app == "app0" and number == IRREVERSIBLE and options_irreversible)
    )
    return (
        "from django.db import models\n\n\nclass Item(models.Model):\n"
        "    value = models.IntegerField()\n    flag = models.BooleanField(null=True)\n" + fields
    )


def generate(root: Path, tests: int) -> None:
    apps = [f"app{i}" for i in range(APPS)]
    for app in apps:
        package = root / app / "migrations"
        package.mkdir(parents=True)
        (root / app / "__init__.py").write_text("")
        (root / app / "models.py").write_text(_models(app))
        (package / "__init__.py").write_text("")
        for number in range(1, PER_APP + 1):
            (package / f"{_name(app, number)}.py").write_text(_migration(app, number))
    (root / "settings.py").write_text(SETTINGS.format(apps=", ".join(map(repr, apps))))
    (root / "conftest.py").write_text(CONFTEST)
    (root / "pytest.ini").write_text(
        "[pytest]\nDJANGO_SETTINGS_MODULE = settings\naddopts = -p no:cacheprovider\n"
        "django_find_project = false\n"
    )
    ours = "\n".join(
        f"    def test_backfill_{i}(self):\n        check(self.apps, self.pks)\n"
        for i in range(1, tests + 1)
    )
    theirs = "\n".join(
        f"    def test_backfill_{i}(self):\n        check(self.new_state.apps, self.pks)\n"
        for i in range(1, tests + 1)
    )
    (root / "test_bench.py").write_text(
        TESTS.format(
            before=_name("app0", BACKFILL - 1),
            backfill=_name("app0", BACKFILL),
            near_from=_name("app1", PER_APP - 1),
            near_to=_name("app1", PER_APP),
            near_number=PER_APP,
            ours=ours,
            theirs=theirs,
        )
    )


def run(root: Path, *args: str) -> tuple[float, dict[str, float]]:
    out = root / "durations.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), str(REPO)]),
        "BENCH_OUT": str(out),
        "BENCH_ID": str(os.getpid()),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("PYTEST_ADDOPTS", None)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(
            f"pytest failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
        )
    return elapsed, json.loads(out.read_text())


def floor(root: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(root), "DJANGO_SETTINGS_MODULE": "settings"}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=root, env=env, check=True
    )
    return time.perf_counter() - start


def _per_test(durations: dict[str, float], cls: str) -> list[float]:
    return [seconds for nodeid, seconds in durations.items() if f"::{cls}::" in nodeid]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=3, help="test methods per class")
    parser.add_argument("--keep", type=Path, help="generate the project here and keep it")
    parser.add_argument(
        "--django-paths", action="store_true", help="MIGTOOLS_FAST_PATHS = False for migtools"
    )
    parser.add_argument(
        "--irreversible",
        action="store_true",
        help=f"app0's {IRREVERSIBLE:04d} is a RunPython without reverse_code (forward build)",
    )
    options = parser.parse_args()
    global options_irreversible
    options_irreversible = options.irreversible
    if options.django_paths:
        os.environ["BENCH_FAST_PATHS"] = "0"
    try:
        import django_test_migrations  # noqa: F401
    except ImportError:
        sys.exit('django-test-migrations is not installed: pip install -e ".[bench]"')

    ensure_database_url()
    root = options.keep or Path(tempfile.mkdtemp(prefix="migtools-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        generate(root, options.tests)
        print(
            f"project: {APPS} apps x {PER_APP} migrations = {APPS * PER_APP}; backfill "
            f"app0.{_name('app0', BACKFILL)} with {PER_APP - BACKFILL} later migrations; "
            f"{options.tests} test methods per framework; MIGTOOLS_FAST_PATHS = "
            f"{not options.django_paths}"
        )
        base = floor(root)
        both_total, both = run(root)
        ours_total, _ = run(root, "-k", "warmup or TestMigtools")
        theirs_total, _ = run(root, "-k", "warmup or TestDjangoTestMigrations")
        warmup_total, _ = run(root, "-k", "warmup")
        # --reuse-db: the second run finds the test database and the snapshot in place.
        run(root, "-k", "warmup or TestMigtools", "--reuse-db")
        reused_total, reused = run(root, "-k", "warmup or TestMigtools", "--reuse-db")
        run(root, "-k", "warmup", "--create-db")  # drops the kept databases at the end
    finally:
        if not options.keep:
            shutil.rmtree(root, ignore_errors=True)

    ours = _per_test(both, "TestMigtools")
    theirs = _per_test(both, "TestDjangoTestMigrations")
    near = _per_test(both, "TestMigtoolsNearHead")
    print("\nper test (one pytest run, setup+call+teardown, seconds):")
    print(
        f"  django-test-migrations MigratorTestCase: "
        f"{', '.join(f'{t:.3f}' for t in theirs)}  mean {statistics.mean(theirs):.3f}"
    )
    print(
        f"  migtools TestMigrations:                 "
        f"{', '.join(f'{t:.3f}' for t in ours)}  mean {statistics.mean(ours):.3f}"
    )
    warm = ours[1:] or ours
    how = (
        f"builds it forwards, {APPS * PER_APP - PER_APP + BACKFILL - 1} migrations"
        if options.irreversible
        else f"walks back {PER_APP - BACKFILL + 1} migrations"
    )
    print(
        f"    first test (builds the snapshot: {how}): {ours[0]:.3f}; "
        f"following: mean {statistics.mean(warm):.3f}"
    )
    if near:
        print(f"    same shape 1 migration behind app1's head, first test: {near[0]:.3f}")
    print(
        f"  ratio, mean per test (first test included): "
        f"{statistics.mean(theirs) / statistics.mean(ours):.1f}x"
    )
    print(f"  ratio, first test alone:                    {statistics.mean(theirs) / ours[0]:.1f}x")
    print(
        f"  ratio, following tests:                     "
        f"{statistics.mean(theirs) / statistics.mean(warm):.1f}x"
    )
    again = _per_test(reused, "TestMigtools")
    print(
        f"  migtools, second run with --reuse-db:  "
        f"{', '.join(f'{t:.3f}' for t in again)}  mean {statistics.mean(again):.3f}  "
        f"(ratio {statistics.mean(theirs) / statistics.mean(again):.1f}x)"
    )
    print("\nwhole process (seconds):")
    print(f"  floor, django.setup():                  {base:.2f}")
    print(f"  pytest, warm-up test only (test db):    {warmup_total:.2f}")
    print(
        f"  pytest, warm-up + migtools tests:       {ours_total:.2f}  "
        f"(+{ours_total - warmup_total:.2f})"
    )
    print(
        f"  pytest, warm-up + django-test-migrations: {theirs_total:.2f}  "
        f"(+{theirs_total - warmup_total:.2f})"
    )
    print(f"  pytest, everything:                     {both_total:.2f}")
    print(f"  pytest --reuse-db, migtools, 2nd run:   {reused_total:.2f}")
    print(
        "  (whole-process figures include creating the 1,000-migration test database; "
        "they are noisy on a busy machine)"
    )


if __name__ == "__main__":
    main()
