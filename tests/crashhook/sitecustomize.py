"""Injected (``PYTHONPATH``) into the ``update_migration`` processes of the crash-safety tests
(``tests/test_renamer_crash.py``): with ``MIGTOOLS_TEST_KILL_AT=N`` the process SIGKILLs itself
before the Nth write or git event of the renamer (``migtools.renamer.apply._event``).

The package itself has no kill switch: this wraps the event function when the module is
imported, in the child process only.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import signal
import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

KILL_AT = "MIGTOOLS_TEST_KILL_AT"
TARGET = "migtools.renamer.apply"


def _wrap(module: ModuleType, kill_at: int) -> None:
    original: Callable[..., Any] = module._event
    seen = 0

    def _event(*args: Any, **kwargs: Any) -> Any:
        nonlocal seen
        seen += 1
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    module._event = _event


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, kill_at: int) -> None:
        self.kill_at = kill_at

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module
        kill_at = self.kill_at

        def exec_and_wrap(module: ModuleType) -> None:
            exec_module(module)
            _wrap(module, kill_at)

        loader.exec_module = exec_and_wrap  # type: ignore[method-assign]
        return spec


_value = os.environ.get(KILL_AT, "")
if _value.isdigit():
    sys.meta_path.insert(0, _Finder(int(_value)))
