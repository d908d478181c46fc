"""``migtools.verifier.fast``: the verifier's in-place state updates, and Django's own path
with ``MIGTOOLS_FAST_PATHS = False``. Both ways give every migration the SQL Django's own
``Migration.apply`` collects for it and the same findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from migtools.verifier import fast
from migtools.verifier.run import Verifier
from migtools.verifier.select import full_plan, load
from tests.helpers import temp_migrations_module

HEAD = (
    "from django.db import migrations, models\nimport django.db.models.deletion\n\n\n"
    "class Migration(migrations.Migration):\n    dependencies = [{deps}]\n"
    "    operations = [\n{ops}    ]\n"
)
FK = "models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='alpha.{to}'{extra})"

# Each operation Django's path and the in-place path handle differently: CreateModel (plain,
# with a relation, a subclass), AddField (plain, with a default, NOT NULL, a foreign key, a
# many-to-many, on a model with a subclass), then operations that take Django's path in the
# middle of the chain and AddFields after them.
OPERATIONS: list[str] = [
    "migrations.CreateModel('Author', [('id', models.BigAutoField(primary_key=True)), "
    "('name', models.CharField(max_length=50))])",
    "migrations.CreateModel('Book', [('id', models.BigAutoField(primary_key=True)), "
    f"('author', {FK.format(to='author', extra='')})])",
    "migrations.AddField('author', 'bio', models.TextField(null=True))",
    "migrations.AddField('author', 'rank', models.IntegerField(default=0))",
    "migrations.AddField('book', 'title', models.CharField(max_length=20, default='x'))",
    "migrations.AddField('book', 'editor', "
    + FK.format(to="author", extra=", null=True, related_name='edited'")
    + ")",
    "migrations.AddField('book', 'readers', models.ManyToManyField(to='alpha.author', "
    "related_name='read'))",
    "migrations.CreateModel('Novel', [('book_ptr', models.OneToOneField(auto_created=True, "
    "on_delete=django.db.models.deletion.CASCADE, parent_link=True, primary_key=True, "
    "serialize=False, to='alpha.book'))], bases=('alpha.book',))",
    "migrations.AddField('book', 'pages', models.IntegerField(null=True))",
    "migrations.AlterField('author', 'name', models.CharField(max_length=80))",
    "migrations.RenameField('author', 'bio', 'biography')",
    "migrations.AddField('author', 'born', models.DateField(null=True))",
    "migrations.AddIndex('author', models.Index(fields=['name'], name='author_name_idx'))",
    "migrations.RemoveField('author', 'rank')",
    "migrations.AddField('novel', 'genre', models.CharField(max_length=10, null=True))",
    "migrations.DeleteModel('Novel')",
    "migrations.AddField('book', 'isbn', models.CharField(max_length=13, null=True))",
]


def _files() -> dict[str, str]:
    files: dict[str, str] = {}
    previous = None
    for number, operation in enumerate(OPERATIONS, start=1):
        name = f"{number:04d}_op"
        deps = f"('alpha', '{previous}')" if previous else ""
        files[f"{name}.py"] = HEAD.format(deps=deps, ops=f"        {operation},\n")
        previous = name
    return files


def _verify(fast_paths: bool) -> dict[str, tuple[list[str], list[Any]]]:
    # Nested inside temp_migrations_module's override (pytest-django's `settings` fixture
    # would be undone after it, restoring the temporary MIGRATION_MODULES for later tests).
    with override_settings(MIGTOOLS_FAST_PATHS=fast_paths):
        loader = load(connection)
        nodes = [n for n in full_plan(loader) if n[0] == "alpha"]
        verifier = Verifier(connection, loader, large_tables=frozenset(), with_tests=False)
        report = verifier.run(nodes)
    return {m.node[1]: (list(m.entries), list(m.findings)) for m in report.migrations}


def _djangos_own(name: str) -> list[str]:
    """The SQL Django collects for one migration, from the state its loader builds."""
    loader = load(connection)
    migration = loader.graph.nodes["alpha", name]
    state = loader.project_state(("alpha", name), at_end=False)
    with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
        migration.apply(state, editor, collect_sql=True)
    return list(editor.collected_sql)


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast-paths", "django-paths"])
def test_each_migration_gets_djangos_sql(tmp_path: Path, db: None, fast_paths: bool) -> None:
    with temp_migrations_module(tmp_path, {"alpha": _files()}):
        verified = _verify(fast_paths)
        assert len(verified) == len(OPERATIONS)
        for name, (entries, _findings) in verified.items():
            assert entries == _djangos_own(name), name


def test_both_ways_give_the_same_findings(tmp_path: Path, db: None) -> None:
    with temp_migrations_module(tmp_path, {"alpha": _files()}):
        ours = _verify(True)
        djangos = _verify(False)
    assert ours == djangos
    assert any(findings for _entries, findings in ours.values())  # the rules did run


def test_django_path_does_not_touch_the_rendered_registry_in_place(db: None, settings: Any) -> None:
    """With fast paths on, AddField on a rendered state adds the field to the model class the
    registry already holds; with them off, Django re-renders: a new class."""
    from django.db import migrations, models
    from django.db.migrations.state import ModelState, ProjectState

    def rendered() -> ProjectState:
        state = ProjectState()
        state.add_model(
            ModelState("alpha", "thing", [("id", models.BigAutoField(primary_key=True))])
        )
        state.apps  # noqa: B018 - render
        return state

    operation = migrations.AddField("thing", "size", models.IntegerField(null=True))
    for on in (True, False):
        settings.MIGTOOLS_FAST_PATHS = on
        state = rendered()
        model = state.apps.get_model("alpha", "thing")
        before = fast.step(state, operation, "alpha", before=True)
        after = state.apps.get_model("alpha", "thing")
        assert [f.name for f in after._meta.fields] == ["id", "size"]
        assert (after is model) is on
        assert (before is state) is on  # in place: the state serves as its own "before"
