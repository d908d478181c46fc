"""Operational refusals while ``migrate`` applies (issue 15 item 4), on a real server: a
read-only database (SQLSTATE class 25), ``temp_file_limit`` during a concurrent index build
(class 53: the INVALID index it left is dropped), and a failure in an ``atomic = False``
migration naming the operations that committed and what a re-run repeats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.safety_helpers import INITIAL, migration, query, safe_project

FIRST = [("shop", "0001_initial")]
INVALID = (
    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = 'shop_item'::regclass AND NOT i.indisvalid"
)


def _project(tmp_path: Path, extra: str = "", rows: int = 0) -> tuple[Any, str]:
    proj, db = safe_project(tmp_path / "p", extra=extra)
    migration(proj, "0001_initial", [], INITIAL)
    result = proj.manage("migrate", "shop", "-v", "0")
    assert result.returncode == 0, result.err
    if rows:
        query(
            db,
            "INSERT INTO shop_item (name) SELECT left(md5(g::text), 20) FROM generate_series(1, %s) g",
            (rows,),
        )
    return proj, db


def _one_line(result: Any) -> str:
    assert result.returncode == 1, result.out + result.err
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    return lines[0]


def _applied(db: str, name: str) -> int:
    rows = query(db, "SELECT count(*) FROM django_migrations WHERE name = %s", (name,))
    return int(rows[0][0])


def test_read_only_database_is_one_line(tmp_path: Path) -> None:
    proj, db = _project(tmp_path)
    migration(
        proj,
        "0002_note",
        FIRST,
        'migrations.AddField("item", "note", models.IntegerField(null=True)),',
    )
    query(db, f'ALTER DATABASE "{db}" SET default_transaction_read_only = on')
    line = _one_line(proj.manage("migrate", "shop"))
    assert "SQLSTATE 25006" in line, line
    assert "the database is read-only" in line
    assert "run migrate against the primary" in line
    query(
        db,
        "BEGIN; SET TRANSACTION READ WRITE; "
        f'ALTER DATABASE "{db}" SET default_transaction_read_only = off; COMMIT',
    )
    assert _applied(db, "0002_note") == 0
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert _applied(db, "0002_note") == 1


def test_temp_file_limit_during_index_build_is_one_line_and_drops_the_invalid_index(
    tmp_path: Path,
) -> None:
    proj, db = _project(tmp_path, rows=200_000)
    migration(
        proj,
        "0002_index",
        FIRST,
        'migrations.AddIndex("item", models.Index(fields=["name"], name="item_name_ix")),',
        atomic=False,
        post=True,
    )
    query(db, f"ALTER DATABASE \"{db}\" SET temp_file_limit = '1MB'")
    query(db, f"ALTER DATABASE \"{db}\" SET maintenance_work_mem = '1MB'")
    query(db, f'ALTER DATABASE "{db}" SET max_parallel_maintenance_workers = 0')
    line = _one_line(proj.manage("migrate", "shop"))
    assert "SQLSTATE 53400" in line, line
    assert "went over a configured limit (temp_file_limit" in line
    assert (
        'The INVALID index(es) the failed build left ("public"."item_name_ix") were dropped.'
        in line
    )
    assert "None of its 1 operations committed (operation 1 (AddIndex) did not complete)" in line
    assert query(db, INVALID) == []
    query(db, f'ALTER DATABASE "{db}" RESET temp_file_limit')
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert _applied(db, "0002_index") == 1


NON_ATOMIC = """\
migrations.AddField("item", "note", models.IntegerField(null=True)),
migrations.RunPython(
    lambda apps, se: se.connection.cursor().execute(
        "INSERT INTO shop_item (name) VALUES ('ran')"
    ),
    migrations.RunPython.noop,
),
migrations.RunPython(
    lambda apps, se: se.connection.cursor().execute("SELECT pg_sleep(1)"),
    migrations.RunPython.noop,
),
migrations.AddField("item", "other", models.IntegerField(null=True)),
"""


def test_non_atomic_failure_names_what_committed_and_what_a_rerun_repeats(
    tmp_path: Path,
) -> None:
    proj, db = _project(
        tmp_path, extra='MIGTOOLS_STATEMENT_TIMEOUT = "300ms"\nMIGTOOLS_LOCK_TIMEOUT = "100ms"'
    )
    migration(proj, "0002_steps", FIRST, NON_ATOMIC, atomic=False)
    line = _one_line(proj.manage("migrate", "shop"))
    assert "statement_timeout (300ms" in line, line
    assert (
        "Operations 1-2 of 4 committed (1 AddField, 2 RunPython); operation 3 (RunPython) did "
        "not complete; a re-run of migrate runs the migration from its first operation again, "
        "so it runs them again: 2 RunPython run a second time" in line
    ), line
    assert "1 AddField find what they made and skip it." in line
    # It is true: the first two committed.
    assert query(db, "SELECT count(*) FROM shop_item WHERE name = 'ran'") == [(1,)]
    assert _applied(db, "0002_steps") == 0
