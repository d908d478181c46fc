"""Operations whose SQL cannot be collected in one pass or offline (issue 21, item 1): the
verifier (online and offline) and ``migrate`` from an empty database never crash on them; each
is a ``sql-not-collected`` warning, the state still advances (later migrations judged right) and
``migrate`` applies them, giving the schema plain Django gives.

Each kind is built from Django's own operations: AlterUniqueTogether/AlterIndexTogether
removing a constraint (a live-catalog lookup that finds nothing on an empty database), an
HStoreField default (the client cannot quote a dict before the hstore extension exists), a
JSONField default, a SeparateDatabaseAndState, custom operations that query the database.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.miniproject import MiniProject, Result, make_project
from tests.pgserver import find_bindir
from tests.safety_helpers import create_database, query

SETTINGS = """\
INSTALLED_APPS.insert(1, "django.contrib.postgres")
DATABASES["default"]["NAME"] = os.environ.get("TEST_DB_NAME", DATABASES["default"]["NAME"])
if os.environ.get("TEST_PLAIN"):  # plain Django: no migtools at all
    INSTALLED_APPS.remove("migtools")
elif os.environ.get("TEST_MIGTOOLS_ENGINE"):
    DATABASES["default"]["ENGINE"] = "migtools.db.backends.postgresql"
MIGTOOLS_APPS = ["shop"]
SILENCED_SYSTEM_CHECKS = ["migtools.W001"]
"""

HEAD = """\
from django.contrib.postgres.fields import HStoreField
from django.contrib.postgres.operations import HStoreExtension
from django.db import migrations, models
from django.db.migrations.operations.base import Operation

from migtools import CheckedMigration
from migtools.operations import SafeRunSQL


class CountRows(Operation):
    \"\"\"A custom operation that queries the table (fails on an empty database).\"\"\"

    reduces_to_sql = True
    reversible = True

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM shop_item")
            (count,) = cursor.fetchone()
        schema_editor.execute(f"COMMENT ON TABLE shop_item IS 'rows: {count}'")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass

    def describe(self):
        return "Count the rows of shop_item"


class DropIndexIfPresent(Operation):
    \"\"\"A custom operation that looks the catalog up and raises when it finds nothing.\"\"\"

    reduces_to_sql = True
    reversible = True

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, "shop_item")
        if "shop_item_made_by_hand" not in found:
            raise ValueError("index shop_item_made_by_hand not found")
        schema_editor.execute("DROP INDEX shop_item_made_by_hand")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass

    def describe(self):
        return "Drop the index made by hand"
"""

INITIAL = """\
HStoreExtension(),
migrations.CreateModel(
    name="Item",
    fields=[
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("code", models.CharField(max_length=20)),
    ],
    options={"unique_together": {("name", "code")}, "index_together": {("code", "name")}},
),
"""

# kind -> operations of 0002 (after 0001_initial); the uncollectable one comes first.
KINDS = {
    "unique_together": 'migrations.AlterUniqueTogether("item", set()),',
    "index_together": 'migrations.AlterIndexTogether("item", set()),',
    "hstore_default": 'migrations.AddField("item", "attrs", HStoreField(default={})),',
    "json_default": 'migrations.AddField("item", "data", models.JSONField(default={"a": [1]})),',
    "separate": """\
migrations.SeparateDatabaseAndState(
    database_operations=[
        migrations.RunPython(forbidden, migrations.RunPython.noop),
        migrations.AlterUniqueTogether("item", set()),
    ],
    state_operations=[
        migrations.AlterUniqueTogether("item", set()),
        migrations.AddConstraint(
            "item", models.UniqueConstraint(fields=["name", "code"], name="item_name_code")
        ),
    ],
),
""",
    "custom_query": "CountRows(),",
    "custom_catalog": "DropIndexIfPresent(),",
}

# Kinds whose SQL can be collected after all (JSON values are quoted by psycopg's own Jsonb
# dumper, with no type registered on the connection): the rule their SQL breaks.
COLLECTED = {"json_default": "not-null-without-db-default"}

# The code a RunPython inside a SeparateDatabaseAndState runs: only when applied, never while
# the SQL is collected (it would write to the database twice).
FORBIDDEN = """

def forbidden(apps, schema_editor):
    if schema_editor.collect_sql:
        raise AssertionError("RunPython ran while collecting")
"""

# Runs after the uncollectable operation: it must be judged against the right state (the
# field it alters exists only in 0001's state) and its SQL collected (a rule on it fires).
LATER = 'migrations.AlterField("item", "name", models.CharField(max_length=20, unique=True)),'


def _write(project: MiniProject, kind: str) -> None:
    mdir = project.root / "shop" / "migrations"
    mdir.mkdir()
    (mdir / "__init__.py").write_text("")
    migrations = [
        ("0001_initial", INITIAL, ""),
        ("0002_uncollectable", KINDS[kind], FORBIDDEN if kind == "separate" else ""),
        ("0003_later", LATER, ""),
    ]
    if kind == "custom_catalog":  # the index the operation drops, made by hand
        migrations[0] = (
            "0001_initial",
            INITIAL + 'SafeRunSQL("CREATE INDEX shop_item_made_by_hand ON shop_item (code)",'
            " migrations.RunSQL.noop),",
            "",
        )
    previous = None
    for name, operations, extra in migrations:
        ops = textwrap.indent(textwrap.dedent(operations).strip(), " " * 8)
        deps = [("shop", previous)] if previous else []
        (mdir / f"{name}.py").write_text(
            f"{HEAD}{extra}\n\nclass Migration(CheckedMigration):\n"
            "    is_post_deployment = False\n"
            f"    dependencies = {deps!r}\n"
            f"    operations = [\n{ops}\n    ]\n"
        )
        previous = name
    (project.root / "shop" / "models.py").write_text("")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(project: MiniProject, *args: str, **env: str) -> Result:
    full = {**os.environ, "PYTHONPATH": str(project.root), "PYTHONWARNINGS": "ignore", **env}
    full.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project.root,
        env=full,
        capture_output=True,
        text=True,
    )
    return Result(proc.stdout, proc.stderr, proc.returncode)


def _schema(db: str) -> str:
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{db}"
    out = subprocess.run(
        [
            str((find_bindir() / "pg_ctl").resolve().parent / "pg_dump"),
            "-s",
            "--no-owner",
            "--no-privileges",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [
        line
        for line in out.splitlines()
        if not line.startswith(("--", "\\restrict", "\\unrestrict"))
        and "django_migrations" not in line
    ]
    return "\n".join(lines)


@pytest.fixture(scope="module", params=sorted(KINDS))
def kind_project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    kind = str(request.param)
    project = make_project(
        tmp_path_factory.mktemp(f"uncollectable_{kind}") / "proj", extra_settings=SETTINGS
    )
    _write(project, kind)
    return kind, project


def _warnings(report: dict[str, object]) -> list[dict[str, object]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [f for f in findings if f["rule"] == "sql-not-collected"]


@pytest.mark.parametrize("engine", ["django", "migtools"])
def test_verify_online_and_offline(kind_project, engine: str) -> None:  # type: ignore[no-untyped-def]
    kind, project = kind_project
    env = {"TEST_DB_NAME": create_database()}
    if engine == "migtools":
        env["TEST_MIGTOOLS_ENGINE"] = "1"
    online = _run(project, "verify_migrations", "shop", "--format", "json", **env)
    assert "Traceback" not in online.err, online.err
    offline_env = {
        **env,
        "DATABASE_URL": f"postgres://u:p@127.0.0.1:{_closed_port()}/x",
    }
    offline = _run(project, "verify_migrations", "shop", "--format", "json", **offline_env)
    assert "Traceback" not in offline.err, offline.err
    assert "verified offline" in offline.err
    for result in (online, offline):
        report = json.loads(result.out)
        warned = _warnings(report)
        if kind in COLLECTED:
            # Quoted client-side online and offline alike: collected, and judged on its SQL.
            assert warned == [], result.out
            rules = {str(f["rule"]) for f in report["findings"]}  # type: ignore[attr-defined]
            assert COLLECTED[kind] in rules, result.out
        else:
            assert [(w["migration"], w["level"]) for w in warned] == [
                ("0002_uncollectable", "warning")
            ], result.out
            assert "judged by the operation alone" in str(warned[0]["message"])
        assert "RunPython ran while collecting" not in result.out
        # The migration after it is judged on the right state: its SQL was collected (the
        # UNIQUE constraint on an existing table is an error finding).
        later = {
            str(f["rule"])
            for f in report["findings"]  # type: ignore[attr-defined]
            if f["migration"] == "0003_later"
        }
        assert "unique-constraint-on-existing-table" in later, result.out
    if kind not in COLLECTED:  # sqlmigrate prints the migration, saying what it could not
        for run_env in (env, offline_env):
            sql = _run(project, "sqlmigrate", "shop", "0002_uncollectable", **run_env)
            assert "Traceback" not in sql.err, sql.err
            assert "-- migtools: SQL not collected (" in sql.out, sql.out + sql.err
    same = [
        [(w["migration"], w["operation_index"], w["level"]) for w in _warnings(json.loads(r.out))]
        for r in (online, offline)
    ]
    assert same[0] == same[1]


@pytest.mark.parametrize("engine", ["django", "migtools"])
def test_migrate_from_empty_applies(kind_project, engine: str) -> None:  # type: ignore[no-untyped-def]
    kind, project = kind_project
    ours, plain = create_database(), create_database()
    env = {"TEST_DB_NAME": ours}
    if engine == "migtools":
        env["TEST_MIGTOOLS_ENGINE"] = "1"
    # 0003's unique constraint is on a table the plan creates: nothing refuses.
    result = _run(project, "migrate", "-v", "1", **env)
    assert result.returncode == 0, result.out + result.err
    assert "Traceback" not in result.err, result.err
    assert ("[sql-not-collected]" in result.err) is (kind not in COLLECTED)
    assert "Applying shop.0003_later... OK" in result.out
    django = _run(project, "migrate", "-v", "0", TEST_DB_NAME=plain, TEST_PLAIN="1")
    assert django.returncode == 0, django.err
    assert _schema(ours) == _schema(plain)
    applied = query(ours, "SELECT count(*) FROM django_migrations WHERE app = 'shop'")
    assert applied == [(3,)]


# -- the engine on a live connection inside a transaction ------------------------------------


def _migration(*operations: object) -> object:
    from django.db import migrations

    migration = migrations.Migration("0002_live", "alpha")
    migration.operations = list(operations)
    return migration


def _state_with_item() -> object:
    from django.db import migrations, models
    from django.db.migrations.state import ProjectState

    state = ProjectState()
    migrations.CreateModel(
        "Item",
        [
            ("id", models.BigAutoField(primary_key=True)),
            ("name", models.CharField(max_length=20)),
            ("code", models.CharField(max_length=20)),
        ],
        options={"unique_together": {("name", "code")}},
    ).state_forwards("alpha", state)
    return state


@pytest.mark.django_db
def test_failed_query_leaves_no_aborted_transaction() -> None:
    from django.db import connection, migrations, models

    from migtools.rules.engine import Engine

    namespace: dict[str, object] = {}
    exec(HEAD.split("\n\n\nclass DropIndexIfPresent")[0], namespace)
    count_rows = namespace["CountRows"]
    assert isinstance(count_rows, type)
    migration = _migration(
        count_rows(),  # its query fails: relation "alpha_item" ... does not exist
        migrations.AddField("item", "qty", models.IntegerField(null=True)),
    )
    assert connection.in_atomic_block  # the test's transaction: a failed query would abort it
    judged = Engine(connection).judge(migration, _state_with_item())  # type: ignore[arg-type]
    assert [f.rule_id for f in judged.findings if f.rule_id == "sql-not-collected"] == [
        "sql-not-collected"
    ]
    # The operation after it was collected, and the connection still answers.
    assert any('ADD COLUMN "qty"' in e for e in judged.entries), judged.entries
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db
def test_backwards_lookup_on_empty_catalog_is_a_warning() -> None:
    from django.db import connection, migrations

    from migtools.rules.engine import Engine

    # Unapplying the addition of unique_together removes a constraint the catalog lacks.
    migration = _migration(migrations.AlterUniqueTogether("item", {("code", "name")}))
    judged = Engine(connection).judge_backwards(migration, _state_with_item())  # type: ignore[arg-type]
    assert [(f.rule_id, f.level.value) for f in judged.findings] == [
        ("sql-not-collected", "warning")
    ]
    assert judged.findings[0].message.startswith("Unapplying: ")
