"""verify_squashes start to end, without printing: every squash of the asked-for apps compared
offline (:mod:`.compare`) and, when the database can be reached, on scratch databases
(:mod:`.schema`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connections

from migtools import dberrors, project
from migtools.squash import compare, schema


@dataclass
class Proof:
    comparisons: list[compare.Comparison] = field(default_factory=list)
    database: str | None = None  # the alias compared on (None: offline)
    offline_reason: str | None = None

    @property
    def faithful(self) -> bool:
        return all(c.skipped is not None or c.faithful for c in self.comparisons)


def _database_reason(alias: str | None) -> str | None:
    """Why the catalog comparison cannot run (None: it can)."""
    from django.db.utils import InterfaceError, OperationalError

    if alias is None:
        return "offline (--offline)"
    if not connections.databases or not connections[alias].settings_dict.get("ENGINE"):
        return "no database is configured"
    if not schema.supported(alias):
        return f"database '{alias}' is not PostgreSQL: the catalogs were not compared"
    try:
        connections[alias].ensure_connection()
    except (OperationalError, InterfaceError) as exc:
        return dberrors.unreachable(alias, exc)
    return None


def run(app_labels: Iterable[str] | None, alias: str | None) -> Proof:
    labels = [project.app_config(label).label for label in app_labels] if app_labels else None
    source = compare.loader()
    proof = Proof()
    proof.offline_reason = _database_reason(alias)
    if proof.offline_reason is None:
        proof.database = alias
    for key in compare.squashes(source, labels):
        result = compare.compare(source, key)
        proof.comparisons.append(result)
        if result.skipped is not None or proof.database is None:
            continue
        found = compare.paths(source, key)
        assert not isinstance(found, str)
        try:
            catalog = schema.compare(source, found.squash_path, found.replaced_path, proof.database)
        except schema.PathFailed as exc:
            result.differences.append(str(exc))
            continue
        result.differences += [d for d in catalog.differences if d not in result.differences]
        result.notes += catalog.notes
    return proof
