"""The rule catalogue: ids, levels, docs in sync, and the SQL rules on parsed statements."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from migtools.rules.catalogue import CATALOGUE, Level, Stage, effective_level
from migtools.rules.sql import SqlContext, check, long_identifiers, safe_type_change

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


def render_docs() -> str:
    parts = [
        "# migtools rules\n",
        "Generated from `migtools/rules/catalogue.py` (tests/test_rules.py checks it). Change "
        "a level with `MIGTOOLS_RULES = {id: 'error' | 'warning' | 'off'}`; silence one "
        "migration with `ignore_rules = {id: 'reason'}` on it. Rules about the database are "
        "judged by `verify_migrations`, `sqlmigrate` and `migrate`'s preflight alike; rules "
        "about the repository are `verify_migrations` findings only (`migrate` does not "
        "refuse them). The same text ships in the package: `python manage.py "
        "verify_migrations --explain RULE` prints one rule (no network).\n",
    ]
    for rule in CATALOGUE.values():
        parts.append(f"## `{rule.id}`\n")
        parts.append(f"**{rule.title}.** Default level: {rule.level}. About: {rule.about}.\n")
        if rule.lock:
            parts.append(f"Lock: {rule.lock}.\n")
        if rule.allowed_in:
            stages = ", ".join(sorted(str(s) for s in rule.allowed_in))
            parts.append(f"Allowed in: {stages}.\n")
        parts.append(f"Why: {rule.why}\n")
        steps = "\n".join(f"{n}. {step}" for n, step in enumerate(rule.recipe, 1))
        parts.append(f"Safe recipe:\n\n{steps}\n")
    return "\n".join(parts)


def test_docs_match_catalogue() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_docs(), (
        "docs/rules.md is stale: python -c 'from tests.test_rules import render_docs; "
        'print(render_docs(), end="")\' > docs/rules.md'
    )


def test_catalogue_ids_and_levels() -> None:
    for rule_id, rule in CATALOGUE.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule_id)
        assert rule.id == rule_id and rule.why and rule.recipe
    assert CATALOGUE["migration-test-multiple-methods"].level is Level.OFF
    assert Stage.DELETE_PHASE in CATALOGUE["drop-column"].allowed_in


def test_effective_level_ignore_rules(settings: pytest.FixtureRequest) -> None:
    class M:
        ignore_rules = {"drop-column": "two-phase done by hand"}  # noqa: RUF012

    assert effective_level("drop-column", M()) is Level.OFF  # type: ignore[arg-type]
    assert effective_level("drop-table", M()) is Level.ERROR  # type: ignore[arg-type]


def _rules(sql: str, **kw: object) -> set[str]:
    hits, _ = check([sql], SqlContext(**kw))  # type: ignore[arg-type]
    return {h.rule_id for h in hits}


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('DROP INDEX "i"', {"drop-index-not-concurrent"}),
        ('DROP INDEX CONCURRENTLY "i"', {"concurrently-in-atomic"}),
        ('CREATE INDEX CONCURRENTLY "i" ON "t" ("a")', {"concurrently-in-atomic"}),
        ('ALTER TABLE "t" ALTER COLUMN "a" SET NOT NULL', {"set-not-null"}),
        ('ALTER TABLE "t" SET TABLESPACE fast', {"set-tablespace"}),
        ('ALTER INDEX "i" SET TABLESPACE fast', {"set-tablespace"}),
        (
            'ALTER TABLE "t" ADD COLUMN "u" uuid DEFAULT gen_random_uuid() NULL',
            {"volatile-default"},
        ),
        ('ALTER TABLE "t" ADD COLUMN "n" integer DEFAULT 0 NOT NULL', set()),
        ('ALTER TABLE "t" ADD COLUMN "n" integer NOT NULL', {"not-null-without-db-default"}),
        ("ALTER TABLE t ADD CONSTRAINT c UNIQUE USING INDEX i", set()),
        ("ALTER TABLE t ADD CONSTRAINT c FOREIGN KEY (a) REFERENCES b (id) NOT VALID", set()),
        ("ALTER TABLE t VALIDATE CONSTRAINT c", set()),
        ("UPDATE t SET a = 1", set()),
        ("THIS IS NOT SQL", {"run-sql-not-safe"}),
    ],
)
def test_sql_rules(sql: str, expected: set[str]) -> None:
    assert _rules(sql) == expected


def test_new_tables_are_exempt_and_created_tables_become_new() -> None:
    assert _rules('CREATE TABLE "t" (a int); CREATE INDEX "i" ON "t" (a)') == set()
    assert _rules('DROP INDEX "i"', new_indexes={"i"}) == set()


def test_set_not_null_after_validated_check_is_fine() -> None:
    sql = (
        'ALTER TABLE "t" ADD CONSTRAINT "nn" CHECK ("a" IS NOT NULL) NOT VALID;'
        'ALTER TABLE "t" VALIDATE CONSTRAINT "nn";'
        'ALTER TABLE "t" ALTER COLUMN "a" SET NOT NULL'
    )
    assert _rules(sql, atomic=False) == set()
    # In one transaction the ADD's ACCESS EXCLUSIVE lock is held through the VALIDATE scan.
    assert _rules(sql, atomic=True) == {"set-not-null"}


@pytest.mark.parametrize(
    ("constraint", "rule"),
    [
        ("FOREIGN KEY (a) REFERENCES b (id)", "fk-not-valid-missing"),
        ("CHECK (a > 0)", "check-constraint-not-valid-missing"),
    ],
)
def test_not_valid_then_validate_in_one_transaction(constraint: str, rule: str) -> None:
    sql = f"ALTER TABLE t ADD CONSTRAINT c {constraint} NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT c"
    assert _rules(sql, atomic=True) == {rule}
    assert _rules(sql, atomic=False) == set()
    assert _rules(sql, atomic=True, new_tables={"t"}) == set()


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ('"n" integer DEFAULT 0 NOT NULL', {"not-null-without-db-default"}),
        ('"n" integer DEFAULT 3 NULL', {"default-not-db-default"}),
    ],
)
def test_default_dropped_after_add_column(column: str, expected: set[str]) -> None:
    """Django's default=: the column is added with a DEFAULT that is dropped right after."""
    add = f'ALTER TABLE "t" ADD COLUMN {column}'
    assert _rules(add) == set()  # a default that stays is a database default
    drop = 'ALTER TABLE "t" ALTER COLUMN "n" DROP DEFAULT'
    assert _rules(f"{add}; {drop}") == expected
    assert _rules(f"{add}; {drop}", new_tables={"t"}) == set()
    assert _rules(drop) == set()  # dropping a default the column had before is fine


def test_long_identifiers_read_from_tokens() -> None:
    name = "x" * 64
    assert long_identifiers(f'CREATE TABLE "{name}" (a int)') == [name]
    assert long_identifiers("CREATE TABLE " + "y" * 63 + " (a int)") == []


def test_safe_type_changes() -> None:
    assert safe_type_change("varchar(20)", "varchar(200)")
    assert safe_type_change("varchar(20)", "text")
    assert not safe_type_change("varchar(20)", "varchar(10)")
    assert not safe_type_change("integer", "int8")
    assert not safe_type_change(None, "text")
