"""``manage.py table_sizes`` and the offline verifier reading what it recorded
(``migtools.rules.sizes``): sizes recorded on a real server, then verified with DATABASES
pointing at a closed port, give the large-table finding ``migrate`` gives online."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from migtools.rules import sizes
from tests.miniproject import Result, make_project
from tests.test_offline import _closed_port

RULE = "index-on-large-table-not-post-deployment"

MIGRATION = """\
from django.db import migrations, models
from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [{deps}]
    operations = [{ops}]
"""

INITIAL = (
    'migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True)), '
    '("name", models.CharField(max_length=20))])'
)
INDEX = 'migrations.AddIndex("item", models.Index(fields=["name"], name="item_name_idx"))'

SETTINGS = "MIGTOOLS_APPS = ['shop']\nMIGTOOLS_LARGE_TABLE_ROWS = 100\n"


@pytest.fixture
def database() -> Iterator[str]:
    server = os.environ["DATABASE_URL"]
    name = f"migtools_sizes_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _manage(root: Path, url: str, *args: str) -> Result:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "ignore", "DATABASE_URL": url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True
    )
    return Result(proc.stdout, proc.stderr, proc.returncode)


@pytest.fixture
def project(tmp_path: Path, database: str) -> Path:
    root = tmp_path / "proj"
    make_project(root, extra_settings=SETTINGS)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    migrations = root / "shop" / "migrations"
    migrations.mkdir()
    (migrations / "__init__.py").write_text("")
    (migrations / "0001_initial.py").write_text(MIGRATION.format(deps="", ops=INITIAL))
    assert _manage(root, database, "migrate", "-v0").returncode == 0
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("INSERT INTO shop_item (name) SELECT 'n' || g FROM generate_series(1, 500) g")
        conn.execute("ANALYZE shop_item")
    (migrations / "0002_index.py").write_text(
        MIGRATION.format(deps="('shop', '0001_initial')", ops=INDEX)
    )
    return root


def _rules(result: Result) -> list[tuple[str, str]]:
    return sorted((str(f["migration"]), str(f["rule"])) for f in json.loads(result.out)["findings"])


def test_offline_reports_the_large_table_index_migrate_refuses(
    project: Path, database: str
) -> None:
    closed = f"postgres://u:p@127.0.0.1:{_closed_port()}/x"
    online = _manage(project, database, "verify_migrations", "--format", "json")
    assert ("0002_index", RULE) in _rules(online)
    refused = _manage(project, database, "migrate", "shop")
    assert refused.returncode == 1 and RULE in refused.err, refused.err

    # Without recorded sizes, offline cannot know: the notice says so.
    blind = _manage(project, closed, "verify_migrations", "--format", "json")
    assert ("0002_index", RULE) not in _rules(blind)
    assert "migrations_table_sizes.txt: no file" in blind.err

    written = _manage(project, database, "table_sizes", "--write")
    assert written.returncode == 0, written.err
    assert "large: shop_item" in written.out
    text = (project / "migrations_table_sizes.txt").read_text()
    assert "\nshop_item: 500\n" in text and "[default] recorded " in text

    offline = _manage(project, closed, "verify_migrations", "--format", "json")
    assert _rules(offline) == _rules(online)
    assert offline.returncode == online.returncode == 1
    notice = [line for line in offline.err.splitlines() if "verified offline" in line]
    assert len(notice) == 1, offline.err
    assert "table sizes from migrations_table_sizes.txt [default] recorded " in notice[0]
    assert "ago" in notice[0] and "large: shop_item" in notice[0]

    # The same rule as online: 500 rows is not large under a threshold of 500.
    (project / "proj" / "settings.py").write_text(
        (project / "proj" / "settings.py").read_text().replace("= 100", "= 500")
    )
    assert ("0002_index", RULE) not in _rules(
        _manage(project, database, "verify_migrations", "--format", "json")
    )
    assert ("0002_index", RULE) not in _rules(
        _manage(project, closed, "verify_migrations", "--format", "json")
    )


def test_check_follows_the_threshold(project: Path, database: str) -> None:
    missing = _manage(project, database, "table_sizes", "--check")
    assert missing.returncode == 1
    assert "has no sizes for 'default'" in missing.err
    assert _manage(project, database, "table_sizes", "--write").returncode == 0
    fresh = _manage(project, database, "table_sizes", "--check")
    assert fresh.returncode == 0, fresh.err
    assert "is up to date" in fresh.out
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("DELETE FROM shop_item")
        conn.execute("VACUUM ANALYZE shop_item")
    stale = _manage(project, database, "table_sizes", "--check")
    assert stale.returncode == 1
    assert "shop_item: 0 rows now, 500 recorded (large in the file)" in stale.err
    shown = _manage(project, database, "table_sizes")
    assert shown.out.strip() == "shop_item: 0"


def test_bad_usage_and_closed_database(project: Path) -> None:
    closed = f"postgres://u:p@127.0.0.1:{_closed_port()}/x"
    down = _manage(project, closed, "table_sizes", "--write")
    assert down.returncode == 1 and "Traceback" not in down.err
    assert len(down.err.strip().splitlines()) == 1, down.err
    both = _manage(project, closed, "table_sizes", "--write", "--check")
    assert both.returncode == 2 and "cannot be combined" in both.err
    unknown = _manage(project, closed, "table_sizes", "--database", "nope")
    assert unknown.returncode == 2 and "Traceback" not in unknown.err


def test_file_round_trip_sorted_per_alias(tmp_path: Path) -> None:
    when = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    records = {
        "replica": sizes.Recorded("replica", when, {"b": 2, "a": -1}),
        "default": sizes.Recorded("default", when, {"z": 10, "m": 5_000_000}),
    }
    path = tmp_path / sizes.FILE_NAME
    sizes.write(path, records)
    text = path.read_text()
    assert text.index("[default]") < text.index("[replica]")
    assert text.index("m: 5000000") < text.index("z: 10") and text.index("a: -1") < text.index(
        "b: 2"
    )
    assert sizes.read(path) == records
    assert records["default"].large(1_000_000) == {"m"}
    assert records["replica"].large(0) == {"b"}  # -1: never analyzed, never large
    assert records["default"].age(when + timedelta(days=3, hours=2)) == "3 days"
    path.write_text(text.replace("z: 10", "z: ten"))
    with pytest.raises(sizes.TableSizesError, match=r":\d+: expected 'table: rows'"):
        sizes.read(path)


HOOK = Path(__file__).resolve().parent.parent / "hooks" / "migtools-verify"


def test_the_verify_hook_reads_the_recorded_sizes(project: Path, database: str) -> None:
    """pre-commit's verify hook, with no database: the staged index on a table recorded as
    large fails the commit; without the sizes file it could not know."""
    closed = f"postgres://u:p@127.0.0.1:{_closed_port()}/x"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "DATABASE_URL": closed}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                str(HOOK),
                "--python",
                sys.executable,
                "shop/migrations/0002_index.py",
            ],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )

    blind = hook()
    assert RULE not in blind.stdout, blind.stdout
    assert "no file" in blind.stderr
    assert _manage(project, database, "table_sizes", "--write").returncode == 0
    seen = hook()
    assert seen.returncode == 1, seen.stdout + seen.stderr
    assert RULE in seen.stdout
    assert "table sizes from migrations_table_sizes.txt [default]" in seen.stderr
