from __future__ import annotations

from pathlib import Path

import pytest

from migtools.errors import LockfileConflictError, LockfileError
from migtools.graph import lockfile


def test_render_sorts_and_separates_entries() -> None:
    text = lockfile.render({"shop": "0002_b", "billing": "0001_a"})
    assert text.startswith("# migtools migrations lockfile.\n")
    assert "python manage.py update_migration" in text
    assert text.endswith("\n\nbilling: 0001_a\n\nshop: 0002_b\n")
    assert lockfile.parse(text) == {"billing": "0001_a", "shop": "0002_b"}


def test_render_empty_is_header_only() -> None:
    assert lockfile.parse(lockfile.render({})) == {}


def test_parse_reports_garbage_with_line() -> None:
    with pytest.raises(LockfileError, match=r"lock.txt:3: expected 'app_label: migration_name'"):
        lockfile.parse("# c\n\nshop 0001\n", "lock.txt")


def test_parse_refuses_duplicate_app() -> None:
    with pytest.raises(LockfileError, match="app 'shop' is listed twice"):
        lockfile.parse("shop: 0001_a\nshop: 0002_b\n")


CONFLICT = """\
# header

billing: 0001_a

<<<<<<< HEAD
shop: 0003_mine
=======
shop: 0003_theirs
>>>>>>> main
"""

CONFLICT_DIFF3 = """\
billing: 0001_a

<<<<<<< ours
shop: 0003_mine
||||||| base
shop: 0002_base
=======
shop: 0003_theirs
>>>>>>> theirs
"""


def test_conflict_markers_are_a_conflict_not_garbage() -> None:
    with pytest.raises(LockfileConflictError, match="update_migration"):
        lockfile.parse(CONFLICT)


def test_split_conflict_merge_style() -> None:
    sides = lockfile.split_conflict(CONFLICT)
    assert sides.ours == {"billing": "0001_a", "shop": "0003_mine"}
    assert sides.theirs == {"billing": "0001_a", "shop": "0003_theirs"}
    assert sides.base is None


def test_split_conflict_diff3_style() -> None:
    sides = lockfile.split_conflict(CONFLICT_DIFF3)
    assert sides.ours["shop"] == "0003_mine"
    assert sides.theirs["shop"] == "0003_theirs"
    assert sides.base == {"billing": "0001_a", "shop": "0002_base"}


def test_split_conflict_unterminated() -> None:
    with pytest.raises(LockfileError, match="unterminated"):
        lockfile.split_conflict("<<<<<<< HEAD\nshop: 0001\n")


def test_compare_lists_wrong_missing_and_extra() -> None:
    mismatches = lockfile.compare(
        {"shop": "0001_a", "gone": "0001_x"}, {"shop": "0002_b", "billing": "0001_c"}
    )
    assert [m.describe() for m in mismatches] == [
        "billing: missing, expected '0001_c'",
        "gone: listed as '0001_x' but the app is not managed or has no migrations",
        "shop: lockfile says '0001_a', latest migration is '0002_b'",
    ]


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        LockfileError,
        match=r"No lockfile at .* Create it with 'python manage.py migrations_lockfile'",
    ):
        lockfile.read(tmp_path / "nope.txt")


def test_write_is_atomic_and_reports_change(tmp_path: Path) -> None:
    path = tmp_path / "lock.txt"
    assert lockfile.write(path, {"shop": "0001_a"}) is True
    assert lockfile.write(path, {"shop": "0001_a"}) is False
    assert lockfile.read(path) == {"shop": "0001_a"}
    assert [p.name for p in tmp_path.iterdir()] == ["lock.txt"]


# -- other tools' lockfiles (adoption) -----------------------------------------------------

# The shape of Sentry's own migrations_lockfile.txt: a prose header, then `app: name` lines.
SENTRY_LOCKFILE = """\
Django migrations lock file. This helps us avoid migration conflicts on master.
If you have a conflict in this file, it means that someone has committed a migration
ahead of you.

To resolve this, rebase against latest master and regenerate your migration. This file
will then be regenerated, and you should be able to merge without conflicts.

billing: 0002_invoice

shop: 0001_initial
"""


def test_sentry_lockfile_is_read_as_sentry_format() -> None:
    assert lockfile.parse(SENTRY_LOCKFILE) == {"billing": "0002_invoice", "shop": "0001_initial"}
    assert lockfile.detect(SENTRY_LOCKFILE) is lockfile.Kind.SENTRY
    assert lockfile.detect(lockfile.render({"shop": "0001_initial"})) is lockfile.Kind.MIGTOOLS
    # Sentry's older files have no blank line between entries.
    assert lockfile.parse(SENTRY_LOCKFILE.replace("\n\nshop", "\nshop"))["shop"] == "0001_initial"


def test_sentry_header_ends_at_the_first_entry() -> None:
    with pytest.raises(LockfileError, match=r"lock.txt:12: expected 'app_label: migration_name'"):
        lockfile.parse(SENTRY_LOCKFILE + "\nsome trailing prose\n", "lock.txt")


def test_max_migration_files_are_read_per_app(tmp_path: Path) -> None:
    shop = tmp_path / "shop" / "migrations"
    billing = tmp_path / "billing" / "migrations"
    shop.mkdir(parents=True)
    billing.mkdir(parents=True)
    (shop / "max_migration.txt").write_text("0003_third\n")
    found = lockfile.read_max_migration({"shop": shop, "billing": billing, "none": None})
    assert found is not None
    assert found.kind is lockfile.Kind.MAX_MIGRATION
    assert found.entries == {"shop": "0003_third"}
    assert found.sources == [shop / "max_migration.txt"]
    assert lockfile.read_max_migration({"billing": billing}) is None
    (billing / "max_migration.txt").write_text("0001_a\n0002_b\n")
    with pytest.raises(LockfileError, match="expected one migration name"):
        lockfile.read_max_migration({"billing": billing})


def test_existing_prefers_the_lockfile_over_max_migration(tmp_path: Path) -> None:
    shop = tmp_path / "shop" / "migrations"
    shop.mkdir(parents=True)
    (shop / "max_migration.txt").write_text("0003_third\n")
    path = tmp_path / "migrations_lockfile.txt"
    assert lockfile.existing(path, {"shop": shop}).entries == {"shop": "0003_third"}
    path.write_text(SENTRY_LOCKFILE)
    found = lockfile.existing(path, {"shop": shop})
    assert (found.kind, found.entries["shop"]) == (lockfile.Kind.SENTRY, "0001_initial")
