"""The migtools schema editor, at the path Django's backend layout gives it (the editor itself
lives in ``migtools.safety.editor``)."""

from __future__ import annotations

from migtools.safety.editor import DatabaseSchemaEditor, MigtoolsSchemaEditorMixin

__all__ = ["DatabaseSchemaEditor", "MigtoolsSchemaEditorMixin"]
