from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest
from django.test import override_settings

from migtools.graph import cache as parsecache
from migtools.graph import disk as graph
from tests.helpers import render_migration, temp_migrations_module

OLD = 1_600_000_000  # a mtime far in the past: not racy


def _age(directory: Path, seconds: int = OLD) -> None:
    for path in directory.glob("*.py"):
        os.utime(path, (seconds, seconds))


def _cache_file(directory: Path) -> Path:
    return directory / "__pycache__" / parsecache.FILENAME


@pytest.fixture
def alpha(tmp_path: Path):  # type: ignore[no-untyped-def]
    files = {
        "0001_initial.py": render_migration([]),
        "0002_second.py": render_migration([("alpha", "0001_initial")]),
    }
    with temp_migrations_module(tmp_path, {"alpha": files}) as dirs:
        yield dirs["alpha"]


def test_cache_is_written_and_used(alpha: Path) -> None:
    _age(alpha)
    assert graph.load(["alpha"]).leaves("alpha") == ["0002_second"]
    version, entries = marshal.loads(_cache_file(alpha).read_bytes())
    assert version == parsecache.VERSION
    assert sorted(entries) == ["0001_initial", "0002_second"]
    # Poison the cached answer: a hit must come from the cache, not from parsing.
    stamp, used, _deps, *rest = entries["0002_second"]
    entries["0002_second"] = (stamp, used, (), *rest)
    _cache_file(alpha).write_bytes(marshal.dumps((version, entries)))
    graph.forget()  # this process's memory of the reading: the next load reads the cache
    assert graph.load(["alpha"]).leaves("alpha") == ["0001_initial", "0002_second"]


def test_a_process_reads_an_unchanged_graph_once(alpha: Path) -> None:
    """The second load in one process neither parses nor reads the parse cache (the cache
    file is poisoned and still not read); a file changed since is read again."""
    _age(alpha)
    first = graph.load(["alpha"])
    version, entries = marshal.loads(_cache_file(alpha).read_bytes())
    stamp, used, _deps, *rest = entries["0002_second"]
    entries["0002_second"] = (stamp, used, (), *rest)
    _cache_file(alpha).write_bytes(marshal.dumps((version, entries)))
    assert graph.load(["alpha"]) is first
    path = alpha / "0001_initial.py"
    path.write_text(path.read_text() + "\n# edited\n")
    os.utime(path, (OLD + 10, OLD + 10))
    again = graph.load(["alpha"])
    assert again is not first
    # 0001 parsed again; 0002 from the (poisoned) cache entry, its stamp unchanged.
    assert again.leaves("alpha") == ["0001_initial", "0002_second"]


def test_changed_file_is_parsed_again(alpha: Path) -> None:
    _age(alpha)
    graph.load(["alpha"])
    path = alpha / "0002_second.py"
    # Same size, different content and mtime: the stamp no longer matches.
    path.write_text(path.read_text().replace("0001_initial", "0001_initiax"))
    os.utime(path, (OLD + 10, OLD + 10))
    with pytest.raises(graph.GraphError, match="0001_initiax"):
        graph.load(["alpha"])


def test_racy_files_are_not_stored(alpha: Path) -> None:
    """In one load, the file written just now is left out and the old one (the control
    case: caching is on and works) is stored; once it is old enough, it is stored too."""
    os.utime(alpha / "0001_initial.py", (OLD, OLD))
    assert graph.load(["alpha"]).leaves("alpha") == ["0002_second"]
    assert _cache_file(alpha).exists()
    _version, entries = marshal.loads(_cache_file(alpha).read_bytes())
    assert sorted(entries) == ["0001_initial"]  # 0002_second is racy: mtime is now
    _age(alpha)
    graph.load(["alpha"])
    _version, entries = marshal.loads(_cache_file(alpha).read_bytes())
    assert sorted(entries) == ["0001_initial", "0002_second"]


def test_settings_change_invalidates_swappable_entries(tmp_path: Path) -> None:
    files = {
        "0001_initial.py": (
            "from django.conf import settings\nfrom django.db import migrations\n\n\n"
            "class Migration(migrations.Migration):\n"
            "    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]\n"
            "    operations = []\n"
        )
    }
    with temp_migrations_module(tmp_path, {"alpha": files}) as dirs:
        _age(dirs["alpha"])
        first = graph.read_app("alpha").files["0001_initial"]
        assert first.dependencies == (("auth", "__first__"),)
        with override_settings(AUTH_USER_MODEL="beta.Person"):
            again = graph.read_app("alpha").files["0001_initial"]
        assert again.dependencies == (("beta", "__first__"),)


def test_cache_can_be_turned_off(alpha: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGTOOLS_GRAPH_CACHE", "0")
    _age(alpha)
    assert graph.load(["alpha"]).leaves("alpha") == ["0002_second"]
    assert not _cache_file(alpha).exists()


def test_unreadable_cache_is_ignored(alpha: Path) -> None:
    _age(alpha)
    _cache_file(alpha).parent.mkdir(exist_ok=True)
    _cache_file(alpha).write_bytes(b"\x00not marshal")
    assert graph.load(["alpha"]).leaves("alpha") == ["0002_second"]


def test_ignore_rules_ids_come_from_the_cache(tmp_path: Path) -> None:
    """The ids a file's ``ignore_rules`` names (the W102 check's input) are stored with the
    graph attributes: a cache hit gives them without reading the file."""
    source = render_migration([]).replace(
        "class Migration(migrations.Migration):\n",
        'class Migration(migrations.Migration):\n    ignore_rules = {"no-such-rule": "why"}\n',
    )
    assert "no-such-rule" in source
    with temp_migrations_module(tmp_path, {"alpha": {"0001_initial.py": source}}) as dirs:
        _age(dirs["alpha"])
        parsed = graph.load(["alpha"]).apps["alpha"].files["0001_initial"]
        line = source.splitlines().index('    ignore_rules = {"no-such-rule": "why"}') + 1
        assert parsed.ignored_rules == (("no-such-rule", line),)
        version, entries = marshal.loads(_cache_file(dirs["alpha"]).read_bytes())
        assert entries["0001_initial"][7] == (("no-such-rule", line),)
        entries["0001_initial"] = (*entries["0001_initial"][:7], (("from-the-cache", 1),))
        _cache_file(dirs["alpha"]).write_bytes(marshal.dumps((version, entries)))
        graph.forget()
        cached = graph.load(["alpha"]).apps["alpha"].files["0001_initial"]
        assert cached.ignored_rules == (("from-the-cache", 1),)


def test_files_unchanged_trusts_only_what_it_read(alpha: Path) -> None:
    """Inside ``files_unchanged`` a reading made before entering is checked against the files
    (an edit since is seen); one made inside is not checked again until it is left."""
    _age(alpha)
    before = graph.load(["alpha"])
    path = alpha / "0002_second.py"
    path.write_text(path.read_text() + "\n# edited before the command\n")
    os.utime(path, (OLD + 10, OLD + 10))
    with graph.files_unchanged():
        inside = graph.load(["alpha"])
        assert inside is not before  # the edit made before entering is read
        path.write_text(path.read_text().replace("0001_initial", "0001_initiax"))
        os.utime(path, (OLD + 20, OLD + 20))
        assert graph.load(["alpha"]) is inside  # not checked again inside
    with pytest.raises(graph.GraphError, match="0001_initiax"):
        graph.load(["alpha"])  # checked again once left
