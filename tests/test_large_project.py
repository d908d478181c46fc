"""A real-world-shaped history of 1,001 migrations in 25 apps (bench/large_project.py): every
shape of issue 21 (AlterUniqueTogether added then removed, HStoreField(default={}) after
HStoreExtension, JSONField defaults, a custom operation querying the catalog,
SeparateDatabaseAndState, irreversible RunPython, plain RunSQL, a squashed migration), taken
through what a new user does on it:

- ``verify_migrations`` online and offline, before adoption: the same JSON, no traceback, the
  uncollectable operations as ``sql-not-collected`` warnings and nothing else uncollected;
- ``migrations_lockfile --adopt``: the lockfile names Django's leaves;
- ``migrate`` from an empty database with plain Django, with migtools on Django's ENGINE and
  on migtools' own: the same schema (``pg_dump -s``);
- a ``TestMigrations`` whose ``migrate_from`` lies behind an irreversible RunPython.

Marked ``large`` (minutes, not seconds): ``make test-large`` runs it (a leg of ``.ci/run``);
the default run skips it. The long processes run side by side.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from bench.generate import Project
from bench.large_project import BACKFILL, IRREVERSIBLE, MIGRATION_TEST_APP, generate_large
from tests.pgserver import find_bindir
from tests.safety_helpers import create_database, query

pytestmark = pytest.mark.large

UNCOLLECTABLE = ("_drop_unique_name_code", "_record_attrs", "_drop_hand_made_index")

PROBE = """
import json
import django
django.setup()
from django.db.migrations.loader import MigrationLoader
loader = MigrationLoader(None, ignore_no_migrations=True)
print(json.dumps(sorted(loader.graph.leaf_nodes())))
"""

MIGRATION_TEST = '''
from migtools.testing import TestMigrations


class TestBackfillCode(TestMigrations):
    """{app}'s {backfill} with {irreversible} (a RunPython without reverse_code) after it."""

    app = "{app}"
    migrate_from = "{before}"
    migrate_to = "{backfill}"

    def setup_before_migration(self, apps):
        Record = apps.get_model("{app}", "Record")
        self.pks = [
            Record.objects.create(name="a", code="").pk,
            Record.objects.create(name="b", code="kept").pk,
        ]

    def test_backfill(self):
        Record = self.apps.get_model("{app}", "Record")
        assert [Record.objects.get(pk=pk).code for pk in self.pks] == ["none", "kept"]
        assert Record.objects.get(pk=self.pks[0]).name == "a"  # {irreversible} did not run

    def test_second_method(self):
        Record = self.apps.get_model("{app}", "Record")
        assert Record.objects.count() == 2
'''

CONFTEST = """
import json, os

DURATIONS = {}


def pytest_runtest_logreport(report):
    DURATIONS[report.nodeid] = DURATIONS.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    with open(os.environ["LARGE_DURATIONS"], "w") as handle:
        json.dump(DURATIONS, handle)
"""


@dataclass
class Run:
    out: str
    err: str
    returncode: int
    seconds: float


@dataclass
class Large:
    project: Project
    verify: dict[str, Run] = field(default_factory=dict)
    migrate: dict[str, Run] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)
    leaves: list[tuple[str, str]] = field(default_factory=list)
    adopt: Run | None = None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _side_by_side(
    project: Project, jobs: dict[str, tuple[list[str], dict[str, str]]]
) -> dict[str, Run]:
    """Run ``python ARGS`` in the project for each job at once; wait for all."""
    started: dict[str, tuple[subprocess.Popen[str], float]] = {}
    for name, (args, env) in jobs.items():
        full = {**project.env, "PYTHONWARNINGS": "ignore", **env}
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=project.root,
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[name] = (process, time.perf_counter())
    runs = {}
    for name, (process, start) in started.items():
        out, err = process.communicate(timeout=900)
        runs[name] = Run(out, err, process.returncode, time.perf_counter() - start)
    return runs


def _schema(db: str) -> str:
    """``pg_dump -s`` of ``db``, without comments and the psql meta-commands of new dumps."""
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{db}"
    pg_dump = (find_bindir() / "pg_ctl").resolve().parent / "pg_dump"
    out = subprocess.run(
        [str(pg_dump), "-s", "--no-owner", "--no-privileges", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "\n".join(
        line
        for line in out.splitlines()
        if line.strip() and not line.startswith(("--", "\\restrict", "\\unrestrict"))
    )


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Large]:
    project = generate_large(
        tmp_path_factory.mktemp("large") / "proj", database_url=os.environ["DATABASE_URL"]
    )
    result = Large(project)
    manage = [str(project.manage_py)]
    offline_url = f"postgres://u:p@127.0.0.1:{_closed_port()}/x"
    verify_db = create_database()
    # Before adoption: what a new user runs first, online and offline at once.
    first = _side_by_side(
        project,
        {
            "online": ([*manage, "verify_migrations", "--format", "json"], {"LARGE_DB": verify_db}),
            "offline": (
                [*manage, "verify_migrations", "--format", "json"],
                {"DATABASE_URL": offline_url},
            ),
            "leaves": (["-c", PROBE], {}),
        },
    )
    result.verify = {name: first[name] for name in ("online", "offline")}
    result.leaves = [tuple(leaf) for leaf in json.loads(first["leaves"].out)]
    adopt = _side_by_side(project, {"adopt": ([*manage, "migrations_lockfile", "--adopt"], {})})
    result.adopt = adopt["adopt"]
    # The test database of the migration test is the one migrate builds on migtools' ENGINE.
    result.databases = {
        "plain": create_database(),
        "django": create_database(),
        "migtools": create_database(),
    }
    engines = {
        "plain": {"LARGE_PLAIN": "1"},
        "django": {},
        "migtools": {"LARGE_MIGTOOLS_ENGINE": "1"},
    }
    result.migrate = _side_by_side(
        project,
        {
            name: ([*manage, "migrate", "-v", "1"], {"LARGE_DB": db, **engines[name]})
            for name, db in result.databases.items()
        },
    )
    yield result


def test_generated_history_has_every_shape(large: Large) -> None:
    files = sorted(large.project.root.glob("app*/migrations/0*.py"))
    assert len(files) >= 1000
    names = {path.stem for path in files}
    for suffix in (
        "_record_unique_name_code",
        *UNCOLLECTABLE,
        "_record_data",
        "_record_legacy",
        "_normalise_names",
        "_name_index",
        "_hand_made_index",
    ):
        assert any(name.endswith(suffix) for name in names), suffix
    assert any("squashed" in name for name in names)
    assert len(large.project.apps) == 25


def test_verify_online_and_offline_agree(large: Large) -> None:
    online, offline = large.verify["online"], large.verify["offline"]
    for run in (online, offline):
        assert "Traceback" not in run.err, run.err[-3000:]
        assert run.returncode == 1, run.err[-3000:]  # the history breaks rules: findings
    assert "verified offline" in offline.err
    assert "verified offline" not in online.err
    report = json.loads(online.out)
    assert report == json.loads(offline.out)
    assert report["migrations"] >= 995  # 1,001 files; the squash stands for five
    uncollected = {
        (f["app_label"], f["migration"])
        for f in report["findings"]
        if f["rule"] == "sql-not-collected"
    }
    expected = {
        (path.parent.parent.name, path.stem)
        for path in large.project.root.glob("app*/migrations/0*.py")
        if path.stem.endswith(UNCOLLECTABLE)
    }
    assert uncollected == expected
    levels = {f["level"] for f in report["findings"] if f["rule"] == "sql-not-collected"}
    assert levels == {"warning"}


def test_lockfile_names_djangos_leaves(large: Large) -> None:
    assert large.adopt is not None and large.adopt.returncode == 0, large.adopt
    entries = dict(
        line.split(": ", 1)
        for line in large.project.lockfile.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    leaves = {app: name for app, name in large.leaves if app.startswith("app")}
    assert entries == leaves
    assert len(leaves) == 25
    baseline = (large.project.root / "migrations_baseline.txt").read_text()
    assert all(f"{app}: {name}" in baseline for app, name in leaves.items())


@pytest.mark.parametrize("engine", ["django", "migtools"])
def test_migrate_from_empty_equals_plain_django(large: Large, engine: str) -> None:
    plain, ours = large.migrate["plain"], large.migrate[engine]
    assert plain.returncode == 0, plain.err[-3000:]
    assert ours.returncode == 0, ours.out[-2000:] + ours.err[-3000:]
    assert "Traceback" not in ours.err
    assert _schema(large.databases[engine]) == _schema(large.databases["plain"])
    sql = "SELECT app, name FROM django_migrations ORDER BY app, name"
    assert query(large.databases[engine], sql) == query(large.databases["plain"], sql)


def test_migration_test_behind_an_irreversible_migration(large: Large) -> None:
    """The database migrate built on migtools' ENGINE is the test database (--reuse-db); the
    snapshot at migrate_from is built forwards (the walk back would meet 0010's RunPython)."""
    assert large.migrate["migtools"].returncode == 0
    root = large.project.root
    app = f"app{MIGRATION_TEST_APP:02d}"
    names = sorted(path.stem for path in (root / app / "migrations").glob("0*.py"))
    backfill = next(name for name in names if name.startswith(f"{BACKFILL:04d}_"))
    irreversible = next(name for name in names if name.startswith(f"{IRREVERSIBLE:04d}_"))
    before = names[names.index(backfill) - 1]
    (root / "test_migration.py").write_text(
        textwrap.dedent(MIGRATION_TEST).format(
            app=app, before=before, backfill=backfill, irreversible=irreversible
        )
    )
    (root / "conftest.py").write_text(CONFTEST)
    (root / "pytest.ini").write_text(
        "[pytest]\nDJANGO_SETTINGS_MODULE = benchsite.settings\n"
        "addopts = -p no:cacheprovider\ndjango_find_project = false\n"
    )
    durations = root / "durations.json"
    env = {
        **large.project.env,
        "LARGE_TEST_DB": large.databases["migtools"],
        "LARGE_MIGTOOLS_ENGINE": "1",
        "LARGE_DURATIONS": str(durations),
    }
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--reuse-db",
            "-p",
            "no:randomly",
            "test_migration.py",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout
    assert re.search(r"migration snapshots built: 1\b", proc.stdout + proc.stderr), proc.stdout
    seconds = json.loads(durations.read_text())
    first, second = sorted(seconds.values(), reverse=True)[:2]
    # Figures, not a timed assertion: the first test builds the snapshot forwards (one replay).
    print(
        f"\nmigration test: first {first:.2f} s, second {second:.2f} s; migrate from empty: "
        + ", ".join(f"{k} {v.seconds:.1f} s" for k, v in large.migrate.items())
    )
