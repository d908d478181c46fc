"""Random branch/merge scenarios: whatever the apps, chain lengths, cross-app dependencies, commit
layout and git flow (merge either way, rebase), after update_migration each app has one leaf, the
lockfile checks, and Django's loader loads the graph; for a sample, ``migrate`` from zero on
PostgreSQL succeeds.

``MIGTOOLS_HYPOTHESIS_EXAMPLES`` sets the number of examples (default 100), e.g.
``MIGTOOLS_HYPOTHESIS_EXAMPLES=3000 .venv/bin/pytest tests/test_update_migration_hypothesis.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_update_migration import APPS, MigRepo, run_command

EXAMPLES = int(os.environ.get("MIGTOOLS_HYPOTHESIS_EXAMPLES", "100"))
MIGRATE_EVERY = int(os.environ.get("MIGTOOLS_HYPOTHESIS_MIGRATE_EVERY", "6"))

pytestmark = pytest.mark.django_db(databases="__all__")

Key = tuple[str, str]


@dataclass
class Scenario:
    apps: list[str]
    base: dict[str, int]
    main: list[tuple[str, list[Key]]]  # (app, extra cross-app deps) in creation order
    mine: list[tuple[str, list[Key]]]
    flow: str
    commit_each: bool
    squash_main: bool = False
    names: dict[str, list[str]] = field(default_factory=dict)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    apps = sorted(draw(st.lists(st.sampled_from(APPS), min_size=1, max_size=3, unique=True)))
    base = {app: draw(st.integers(1, 2)) for app in apps}
    flow = draw(st.sampled_from(["merge-main-into-branch", "merge-branch-into-main", "rebase"]))
    commit_each = draw(st.booleans())

    def side(max_total: int, prefix: str) -> list[tuple[str, list[Key]]]:
        order = draw(st.lists(st.sampled_from(apps), max_size=max_total))
        made: list[Key] = [
            (app, f"{n:04d}_step{n}") for app in apps for n in range(1, base[app] + 1)
        ]
        counts = dict(base)
        out: list[tuple[str, list[Key]]] = []
        for app in order:
            counts[app] += 1
            extra: list[Key] = []
            others = [k for k in made if k[0] != app]
            if others and draw(st.booleans()):
                extra.append(draw(st.sampled_from(others)))
            out.append((app, extra))
            made.append((app, f"{counts[app]:04d}_{prefix}{counts[app]}"))
        return out

    main = side(4, "main")
    mine = side(6, "mine")
    return Scenario(apps, base, main, mine, flow, commit_each, draw(st.booleans()))


def build(repo: MigRepo, scenario: Scenario) -> None:
    leaf: dict[str, str] = {}
    for app in scenario.apps:
        for n in range(1, scenario.base[app] + 1):
            name = f"{n:04d}_step{n}"
            repo.add(app, name, [(app, leaf[app])] if app in leaf else [])
            leaf[app] = name
    repo.write_lockfile()
    repo.commit("base")
    base_leaf = dict(leaf)

    def add_side(items: list[tuple[str, list[Key]]], prefix: str) -> None:
        current = dict(base_leaf)
        counts = dict(scenario.base)
        for app, extra in items:
            counts[app] += 1
            name = f"{counts[app]:04d}_{prefix}{counts[app]}"
            repo.add(app, name, [(app, current[app]), *extra])
            current[app] = name
            if scenario.commit_each:
                repo.write_lockfile()
                repo.commit(f"{prefix} {app}.{name}")
        # (a squash stays simple: only when main's new migrations have no cross-app links)
        if prefix == "main" and scenario.squash_main and not any(e for _a, e in items):
            squash(current, counts)
        if items and not scenario.commit_each:
            repo.write_lockfile()
            repo.commit(prefix)

    def squash(current: dict[str, str], counts: dict[str, int]) -> None:
        """Main squashes its new migrations of each app that got two or more (originals kept):
        main's leaf is then a squashed migration."""
        squashed = False
        for app in scenario.apps:
            added = counts[app] - scenario.base[app]
            if added < 2:
                continue
            squashed = True
            names = [f"{n:04d}_main{n}" for n in range(scenario.base[app] + 1, counts[app] + 1)]
            name = f"{names[0][:4]}_squashed_{names[-1]}"
            repo.add(app, name, [(app, base_leaf[app])], replaces=[(app, n) for n in names])
            current[app] = name
        if squashed and scenario.commit_each:
            repo.write_lockfile()
            repo.commit("main squash")

    repo.git("checkout", "-q", "-b", "feature")
    add_side(scenario.mine, "mine")
    repo.git("checkout", "-q", "main")
    add_side(scenario.main, "main")


def resolve(repo: MigRepo, scenario: Scenario) -> None:
    if scenario.flow == "merge-branch-into-main":
        proc = repo.git("merge", "--no-edit", "feature", check=False)
        continue_args = ("merge", "--continue")
    else:
        repo.git("checkout", "-q", "feature")
        if scenario.flow == "rebase":
            proc = repo.git("rebase", "main", check=False)
            continue_args = ("rebase", "--continue")
        else:
            proc = repo.git("merge", "--no-edit", "main", check=False)
            continue_args = ("merge", "--continue")
    stops = 0
    while proc.returncode != 0:
        stops += 1
        assert stops <= 10, proc.stdout + proc.stderr
        assert "CONFLICT" in proc.stdout, proc.stdout + proc.stderr
        out, err, code = repo.run()
        assert code == 0, err
        assert out.endswith(f"Next: git {' '.join(continue_args)}\n"), out
        proc = repo.git(*continue_args, check=False)
    # A later commit of a rebase that did not stop may still name a migration renamed at an
    # earlier stop; one more run fixes that (and otherwise finds nothing to do).
    _out, err, code = repo.run()
    assert code == 0, err


_examples = {"n": 0}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_random_branch_merges_resolve(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    tmp = Path(tempfile.mkdtemp(prefix="migtools-hyp-"))
    try:
        with MigRepo(tmp / "repo", apps=scenario.apps).active() as repo:
            build(repo, scenario)
            resolve(repo, scenario)
            repo.check_resolved()
            _examples["n"] += 1
            if _examples["n"] % MIGRATE_EVERY == 1 or MIGRATE_EVERY == 1:
                repo.forget_modules()
                with transaction.atomic():
                    out, err, code = run_command("migrate")
                    assert code == 0, err
                    for app in scenario.apps:
                        assert f"Applying {app}." in out
                    transaction.set_rollback(True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
