"""Generate a real-world-shaped Django project: 1,000+ migrations in 25 apps, written the way a
project's history looks before migtools comes in (plain ``migrations.Migration`` classes), with
each shape that breaks naive SQL collection or a walk back:

- ``AlterUniqueTogether`` added, then removed (Django looks the old constraint up in the catalog);
- ``HStoreField(default={})`` after ``HStoreExtension`` (a dict the client cannot quote before the
  extension exists);
- ``JSONField`` defaults (a dict and a list);
- a custom database operation whose ``database_forwards`` queries the catalog (it drops an index
  made by hand by an earlier ``RunSQL``, and refuses when the index is not there);
- ``SeparateDatabaseAndState`` (a column added by hand-written SQL, the field by the state);
- irreversible ``RunPython`` data migrations (no reverse_code) in every app;
- plain ``RunSQL``, with and without reverse_sql;
- a squashed migration (``replaces``), its replaced files still on disk;
- cross-app ForeignKeys (every fifth app points at the first).

Used by ``tests/test_large_project.py`` (CI) and runnable as a script::

    python bench/large_project.py /tmp/large [--apps 25] [--migrations 40]

The migration test's target: app ``MIGRATION_TEST_APP``'s ``BACKFILL`` (a reversible RunPython)
with an irreversible RunPython right after it, so a walk back to the migration before it is
impossible. ``models.py`` matches the final state (``makemigrations`` finds nothing to do).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import MANAGE_PY, SETTINGS_PACKAGE, Project, _write, project_env

MODEL = "Record"
HSTORE_APP = 0  # holds HStoreExtension (0002) and the custom operation's module
SQUASHED_APP = -1  # the last app: 0001..0005 squashed
SQUASH_END = 5
MIGRATION_TEST_APP = 2
BACKFILL = 9  # a reversible data migration in every app; irreversible RunPython at 10
MIN_MIGRATIONS = 14

# Migration numbers of the shapes (below 2 and above 13 are filler AddFields).
UNIQUE_ADD, UNIQUE_REMOVE = 3, 4
DEFAULTS = 5  # HStoreField(default={}) or JSONField(default=...)
HAND_INDEX, CUSTOM_OP = 6, 7
SEPARATE = 8
IRREVERSIBLE = 10
RUNSQL_NO_REVERSE, RUNSQL_REVERSE = 12, 13

OPERATIONS_MODULE = '''\
"""Custom migration operations of this project."""

from django.db.migrations.operations.base import Operation


class DropHandMadeIndex(Operation):
    """Drops an index created by hand (RunSQL): looks it up in the catalog first."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, table, index):
        self.table = table
        self.index = index

    def deconstruct(self):
        return (type(self).__qualname__, [self.table, self.index], {})

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, self.table)
        if self.index not in found:
            raise ValueError(f"index {self.index} not found on {self.table}")
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(self.index)}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        schema_editor.execute(
            f"CREATE INDEX {schema_editor.quote_name(self.index)} "
            f"ON {schema_editor.quote_name(self.table)} (code)"
        )

    def describe(self):
        return f"Drop the hand-made index {self.index}"
'''

FUNCTIONS = """

def backfill_code(apps, schema_editor):
    Record = apps.get_model("{label}", "Record")
    Record.objects.using(schema_editor.connection.alias).filter(code="").update(code="none")


def normalise_names(apps, schema_editor):
    from django.db.models.functions import Upper

    Record = apps.get_model("{label}", "Record")
    Record.objects.using(schema_editor.connection.alias).update(name=Upper("name"))
"""


@dataclass(frozen=True)
class Step:
    """One migration: its name, operations (source), extra imports/dependencies, and the
    field it adds to ``models.py`` (name, declaration) if any."""

    name: str
    operations: str
    imports: tuple[str, ...] = ()
    dependencies: tuple[tuple[str, str], ...] = ()
    field: tuple[str, str] | None = None
    functions: bool = False


def label_of(index: int) -> str:
    return f"app{index:02d}"


def _filler(number: int) -> tuple[str, str]:
    name = f"f{number:04d}"
    kinds = (
        "models.IntegerField(null=True)",
        'models.CharField(blank=True, default="", max_length=50)',
        "models.BooleanField(default=False)",
    )
    return name, kinds[number % len(kinds)]


def _add_field(name: str, decl: str) -> str:
    return f'migrations.AddField(model_name="record", name="{name}", field={decl}),'


def _has_fk(index: int) -> bool:
    return index > 0 and index % 5 == 0


def _steps(index: int, apps: int, migrations: int) -> list[Step]:
    label = label_of(index)
    squashed = index == apps + SQUASHED_APP
    hstore = label_of(HSTORE_APP)
    steps: list[Step] = []
    fields = [
        '("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, '
        'verbose_name="ID")),',
        '("name", models.CharField(max_length=100)),',
        '("code", models.CharField(blank=True, default="", max_length=20)),',
    ]
    deps: tuple[tuple[str, str], ...] = ()
    if _has_fk(index):
        fields.append(
            '("owner", models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, '
            f'related_name="{label}_records", to="{hstore}.record")),'
        )
        deps = ((hstore, "0001_initial"),)
    create = (
        f'migrations.CreateModel(\n    name="{MODEL}",\n    fields=[\n'
        + textwrap.indent("\n".join(fields), " " * 8)
        + "\n    ],\n),"
    )
    steps.append(Step("0001_initial", create, ("import django.db.models.deletion",), deps))
    table = f"{label}_record"
    for number in range(2, migrations + 1):
        shape: Step | None = None
        plain = squashed and number <= SQUASH_END
        if index == HSTORE_APP and number == 2:
            shape = Step(
                "0002_hstore",
                "HStoreExtension(),",
                ("from django.contrib.postgres.operations import HStoreExtension",),
            )
        elif plain:
            shape = None
        elif number == UNIQUE_ADD and index % 3 == 0:
            shape = Step(
                f"{number:04d}_record_unique_name_code",
                'migrations.AlterUniqueTogether(name="record", '
                'unique_together={("name", "code")}),',
            )
        elif number == UNIQUE_REMOVE and index % 3 == 0:
            shape = Step(
                f"{number:04d}_record_drop_unique_name_code",
                'migrations.AlterUniqueTogether(name="record", unique_together=set()),',
            )
        elif number == DEFAULTS and index % 4 == 1:
            decl = "django.contrib.postgres.fields.hstore.HStoreField(default={})"
            shape = Step(
                f"{number:04d}_record_attrs",
                _add_field("attrs", decl),
                ("import django.contrib.postgres.fields.hstore",),
                ((hstore, "0002_hstore"),) if index != HSTORE_APP else (),
                ("attrs", "HStoreField(default={})"),
            )
        elif number == DEFAULTS and index % 4 == 2:
            decl = 'models.JSONField(default={"tags": [], "level": 1})'
            shape = Step(
                f"{number:04d}_record_data",
                _add_field("data", decl)
                + "\n"
                + _add_field("items", "models.JSONField(default=list)"),
                field=("data", decl),
            )
        elif number == HAND_INDEX and index % 5 == 3:
            shape = Step(
                f"{number:04d}_hand_made_index",
                f'migrations.RunSQL("CREATE INDEX {table}_code_hand ON {table} (code)", '
                f'reverse_sql="DROP INDEX {table}_code_hand"),',
            )
        elif number == CUSTOM_OP and index % 5 == 3:
            shape = Step(
                f"{number:04d}_drop_hand_made_index",
                f'DropHandMadeIndex("{table}", "{table}_code_hand"),',
                (f"from {hstore}.operations import DropHandMadeIndex",),
            )
        elif number == SEPARATE and index % 5 == 4:
            shape = Step(
                f"{number:04d}_record_legacy",
                "migrations.SeparateDatabaseAndState(\n"
                "    database_operations=[\n"
                f'        migrations.RunSQL("ALTER TABLE {table} ADD COLUMN legacy integer NULL",'
                f' reverse_sql="ALTER TABLE {table} DROP COLUMN legacy"),\n'
                "    ],\n"
                "    state_operations=[\n"
                "        " + _add_field("legacy", "models.IntegerField(null=True)") + "\n"
                "    ],\n"
                "),",
                field=("legacy", "models.IntegerField(null=True)"),
            )
        elif number == BACKFILL:
            shape = Step(
                f"{number:04d}_backfill_code",
                "migrations.RunPython(backfill_code, migrations.RunPython.noop),",
                functions=True,
            )
        elif number == IRREVERSIBLE:
            shape = Step(
                f"{number:04d}_normalise_names",
                "migrations.RunPython(normalise_names),",
                functions=True,
            )
        elif number == RUNSQL_NO_REVERSE and index % 3 == 1:
            shape = Step(
                f"{number:04d}_name_index",
                f'migrations.RunSQL("CREATE INDEX {table}_name_sql ON {table} (name)"),',
            )
        elif number == RUNSQL_REVERSE:
            shape = Step(
                f"{number:04d}_table_comment",
                f"migrations.RunSQL(\"COMMENT ON TABLE {table} IS 'records'\", "
                f'reverse_sql="COMMENT ON TABLE {table} IS NULL"),',
            )
        if shape is None:
            name, decl = _filler(number)
            shape = Step(f"{number:04d}_record_{name}", _add_field(name, decl), field=(name, decl))
        steps.append(shape)
    return steps


def _migration_source(label: str, step: Step, previous: str | None) -> str:
    imports = sorted({"from django.db import migrations, models", *step.imports})
    deps = list(step.dependencies) + ([(label, previous)] if previous else [])
    functions = FUNCTIONS.format(label=label) if step.functions else ""
    ops = textwrap.indent(step.operations, " " * 8)
    initial = "    initial = True\n" if previous is None else ""
    return (
        "# Generated by Django 5.2 on 2024-01-01 12:00\n\n"
        + "\n".join(imports)
        + f"\n{functions}\n\nclass Migration(migrations.Migration):\n{initial}"
        + f"    dependencies = {deps!r}\n\n    operations = [\n{ops}\n    ]\n"
    )


def _squash_source(label: str, steps: list[Step]) -> str:
    """``squashmigrations`` output for 0001..SQUASH_END (all filler AddFields after 0001)."""
    replaced = [(label, step.name) for step in steps[:SQUASH_END]]
    create = steps[0].operations
    extra = "".join(
        f"\n        {_add_field(*step.field)}" for step in steps[1:SQUASH_END] if step.field
    )
    return (
        "# Generated by Django 5.2 on 2024-06-01 12:00\n\n"
        "import django.db.models.deletion\nfrom django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    replaces = {replaced!r}\n\n    initial = True\n\n"
        f"    dependencies = {list(steps[0].dependencies)!r}\n\n"
        "    operations = [\n" + textwrap.indent(create, " " * 8) + extra + "\n    ]\n"
    )


def _models_source(index: int, steps: list[Step]) -> str:
    lines = [
        "from django.contrib.postgres.fields import HStoreField",
        "from django.db import models",
        "",
        "",
        f"class {MODEL}(models.Model):",
        "    name = models.CharField(max_length=100)",
        '    code = models.CharField(blank=True, default="", max_length=20)',
    ]
    if _has_fk(index):
        lines.append(
            f'    owner = models.ForeignKey("{label_of(HSTORE_APP)}.Record", null=True, '
            f'on_delete=models.CASCADE, related_name="{label_of(index)}_records")'
        )
    for step in steps:
        if step.field is not None:
            lines.append(f"    {step.field[0]} = {step.field[1]}")
        if step.name.endswith("_record_data"):
            lines.append("    items = models.JSONField(default=list)")
    return "\n".join(lines) + "\n"


SETTINGS = '''\
"""Settings of a generated real-world-shaped project (bench/large_project.py)."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "generated-large-project-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "migtools",
    "django.contrib.postgres",
    "django.contrib.contenttypes",
    "django.contrib.auth",
{apps}
]
if os.environ.get("LARGE_PLAIN"):  # plain Django: migtools not installed
    INSTALLED_APPS.remove("migtools")

DATABASES = {{"default": dj_database_url.parse(os.environ["DATABASE_URL"])}}
if os.environ.get("LARGE_DB"):
    DATABASES["default"]["NAME"] = os.environ["LARGE_DB"]
if os.environ.get("LARGE_TEST_DB"):
    # The test database is one `migrate` built already (reused with --reuse-db), not a clone
    # of a template.
    DATABASES["default"]["TEST"] = {{"NAME": os.environ["LARGE_TEST_DB"]}}
    MIGTOOLS_TEST_TEMPLATES = False
if os.environ.get("LARGE_MIGTOOLS_ENGINE"):
    DATABASES["default"]["ENGINE"] = "migtools.db.backends.postgresql"

MIGTOOLS_LOCKFILE_PATH = BASE_DIR / "migrations_lockfile.txt"
# Mutable defaults, as the history has them (HStoreField and JSONField with dict defaults).
SILENCED_SYSTEM_CHECKS = ["fields.E010", "postgres.E003", "migtools.W001"]
'''


def generate_large(
    root: Path, apps: int = 25, migrations: int = 40, database_url: str | None = None
) -> Project:
    """Write the project into ``root`` (empty or absent); ``apps`` x ``migrations`` migration
    files plus one squashed migration."""
    if apps < 3 or migrations < MIN_MIGRATIONS:
        raise ValueError(f"need at least 3 apps and {MIN_MIGRATIONS} migrations per app")
    root = Path(root).resolve()
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    labels = [label_of(i) for i in range(apps)]
    leaves: dict[str, str] = {}
    for index, label in enumerate(labels):
        app_dir = root / label
        _write(app_dir / "__init__.py", "")
        _write(app_dir / "migrations" / "__init__.py", "")
        if index == HSTORE_APP:
            _write(app_dir / "operations.py", OPERATIONS_MODULE)
        steps = _steps(index, apps, migrations)
        previous: str | None = None
        for step in steps:
            _write(
                app_dir / "migrations" / f"{step.name}.py", _migration_source(label, step, previous)
            )
            previous = step.name
        if index == apps + SQUASHED_APP:
            name = f"0001_squashed_{steps[SQUASH_END - 1].name}"
            _write(app_dir / "migrations" / f"{name}.py", _squash_source(label, steps))
        leaves[label] = previous or ""
        _write(app_dir / "models.py", _models_source(index, steps))
    body = "\n".join(f'    "{label}",' for label in labels)
    _write(root / SETTINGS_PACKAGE / "__init__.py", "")
    _write(root / SETTINGS_PACKAGE / "settings.py", SETTINGS.format(apps=body))
    manage_py = root / "manage.py"
    _write(manage_py, MANAGE_PY)
    manage_py.chmod(0o755)
    return Project(
        root=root,
        manage_py=manage_py,
        settings_module=f"{SETTINGS_PACKAGE}.settings",
        apps=labels,
        migrations_per_app=migrations,
        lockfile=root / "migrations_lockfile.txt",
        env=project_env(root, database_url),
        leaves=leaves,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="directory to write (empty or absent)")
    parser.add_argument("--apps", type=int, default=25)
    parser.add_argument("--migrations", type=int, default=40, help="migrations per app")
    args = parser.parse_args(argv)
    project = generate_large(args.root, args.apps, args.migrations)
    print(
        f"Wrote {project.root}: {project.migration_count + 1} migrations in {len(project.apps)} apps."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
