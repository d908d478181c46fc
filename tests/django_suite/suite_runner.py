"""A ``DiscoverRunner`` that also writes each test's outcome to ``DJANGO_SUITE_OUTCOMES`` (JSON:
test id -> [outcome, one-line detail]), in parallel runs too (the parent replays every event)."""

from __future__ import annotations

import json
import os
import traceback
import unittest
from typing import Any

from django.test.runner import DiscoverRunner


def _detail(err: Any) -> str:
    if not err:
        return ""
    if isinstance(err, str):  # a skip reason
        return err.strip().splitlines()[-1] if err.strip() else ""
    lines = "".join(traceback.format_exception_only(err[0], err[1])).strip().splitlines()
    return lines[-1][:300] if lines else ""


class OutcomeResult(unittest.TextTestResult):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, list[str]] = {}

    def _record(self, test: Any, outcome: str, err: Any = None) -> None:
        key = test.id()
        previous = self.outcomes.get(key)
        if previous and previous[0] in ("FAIL", "ERROR") and outcome == "ok":
            return  # a failed subtest makes the whole test fail
        self.outcomes[key] = [outcome, _detail(err)]

    def addSuccess(self, test: Any) -> None:
        super().addSuccess(test)
        self._record(test, "ok")

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "FAIL", err)

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self._record(test, "ERROR", err)

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, "skip", reason)

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, "expected failure")

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, "unexpected success")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._record(test, "FAIL" if failed else "ERROR", err)


class OutcomeRunner(DiscoverRunner):
    def get_resultclass(self) -> Any:
        return OutcomeResult

    def run_suite(self, suite: Any, **kwargs: Any) -> Any:
        result = super().run_suite(suite, **kwargs)
        path = os.environ.get("DJANGO_SUITE_OUTCOMES")
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(getattr(result, "outcomes", {}), out, indent=0, sort_keys=True)
        return result
