"""``ENGINE: "migtools.db.backends.postgis"``: GeoDjango's PostGIS backend with migtools'
schema editor, against a real PostgreSQL with the PostGIS extension.

Needs the GDAL/GEOS libraries (GeoDjango imports them) and the PostGIS extension on the
server; where either is missing the tests skip and say which (apt: postgresql-15-postgis-3,
which brings libgdal and libgeos)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.miniproject import MiniProject
from tests.safety_helpers import query, safe_project

try:
    from migtools.db.backends.postgis import base as postgis_base
except Exception as exc:  # ImproperlyConfigured / OSError: no GDAL or GEOS library
    postgis_base = None
    GIS_MISSING: str | None = f"GeoDjango cannot load: {exc}"
else:
    GIS_MISSING = None

pytestmark = pytest.mark.skipif(GIS_MISSING is not None, reason=GIS_MISSING or "")

HEADER = """\
import django.contrib.gis.db.models.fields
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    atomic = {atomic}
    dependencies = {deps!r}
    operations = [
        {ops},
    ]
"""

PLACE = """\
migrations.CreateModel(
            name="Place",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("name", models.CharField(max_length=20)),
                ("location", django.contrib.gis.db.models.fields.PointField(srid=4326)),
            ],
        )"""

ITEM = """\
migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("name", models.CharField(max_length=20)),
            ],
        ),
        migrations.AddField("item", "note", models.TextField(null=True)),
        migrations.AddIndex("item", models.Index(fields=["name"], name="item_name_idx"))"""

ENGINE = """\
INSTALLED_APPS += ["django.contrib.gis"]
DATABASES["default"]["ENGINE"] = os.environ.get("MT_ENGINE", "migtools.db.backends.postgis")
"""


def _postgis_on_server(db: str) -> bool:
    return bool(query(db, "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"))


def _project(tmp_path: Path) -> tuple[MiniProject, str]:
    proj, db = safe_project(tmp_path / "p", extra=ENGINE)
    if not _postgis_on_server(db):
        pytest.skip("the PostgreSQL server has no PostGIS extension (postgresql-15-postgis-3)")
    return proj, db


def _write(
    proj: MiniProject, name: str, deps: list[tuple[str, str]], ops: str, *, atomic: bool = True
) -> None:
    proj.write(f"shop/migrations/{name}.py", HEADER.format(deps=deps, ops=ops, atomic=atomic))


def test_editor_composition() -> None:
    """migtools' mixin comes before PostGIS' editor (its hooks run first, then GeoDjango's
    geometry handling), and the wrapper is GeoDjango's with that editor."""
    from django.contrib.gis.db.backends.postgis.base import DatabaseWrapper as PostGIS
    from django.contrib.gis.db.backends.postgis.schema import PostGISSchemaEditor

    from migtools.safety.editor import MigtoolsSchemaEditorMixin

    assert postgis_base is not None
    editor = postgis_base.DatabaseSchemaEditor
    assert postgis_base.DatabaseWrapper.SchemaEditorClass is editor
    assert issubclass(postgis_base.DatabaseWrapper, PostGIS)
    mro = editor.__mro__
    assert mro.index(MigtoolsSchemaEditorMixin) < mro.index(PostGISSchemaEditor)
    # GeoDjango's own column and index SQL is what runs (not overridden by the mixin).
    assert editor.column_sql is PostGISSchemaEditor.column_sql
    assert editor._field_indexes_sql is PostGISSchemaEditor._field_indexes_sql


def test_plain_model_sql_matches_the_postgresql_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj, _db = _project(tmp_path)
    _write(proj, "0001_initial", [], ITEM)
    outputs = {}
    for engine in ("migtools.db.backends.postgis", "migtools.db.backends.postgresql"):
        monkeypatch.setenv("MT_ENGINE", engine)
        result = proj.manage("sqlmigrate", "shop", "0001_initial")
        assert result.returncode == 0, result.err
        outputs[engine] = result.out
    assert 'CREATE TABLE "shop_item"' in outputs["migtools.db.backends.postgis"]
    assert outputs["migtools.db.backends.postgis"] == outputs["migtools.db.backends.postgresql"]


def test_geometry_column_applies_and_refusals_still_hold(tmp_path: Path) -> None:
    proj, db = _project(tmp_path)
    _write(proj, "0001_initial", [], PLACE)
    result = proj.manage("migrate", "shop", "-v", "0")
    assert result.returncode == 0, result.out + result.err
    assert query(
        db,
        "SELECT type, srid FROM geometry_columns WHERE f_table_name = 'shop_place' "
        "AND f_geometry_column = 'location'",
    ) == [("POINT", 4326)]
    indexes = query(db, "SELECT indexdef FROM pg_indexes WHERE tablename = 'shop_place'")
    assert any("USING gist (location)" in row[0] for row in indexes), indexes
    query(db, "INSERT INTO shop_place (name, location) VALUES ('a', 'SRID=4326;POINT(1 2)')")

    # The editor's refusals hold on this backend: a NOT NULL column without db_default.
    _write(
        proj,
        "0002_area",
        [("shop", "0001_initial")],
        'migrations.AddField("place", "area", '
        "django.contrib.gis.db.models.fields.PolygonField(srid=4326))",
    )
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1, result.out + result.err
    assert "[not-null-without-db-default]" in result.err
    assert query(db, "SELECT name FROM django_migrations WHERE app = 'shop'") == [("0001_initial",)]
    # The nullable form still builds a spatial index on an existing table: refused in an
    # atomic migration (GeoDjango's GiST index is judged like any other index) ...
    nullable = (
        'migrations.AddField("place", "area", '
        "django.contrib.gis.db.models.fields.PolygonField(srid=4326, null=True))"
    )
    _write(proj, "0002_area", [("shop", "0001_initial")], nullable)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1, result.out + result.err
    assert "[index-not-concurrent]" in result.err and "atomic = False" in result.err
    # ... and applies with the recipe: atomic = False, the index built concurrently.
    _write(proj, "0002_area", [("shop", "0001_initial")], nullable, atomic=False)
    result = proj.manage("migrate", "shop", "-v", "0")
    assert result.returncode == 0, result.out + result.err
    assert query(
        db,
        "SELECT type FROM geometry_columns WHERE f_table_name = 'shop_place' "
        "AND f_geometry_column = 'area'",
    ) == [("POLYGON",)]
    indexes = query(
        db,
        "SELECT pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
        "WHERE i.indrelid = 'shop_place'::regclass",
    )
    assert any("USING gist (area)" in sql and valid for sql, valid in indexes), indexes
