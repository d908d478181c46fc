"""verify_squashes on a real project and a real PostgreSQL server: a faithful squash passes
offline and with a database; a squash missing an operation, and one whose elided RunSQL built
an index, fail with a diff naming the difference."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from tests.miniproject import MiniProject
from tests.pgserver import ensure_database_url
from tests.squash_helpers import MIGRATIONS, squash, squash_project


@pytest.fixture(scope="module", autouse=True)
def _server() -> None:
    ensure_database_url()


def _databases() -> set[str]:
    """The scratch databases on the server (other tests, e.g. under pytest-xdist, create and
    drop databases of their own at the same time: only the squash scratch names count)."""
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
    return {name for name in names if name.endswith(("_squash_a", "_squash_b"))}


@pytest.fixture
def project(tmp_path: Path) -> MiniProject:
    proj = squash_project(tmp_path / "p")
    squash(proj)
    return proj


def test_faithful_squash_passes_offline_and_with_a_database(project: MiniProject) -> None:
    before = _databases()
    offline = project.manage("verify_squashes", "--offline")
    assert offline.returncode == 0, offline.out + offline.err
    assert "shop.0001_squashed_0004_code (replaces 4): faithful (state)" in offline.out
    # The elidable data fix is listed as what the squash will not re-run.
    assert "shop.0003_fill_qty: RunSQL('UPDATE shop_item SET qty = 0 WHERE qty IS NULL')" in (
        offline.out
    )
    online = project.manage("verify_squashes", "shop")
    assert online.returncode == 0, online.out + online.err
    assert "faithful (state and schema)" in online.out
    # The scratch databases were created from the test database's name and dropped again.
    assert _databases() == before


def test_an_operation_dropped_by_hand_fails_naming_it(project: MiniProject) -> None:
    path = project.root / "shop/migrations/0001_squashed_0004_code.py"
    text = path.read_text()
    start = text.index("        migrations.AddConstraint(")
    end = text.index("        ),\n", start) + len("        ),\n")
    path.write_text(text[:start] + text[end:])
    offline = project.manage("verify_squashes", "--offline")
    assert offline.returncode == 1
    assert "shop.0001_squashed_0004_code (replaces 4): DIFFERS" in offline.out
    assert "constraint qty_gte_0 on shop.Item: only after the replaced migrations" in offline.out
    online = project.manage("verify_squashes")
    assert online.returncode == 1
    assert (
        "constraint qty_gte_0: only after the replaced migrations: shop_item c CHECK ((qty >= 0))"
        in online.out
    )
    assert "1 squashed migration(s) differ from what they replace." in online.err


def test_a_field_dropped_by_hand_shows_field_by_field(project: MiniProject) -> None:
    path = project.root / "shop/migrations/0001_squashed_0004_code.py"
    text = path.read_text()
    path.write_text(text.replace("('qty', models.IntegerField(null=True)),", ""))
    result = project.manage("verify_squashes")
    assert result.returncode == 1
    assert (
        "field shop.Item.qty: only after the replaced migrations: IntegerField(null=True)"
        in result.out
    )
    # The data migration of the squash cannot even run without the field.
    assert (
        "applying the squash on a scratch database failed: FieldError: Cannot resolve keyword "
        "'qty' into field." in result.out
    )


def test_an_elided_runsql_that_built_an_index_fails(tmp_path: Path) -> None:
    proj = squash_project(tmp_path / "p")
    proj.write(
        "shop/migrations/0003_fill_qty.py",
        MIGRATIONS["0003_fill_qty"].replace(
            '"UPDATE shop_item SET qty = 0 WHERE qty IS NULL"',
            '"CREATE INDEX shop_item_name_idx ON shop_item (name)"',
        ),
    )
    squash(proj)
    offline = proj.manage("verify_squashes", "--offline")
    assert offline.returncode == 1
    assert (
        "shop.0003_fill_qty: RunSQL('CREATE INDEX shop_item_name_idx ON shop_item (name)') is "
        "elidable but changes the schema (IndexStmt): the squash does not run it"
    ) in offline.out
    online = proj.manage("verify_squashes")
    assert online.returncode == 1
    assert (
        "index shop_item_name_idx: only after the replaced migrations: CREATE INDEX "
        "shop_item_name_idx ON public.shop_item USING btree (name)"
    ) in online.out


def test_nothing_to_verify_and_unknown_app(tmp_path: Path) -> None:
    proj = squash_project(tmp_path / "p")
    result = proj.manage("verify_squashes")
    assert result.returncode == 0
    assert "No squashed migrations (migrations with `replaces`) found." in result.out
    unknown = proj.manage("verify_squashes", "nosuch")
    assert unknown.returncode == 2
    assert "nosuch" in unknown.err and "Traceback" not in unknown.err


def test_unreachable_database_compares_offline_in_one_line(project: MiniProject) -> None:
    settings = project.root / "proj/settings.py"
    settings.write_text(
        settings.read_text()
        + "\nDATABASES['default']['PORT'] = 1\nDATABASES['default']['HOST'] = '127.0.0.1'\n"
    )
    result = project.manage("verify_squashes")
    assert result.returncode == 0, result.err
    assert result.out.startswith("Compared offline only: database 'default' (name ")
    assert "port 1) is unreachable: " in result.out
    assert "faithful (state)" in result.out
