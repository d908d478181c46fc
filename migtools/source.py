"""Python source files (migrations, test modules) read and written as Python reads them.

Python decodes a source file by its PEP 263 coding cookie (``# -*- coding: latin-1 -*-`` on
one of the first two lines) or a UTF-8 byte-order mark, else as UTF-8; Django's loader
imports migration files that way, so every reader of migration source in migtools goes
through :func:`read`, and the renamer writes its edits back with :func:`encode` (the file's
own encoding, its byte-order mark kept).
"""

from __future__ import annotations

import codecs
import importlib.util
import io
import tokenize
from pathlib import Path


def decode(data: bytes, filename: str = "<source>") -> str:
    """``data`` decoded as Python decodes a source file (newlines made ``\\n``).

    Raises :class:`SyntaxError` (with the line) for an unknown coding cookie or bytes that
    are not in the declared encoding, as ``import`` does.
    """
    try:
        return importlib.util.decode_source(data)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        error = SyntaxError(f"bytes not in the file's encoding ({exc.encoding}): {exc.reason}")
        error.filename, error.lineno = filename, line
        raise error from None
    except SyntaxError as exc:
        exc.filename = filename
        raise


def read(path: Path | str) -> str:
    """The text of the Python file at ``path`` (:func:`decode`); :class:`OSError` or
    :class:`SyntaxError`."""
    return decode(Path(path).read_bytes(), str(path))


def encoding(text: str) -> str:
    """The encoding ``text`` declares for itself (its coding cookie), else ``utf-8``."""
    head = "".join(text.splitlines(keepends=True)[:2]).encode("utf-8", "surrogateescape")
    try:
        found, _ = tokenize.detect_encoding(io.BytesIO(head).readline)
    except SyntaxError:
        return "utf-8"
    return "utf-8" if found == "utf-8-sig" else found


def encode(text: str, like: Path | None = None) -> bytes:
    """``text`` encoded in the encoding it declares, with a UTF-8 byte-order mark when the
    file ``like`` (the one it replaces) starts with one."""
    declared = encoding(text)
    data = text.encode(declared)
    if declared == "utf-8" and like is not None and _has_bom(like):
        data = codecs.BOM_UTF8 + data
    return data


def _has_bom(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(3) == codecs.BOM_UTF8
    except OSError:
        return False
