"""migtools.source: Python files read and written as Python reads them."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from migtools import source
from migtools.errors import MigrationFileError
from migtools.graph import disk

LATIN1 = "# -*- coding: latin-1 -*-\n# caf\xe9\nx = 'caf\xe9'\n"


def test_a_coding_cookie_decides_the_encoding(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_bytes(LATIN1.encode("latin-1"))
    assert source.read(path) == LATIN1
    assert source.encoding(LATIN1) == "iso-8859-1"
    assert source.encode(LATIN1) == LATIN1.encode("latin-1")


def test_a_byte_order_mark_is_read_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_bytes(codecs.BOM_UTF8 + "x = 'caf\xe9'\r\n".encode())
    text = source.read(path)
    assert text == "x = 'caf\xe9'\n"  # no BOM in the text, newlines as Python reads them
    assert source.encode(text, like=path) == codecs.BOM_UTF8 + "x = 'caf\xe9'\n".encode()
    assert source.encode(text) == "x = 'caf\xe9'\n".encode()


def test_bytes_not_in_the_declared_encoding_are_a_syntax_error_with_the_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.py"
    path.write_bytes(b"x = 1\ny = 2\nz = '\xe9'\n")
    with pytest.raises(SyntaxError) as caught:
        source.read(path)
    assert caught.value.lineno == 3
    assert caught.value.filename == str(path)


def test_an_unknown_coding_is_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_bytes(b"# -*- coding: klingon -*-\nx = 1\n")
    with pytest.raises(SyntaxError):
        source.read(path)


def test_the_graph_reads_a_latin1_migration_and_reports_a_bad_one(tmp_path: Path) -> None:
    good = (
        "# -*- coding: latin-1 -*-\nfrom django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    # caf\xe9\n    dependencies = [('shop', '0001_initial')]\n"
    )
    (tmp_path / "0002_good.py").write_bytes(good.encode("latin-1"))
    read = disk.read_directory("shop", None, tmp_path)
    assert read.files["0002_good"].dependencies == (("shop", "0001_initial"),)
    (tmp_path / "0003_bad.py").write_bytes(b"x = 1\n# caf\xe9\n")
    with pytest.raises(MigrationFileError, match=r"0003_bad\.py:2: "):
        disk.read_directory("shop", None, tmp_path)


@pytest.mark.parametrize(
    ("body", "line", "says"),
    [
        ("    dependencies = None\n", 6, "dependencies must be a list"),
        ("    replaces = 'shop'\n", 6, "replaces must be a list"),
        ("    dependencies = [('shop',)]\n", 6, "an (app_label, migration_name) pair"),
        ("    dependencies = ['shop']\n", 6, "an (app_label, migration_name) pair"),
    ],
)
def test_dependency_values_django_cannot_read_are_refused(
    tmp_path: Path, body: str, line: int, says: str
) -> None:
    text = "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
    (tmp_path / "0001_x.py").write_text(text + "    initial = True\n" + body)
    with pytest.raises(MigrationFileError) as caught:
        disk.read_directory("shop", None, tmp_path)
    assert caught.value.line == line and says in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_a_module_without_migration_class_is_refused_as_django_refuses_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "helpers.py").write_text("def forwards(apps, schema_editor):\n    pass\n")
    (tmp_path / "_private.py").write_text("X = 1\n")
    with pytest.raises(MigrationFileError, match=r"helpers\.py:1: .*no Migration class"):
        disk.read_directory("shop", None, tmp_path)
    (tmp_path / "helpers.py").unlink()
    assert disk.read_directory("shop", None, tmp_path).files == {}
