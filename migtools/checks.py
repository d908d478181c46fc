"""System checks on migtools' settings (``manage.py check``), ids ``migtools.E1xx``/``W1xx``.

Errors, unlike the lockfile checks' Warnings: a misread setting (a lock timeout of 5 ms, an
app list read letter by letter) would change what ``migrate`` does to the database, and Django
runs these checks before ``migrate``, ``makemigrations`` and ``verify_migrations`` do anything.
The values themselves are validated in :mod:`migtools.conf`; this module adds what needs the
rule catalogue or the migration files.

- ``E101``-``E117``: one per setting (``conf.SETTINGS``);
- ``W101``: a ``MIGTOOLS_*`` name migtools does not read (a typo);
- ``W102``: a migration's ``ignore_rules`` names a rule that does not exist;
- ``W103``: ``MIGTOOLS_BASELINE`` names a migration that does not exist.
"""

from __future__ import annotations

import ast
from typing import Any

from django.core import checks

from migtools import conf
from migtools import source as pysource
from migtools.errors import MigtoolsError, SettingsError
from migtools.rules.catalogue import CATALOGUE, Level

TAG = "migtools"


def register() -> None:
    checks.register(check_settings, TAG)
    checks.register(check_ignore_rules, TAG)


def _as_check(exc: SettingsError) -> checks.CheckMessage:
    return checks.Error(
        f"{exc.setting} = {exc.value!r}: {exc.problem}.", hint=exc.hint, id=exc.check_id
    )


def _rules() -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    levels = ", ".join(f"'{level}'" for level in Level)
    for rule_id, level in conf.rule_levels().items():
        if rule_id not in CATALOGUE:
            messages.append(
                checks.Error(
                    f"MIGTOOLS_RULES names an unknown rule {rule_id!r}.",
                    hint=_unknown_rule_hint(rule_id),
                    id=conf.check_id("RULES"),
                )
            )
        elif level not in {str(x) for x in Level}:
            messages.append(
                checks.Error(
                    f"MIGTOOLS_RULES[{rule_id!r}] = {level!r}: not a level.",
                    hint=f"Use one of {levels}.",
                    id=conf.check_id("RULES"),
                )
            )
    return messages


def _unknown_rule_hint(rule_id: str) -> str:
    from migtools.rules.catalogue import EXPLAIN, closest

    near = closest(rule_id)
    if near is None:
        return "Rule ids are listed in docs/rules.md."
    return f"Did you mean {near!r}? `{EXPLAIN.format(rule=near)}` explains it."


def _baseline() -> list[checks.CheckMessage]:
    from migtools.graph import disk

    messages: list[checks.CheckMessage] = []
    for label, name in conf.baseline().items():
        try:
            graph = disk.load([label])
        except MigtoolsError:
            continue  # the graph checks report an unreadable graph
        if (label, name) not in graph.files:
            # A Warning: it exempts nothing (the safe direction), and a project may name its
            # baseline before the file lands.
            messages.append(
                checks.Warning(
                    f"MIGTOOLS_BASELINE[{label!r}] = {name!r}: app '{label}' has no such "
                    "migration, so none of its history is exempted.",
                    hint="Give the full name of an existing migration, e.g. '0042_last_unchecked'.",
                    id="migtools.W103",
                )
            )
    return messages


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors = conf.validate()
    messages: list[checks.CheckMessage] = [_as_check(exc) for exc in errors]
    failed = {exc.setting for exc in errors}
    if "MIGTOOLS_RULES" not in failed:
        messages.extend(_rules())
    if "MIGTOOLS_BASELINE" not in failed and "MIGTOOLS_APPS" not in failed:
        messages.extend(_baseline())
    messages.extend(
        checks.Warning(
            f"{name} is not a migtools setting; it is ignored.",
            hint="Check its spelling against docs/settings.md.",
            id="migtools.W101",
        )
        for name in conf.unknown_names()
    )
    return messages


def _ignored_rule_ids(source: str) -> tuple[tuple[str, int], ...]:
    """``(rule id, line)`` of the literal keys of ``ignore_rules = {...}`` in a class body."""
    from migtools.graph.disk import ignored_rule_ids

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()  # the graph checks report the file
    return ignored_rule_ids(tree)


def check_ignore_rules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A rule id in a migration's ``ignore_rules`` that the catalogue does not know silences
    nothing: most likely a typo, and the rule it meant still fires (or is silently on)."""
    from migtools.graph import disk

    try:
        graph = disk.load()
    except MigtoolsError:
        return []  # a bad setting or an unreadable graph: reported by the other checks
    messages: list[checks.CheckMessage] = []
    for label in sorted(graph.apps):
        app = graph.apps[label]
        for name in sorted(app.files):
            found = app.files[name]
            path = found.path
            ignored = found.ignored_rules
            if app.warnings:  # imported, not parsed (too dynamic to read): read the source
                try:
                    source = pysource.read(path)
                except (OSError, SyntaxError):
                    continue
                if "ignore_rules" not in source:
                    continue
                ignored = _ignored_rule_ids(source)
            for rule_id, line in ignored:
                if rule_id not in CATALOGUE:
                    messages.append(
                        checks.Warning(
                            f"{path}:{line}: ignore_rules names an unknown rule {rule_id!r}; "
                            "it silences nothing.",
                            hint=_unknown_rule_hint(rule_id),
                            obj=f"{label}.{name}",
                            id="migtools.W102",
                        )
                    )
    return messages
