"""PostGIS with the migtools schema editor: the mixin goes before the backend's own editor."""

from __future__ import annotations

from django.contrib.gis.db.backends.postgis.base import (
    DatabaseWrapper as PostGISDatabaseWrapper,
)
from django.contrib.gis.db.backends.postgis.schema import PostGISSchemaEditor

from migtools.safety.editor import MigtoolsSchemaEditorMixin


class DatabaseSchemaEditor(MigtoolsSchemaEditorMixin, PostGISSchemaEditor):
    pass


class DatabaseWrapper(PostGISDatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
