"""``verify_migrations [APP [NAME]]``: every finding for a set of migrations, in one pass."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from migtools.management.base import MigtoolsCommandMixin
from migtools.rules import Finding, Level


def _where(f: Finding) -> str:
    if f.path:
        try:
            path = str(Path(f.path).relative_to(Path.cwd()))
        except ValueError:
            path = f.path
        return f"{path}:{f.line or 1}"
    return f"{f.app_label}.{f.migration_name}"


def _github_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


class Command(MigtoolsCommandMixin, BaseCommand):
    help = (
        "Checks migrations against migtools' rules (operations and their PostgreSQL SQL) in "
        "one pass. Exits 1 when an error-level finding is reported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", nargs="?", help="Only this app (default: managed apps).")
        parser.add_argument("migration_name", nargs="?", help="Only this migration of APP.")
        parser.add_argument(
            "--since",
            metavar="GIT_REF",
            help="Only migrations whose files were added or changed since GIT_REF.",
        )
        parser.add_argument(
            "--unapplied", action="store_true", help="Only migrations not applied yet."
        )
        parser.add_argument(
            "--format", choices=("text", "json", "github"), default="text", dest="fmt"
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            choices=tuple(connections),
            help="The database whose SQL is judged (default: 'default').",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from migtools.verify import verify

        if options["migration_name"] and not options["app_label"]:
            raise CommandError("NAME needs APP.", returncode=2)
        connection = connections[options["database"]]
        fmt = options["fmt"]
        progress = None
        if fmt == "text" and sys.stderr.isatty() and options["verbosity"] >= 1:
            progress = self._progress
        report = verify(
            connection,
            app_label=options["app_label"],
            name=options["migration_name"],
            since=options["since"],
            unapplied=options["unapplied"],
            progress=progress,
        )
        if progress is not None:
            self.stderr.write("\r\033[K", ending="")
        findings = sorted(
            report.findings,
            key=lambda f: (f.app_label, f.migration_name, f.operation_index or -1),
        )
        count = len(report.migrations)
        summary = (
            f"{count} migration{'s' if count != 1 else ''} verified: "
            f"{report.errors} error{'s' if report.errors != 1 else ''}, "
            f"{report.warnings} warning{'s' if report.warnings != 1 else ''}."
        )
        if fmt == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "migrations": count,
                        "errors": report.errors,
                        "warnings": report.warnings,
                        "findings": [f.as_dict() for f in findings],
                    },
                    indent=2,
                )
            )
        elif fmt == "github":
            for f in findings:
                kind = "error" if f.level is Level.ERROR else "warning"
                props = [f"title={_github_escape('migtools ' + f.rule_id, prop=True)}"]
                if f.path:
                    props.insert(
                        0, f"file={_github_escape(_where(f).rsplit(':', 1)[0], prop=True)}"
                    )
                    props.insert(1, f"line={f.line or 1}")
                body = f"{f.message}\n{f.rule.recipe[0]}"
                if f.sql:
                    body += f"\nSQL: {f.sql}"
                self.stdout.write(f"::{kind} {','.join(props)}::{_github_escape(body)}")
            self.stdout.write(summary)
        else:
            for f in findings:
                style = self.style.ERROR if f.level is Level.ERROR else self.style.WARNING
                op = (
                    f" (operation {(f.operation_index or 0) + 1}: {f.operation})"
                    if f.operation
                    else ""
                )
                self.stdout.write(
                    f"{_where(f)}: {style(str(f.level))}: [{f.rule_id}] "
                    f"{f.app_label}.{f.migration_name}{op}: {f.message}"
                )
                if f.sql:
                    self.stdout.write(f"    {' '.join(f.sql.split())}")
                if options["verbosity"] >= 2:
                    self.stdout.write(f"    why: {f.rule.why}")
                    for n, step in enumerate(f.rule.recipe, 1):
                        self.stdout.write(f"    {n}. {step}")
            self.stdout.write(summary)
        if report.errors:
            raise CommandError(
                f"{report.errors} error-level finding(s). Fix them, or silence one with "
                "`ignore_rules = {'<rule id>': '<reason>'}` on the migration.",
                returncode=1,
            )

    def _progress(self, done: int, total: int) -> None:
        if total < 50 or (done % 20 and done != total):
            return
        width = 30
        filled = width * done // total
        self.stderr.write(
            f"\rverifying [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending=""
        )
        self.stderr.flush()
