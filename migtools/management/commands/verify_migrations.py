"""``verify_migrations [APP [NAME]]``: every finding for a set of migrations, in one pass."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections
from django.db.utils import OperationalError

from migtools.errors import DatabaseUnavailableError, FindingsError, UsageError
from migtools.graph import checks as graph_checks
from migtools.management.base import MigtoolsCommandMixin
from migtools.verifier import report as report_formats


class Command(MigtoolsCommandMixin, BaseCommand):
    # migtools' own checks (settings, lockfile, ignore_rules); like Django's sqlmigrate and
    # showmigrations, a command that reads migrations leaves the models' checks to `check`,
    # `migrate` and `runserver` (on 5,000 fields they cost more than judging one migration).
    requires_system_checks = [graph_checks.TAG]  # noqa: RUF012 - Django's declaration
    help = (
        "Checks migrations against migtools' rules (operations and their PostgreSQL SQL) in "
        "one pass. Exits 1 when an error-level finding is reported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", nargs="?", help="Only this app (default: managed apps).")
        parser.add_argument("migration_name", nargs="?", help="Only this migration of APP.")
        parser.add_argument(
            "--files",
            nargs="+",
            metavar="PATH",
            help="Only the migrations defined in these files (what pre-commit passes). "
            "Migration files git does not track and that are not named are left out of the "
            "graph; those the last commit lacks deploy together.",
        )
        parser.add_argument(
            "--since",
            metavar="GIT_REF",
            help="Only migrations whose files were added or changed since GIT_REF (since "
            "where the branch forked from it); a migration GIT_REF already holds whose "
            "operations changed is a migration-edited-after-merge finding.",
        )
        parser.add_argument(
            "--until",
            metavar="GIT_REF",
            help="With --since: changes up to this commit (CI: the pull request's head) "
            "rather than the working tree; untracked files are left out.",
        )
        parser.add_argument(
            "--unapplied", action="store_true", help="Only migrations not applied yet."
        )
        parser.add_argument(
            "--format",
            choices=("text", "json", "github", "gitlab", "markdown"),
            default="text",
            dest="fmt",
            help="text (default); json; github (Actions annotations); gitlab (code-quality "
            "report); markdown (a pull-request comment body).",
        )
        parser.add_argument(
            "--path-prefix",
            default="",
            metavar="P",
            help="Put P/ before every file path of the github, gitlab, json and markdown "
            "formats (paths are relative to the repository root).",
        )
        parser.add_argument(
            "--explain",
            metavar="RULE",
            help="Print why RULE matters and its full safe recipe (from the installed package) "
            "and exit.",
        )
        parser.add_argument(
            "--database",
            default=None,
            choices=tuple(connections),
            help="The database whose SQL is judged (default: every alias of DATABASES, each "
            "migration on the databases the router lets it run on).",
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        from migtools.graph import disk

        if options.get("explain") is not None:
            options["skip_checks"] = True  # text from the package: nothing to check
        # The graph read once for the system checks and the selection; what Django set up
        # is not walked by each garbage collection meanwhile.
        with disk.files_unchanged(), disk.settled_objects():
            return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        from migtools import project
        from migtools.verifier import offline
        from migtools.verifier.run import merge, verify
        from migtools.verifier.select import named_files

        if options["explain"] is not None:
            self._explain(options["explain"])
            return
        if options["migration_name"] and not options["app_label"]:
            raise UsageError("NAME needs APP.")
        if options["until"] and not options["since"]:
            raise UsageError("--until needs --since.")
        files = named_files(options["files"]) if options["files"] is not None else None
        fmt = options["fmt"]
        progress = None
        if fmt == "text" and sys.stderr.isatty() and options["verbosity"] >= 1:
            progress = self._progress
        aliases = [options["database"]] if options["database"] else list(connections)
        reports = []
        for alias in aliases:
            with offline.reachable_or_offline(alias) as (connection, offline_run):
                if offline_run is not None:
                    if options["unapplied"]:
                        raise DatabaseUnavailableError(
                            f"--unapplied needs the database: {offline_run.reason}."
                        )
                    self.stderr.write(offline_run.line())
                try:
                    reports.append(
                        verify(
                            connection,
                            app_label=options["app_label"],
                            name=options["migration_name"],
                            since=options["since"],
                            until=options["until"],
                            files=files,
                            unapplied=options["unapplied"],
                            progress=progress,
                        )
                    )
                except OperationalError as exc:
                    raise DatabaseUnavailableError(offline.first_line(exc)) from None
        report = reports[0] if len(reports) == 1 else merge(reports)
        if progress is not None:
            self.stderr.write("\r\033[K", ending="")
        if report.cached and options["verbosity"] >= 2:
            self.stderr.write(
                f"migtools: the state before the first selected migration came from the "
                f"cache ({report.cached:,} migrations neither imported nor replayed)."
            )
        paths = report_formats.Paths(str(project.root()), options["path_prefix"])
        if fmt == "json":
            self.stdout.write(report_formats.as_json(report, paths=paths))
        elif fmt == "github":
            self.stdout.write("\n".join(self._github(report, paths)))
        elif fmt == "gitlab":
            self.stdout.write(report_formats.as_gitlab(report, paths=paths))
        elif fmt == "markdown":
            self.stdout.write(report_formats.as_markdown(report, paths=paths), ending="")
        else:
            lines = report_formats.as_text(
                report,
                verbosity=options["verbosity"],
                error_style=self.style.ERROR,
                warning_style=self.style.WARNING,
            )
            self.stdout.write("\n".join(lines))
        if report.errors:
            raise FindingsError(
                f"{report.errors} error-level finding(s). Fix them, or silence one with "
                "`ignore_rules = {'<rule id>': '<reason>'}` on the migration."
            )

    def _explain(self, rule_id: str) -> None:
        from migtools.rules.catalogue import CATALOGUE, closest, explanation

        if rule_id not in CATALOGUE:
            near = closest(rule_id)
            raise UsageError(
                f"Unknown rule {rule_id!r}"
                + (f"; did you mean {near!r}?" if near else "; docs/rules.md lists them.")
            )
        self.stdout.write(explanation(rule_id))

    def _github(self, report: report_formats.Report, paths: report_formats.Paths) -> list[str]:
        """Annotations; past GitHub's 10 per level and step, the rest go to the job summary
        (``$GITHUB_STEP_SUMMARY``) when the step has one."""
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if not summary_file:
            return report_formats.as_github(report, paths=paths)
        moved = report_formats.github_step_summary(report, paths=paths)
        if moved is None:
            return report_formats.as_github(report, paths=paths)
        try:
            with open(summary_file, "a", encoding="utf-8") as out:
                out.write(moved)
        except OSError as exc:
            self.stderr.write(f"GITHUB_STEP_SUMMARY: cannot write {summary_file}: {exc}")
            return report_formats.as_github(report, paths=paths)
        return report_formats.as_github(
            report, paths=paths, limit=report_formats.GITHUB_ANNOTATIONS
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
