"""bench/squawk_compare.py on the example project plus its hand-written risky migrations: on the
rules squawk and migtools share, migtools misses nothing squawk finds (or says why)."""

from __future__ import annotations

import pytest

from bench import squawk_compare as sc

pytestmark = pytest.mark.skipif(
    sc.squawk_binary() is None,
    reason='the squawk binary is missing: pip install squawk-cli (in the "test" extra)',
)

# Risky migration -> (squawk rule, migtools rule) both must report on Django's own SQL.
EXPECTED = {
    "catalog.0005_risky_index": ("require-concurrent-index-creation", "index-not-concurrent"),
    "catalog.0006_risky_fk": ("adding-foreign-key-constraint", "fk-not-valid-missing"),
    "catalog.0007_risky_rename_column": ("renaming-column", "rename-column"),
    "catalog.0008_risky_required": ("adding-required-field", "not-null-without-db-default"),
    "catalog.0009_risky_default": ("ban-drop-default", "default-not-db-default"),
    "catalog.0010_risky_volatile": ("adding-field-with-default", "volatile-default"),
    "catalog.0011_risky_long_name": ("identifier-too-long", "identifier-too-long"),
    "catalog.0012_risky_rename_table": ("renaming-table", "rename-table"),
    "customers.0005_risky_set_not_null": ("adding-not-nullable-field", "set-not-null"),
    "customers.0006_risky_drop_column": ("ban-drop-column", "drop-column"),
    "orders.0004_risky_check": (
        "constraint-missing-not-valid",
        "check-constraint-not-valid-missing",
    ),
    "orders.0005_risky_unique": (
        "disallowed-unique-constraint",
        "unique-constraint-on-existing-table",
    ),
    "orders.0006_risky_type": ("changing-column-type", "column-type-change"),
    "orders.0007_risky_drop_index": (
        "require-concurrent-index-deletion",
        "drop-index-not-concurrent",
    ),
    "orders.0008_risky_concurrently_in_atomic": (
        "ban-concurrent-index-creation-in-transaction",
        "concurrently-in-atomic",
    ),
    "orders.0010_risky_drop_table": ("ban-drop-table", "drop-table"),
}
SAFE = ("customers.0004_safe_nickname", "orders.0009_safe_concurrent_index")


@pytest.fixture(scope="module")
def result() -> sc.Comparison:
    return sc.run_comparison(risky=True)


def test_every_risky_migration_is_in_the_corpus() -> None:
    names = {f"{app}.{name}" for app, name, _, _ in sc.RISKY}
    assert set(EXPECTED) | set(SAFE) == names


@pytest.mark.parametrize("migration", sorted(EXPECTED))
def test_risky_migration_found_by_both_on_djangos_sql(
    result: sc.Comparison, migration: str
) -> None:
    squawk_rule, our_rule = EXPECTED[migration]
    row = next(
        (
            r
            for r in result.rows
            if r.view == "django" and r.migration == migration and r.rule == squawk_rule
        ),
        None,
    )
    assert row is not None, f"squawk did not report {squawk_rule} on {migration}"
    assert row.status == "both" and our_rule in row.ours, row


def test_safe_migrations_found_by_neither(result: sc.Comparison) -> None:
    assert [r for r in result.rows if r.migration in SAFE] == []


def test_djangos_backend_nothing_missed(result: sc.Comparison) -> None:
    missed = [r for r in result.missed if r.view == "django"]
    assert missed == []


def test_cross_view_every_squawk_only_finding_has_a_reason(result: sc.Comparison) -> None:
    """squawk on Django's plain SQL, our findings with migtools' backend: what squawk finds
    there and we do not is what the backend runs in its lock-light form."""
    rows = [r for r in result.rows if r.view == "cross"]
    assert rows
    assert [r for r in rows if r.status == "MISSED"] == []
    for r in rows:
        if r.status == "squawk only":
            assert r.reason, r


def test_example_project_nothing_missed(result: sc.Comparison) -> None:
    """The example project's own migrations, in every view."""
    risky = set(EXPECTED) | set(SAFE)
    assert [r for r in result.missed if r.migration not in risky] == []


def test_migtools_backend_nothing_missed(result: sc.Comparison) -> None:
    missed = [(r.migration, r.rule) for r in result.missed if r.view == "migtools"]
    assert missed == []
