"""What a verifier run found, and every output format of it (text, json, github, gitlab,
markdown)."""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from migtools.rules.catalogue import Finding, Level, hint

Node = tuple[str, str]

# The first line of the markdown body, for a CI job to find its own comment and update it.
MARKDOWN_MARKER = "<!-- migtools:verify_migrations -->"
# The version of the JSON output's shape (``"schema"``): bumped when a key changes meaning or
# goes away (new keys do not bump it). 1: paths relative to the repository root.
JSON_SCHEMA = 1
# GitHub refuses comment bodies over 65,536 characters; stay clear of it.
MARKDOWN_LIMIT = 65_000
# GitHub shows at most this many annotations of each level per step, and drops the rest.
GITHUB_ANNOTATIONS = 10


@dataclass
class MigrationReport:
    """One verified migration: its collected SQL (as sqlmigrate prints it) and findings."""

    node: Node
    path: str | None
    entries: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    atomic: bool = True
    op_starts: list[int] = field(default_factory=list)  # entry index where each op begins

    def annotated(self, *, hints: bool = False) -> list[str]:
        """``entries`` with each finding as a ``-- migtools: <id>: <message>`` line before
        the statement it concerns (before the operation's header when it has no statement;
        at the top for findings about the whole migration). With ``hints`` (sqlmigrate),
        each is followed by the recipe's first step and the ``--explain`` pointer."""
        before: dict[int, list[Finding]] = {}
        for f in self.findings:
            at = 0
            if f.operation_index is not None and f.operation_index < len(self.op_starts):
                start = self.op_starts[f.operation_index]
                end = (
                    self.op_starts[f.operation_index + 1]
                    if f.operation_index + 1 < len(self.op_starts)
                    else len(self.entries)
                )
                at = start
                if f.sql:
                    needle = f.sql.strip()
                    tail = range(self.op_starts[-1], len(self.entries))
                    for i in [*range(start, end), *tail]:
                        if needle in self.entries[i]:
                            at = i
                            break
            before.setdefault(at, []).append(f)

        def comment(f: Finding) -> list[str]:
            lines = [f"-- migtools: {f.rule_id}{f.on_database()}: {' '.join(f.message.split())}"]
            if hints:
                lines.append(f"-- migtools:   fix: {f.rule.first_step}")
                lines.append(f"-- migtools:   {hint(f.rule_id)}")
            return lines

        out: list[str] = []
        for i, entry in enumerate(self.entries):
            for f in before.get(i, ()):
                out.extend(comment(f))
            out.append(entry)
        if not self.entries:
            for f in before.get(0, ()):
                out.extend(comment(f))
        return out


@dataclass
class Report:
    migrations: list[MigrationReport] = field(default_factory=list)
    # With one_deploy: the tables the selection creates (new for the whole deploy).
    new_tables: frozenset[str] = frozenset()
    # Migrations whose replay the state cache saved (migtools.verifier.statecache).
    cached: int = 0

    @property
    def findings(self) -> list[Finding]:
        return [f for m in self.migrations for f in m.findings]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.level is Level.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.level is Level.WARNING)


# -- output formats (every one here; the command only prints what they return) ------------

Style = Callable[[str], str]


def _plain(text: str) -> str:
    return text


def ordered(report: Report) -> list[Finding]:
    """The findings in the order every format prints them: by app, migration, operation."""
    return sorted(
        report.findings,
        key=lambda f: (f.app_label, f.migration_name, f.operation_index or -1),
    )


def summary(report: Report) -> str:
    count = len(report.migrations)
    return (
        f"{count} migration{'s' if count != 1 else ''} verified: "
        f"{report.errors} error{'s' if report.errors != 1 else ''}, "
        f"{report.warnings} warning{'s' if report.warnings != 1 else ''}."
    )


def where(f: Finding) -> str:
    """``path:line`` (relative to the current directory when below it), else ``app.name``."""
    if f.path:
        return f"{shown(f.path)}:{f.line or 1}"
    return f"{f.app_label}.{f.migration_name}"


def shown(path: str) -> str:
    """``path`` relative to the current directory when below it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@dataclass(frozen=True)
class Paths:
    """How the formats for reviewers (github, gitlab, json, markdown) name files: relative
    to ``root`` (the repository's root, whatever the current directory), behind ``prefix``
    (``--path-prefix``, for a repository checked out below the directory the CI tool reads
    paths from). Without ``root``, relative to the current directory."""

    root: str | None = None
    prefix: str = ""

    def show(self, path: str) -> str:
        if self.root is None:
            relative = shown(path)
        else:
            relative = os.path.relpath(path, self.root)
            if relative == ".." or relative.startswith(".." + os.sep):
                return path  # outside the repository: an installed app's migration
        relative = relative.replace(os.sep, "/")
        return posixpath.join(self.prefix, relative) if self.prefix else relative


CWD = Paths()


def as_text(
    report: Report,
    *,
    verbosity: int = 1,
    error_style: Style = _plain,
    warning_style: Style = _plain,
) -> list[str]:
    lines: list[str] = []
    for f in ordered(report):
        style = error_style if f.level is Level.ERROR else warning_style
        op = f" (operation {(f.operation_index or 0) + 1}: {f.operation})" if f.operation else ""
        lines.append(
            f"{where(f)}: {style(str(f.level))}: [{f.rule_id}] "
            f"{f.app_label}.{f.migration_name}{f.on_database()}{op}: {f.message}"
        )
        if f.sql:
            lines.append(f"    {' '.join(f.sql.split())}")
        if verbosity >= 2:
            lines.append(f"    why: {f.rule.why}")
            lines.extend(f"    {n}. {step}" for n, step in enumerate(f.rule.recipe, 1))
        else:
            lines.append(f"    fix: {f.rule.first_step}")
            lines.append(f"    {hint(f.rule_id)}")
    lines.append(summary(report))
    return lines


def as_json(report: Report, *, paths: Paths = CWD) -> str:
    """``{"schema": JSON_SCHEMA, "migrations", "errors", "warnings", "findings": [...]}``;
    each finding's ``path`` is relative to the repository root (see :class:`Paths`). A
    finding that holds on several databases alike is one record per database (its
    ``database`` is one alias, as a machine reading per database expects); ``errors`` and
    ``warnings`` count the records."""
    findings = []
    for f in ordered(report):
        item = f.as_dict()
        if f.path:
            item["path"] = paths.show(f.path)
        for alias in f.databases or (f.database,):
            findings.append({**item, "database": alias})
    return json.dumps(
        {
            "schema": JSON_SCHEMA,
            "migrations": len(report.migrations),
            "errors": sum(1 for item in findings if item["level"] == str(Level.ERROR)),
            "warnings": sum(1 for item in findings if item["level"] == str(Level.WARNING)),
            "findings": findings,
        },
        indent=2,
    )


def _github_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _github_split(report: Report, limit: int | None) -> tuple[list[Finding], list[Finding]]:
    """The findings GitHub will show as annotations, and those past ``limit`` per level."""
    shown_: list[Finding] = []
    moved: list[Finding] = []
    count: dict[Level, int] = {}
    for f in ordered(report):
        count[f.level] = count.get(f.level, 0) + 1
        (moved if limit is not None and count[f.level] > limit else shown_).append(f)
    return shown_, moved


def as_github(report: Report, *, paths: Paths = CWD, limit: int | None = None) -> list[str]:
    """GitHub Actions workflow commands (``::error file=…,line=…::…``), one per finding.
    With ``limit`` (GitHub shows 10 per level and step), the findings past it are left out
    (:func:`github_step_summary` holds them) and the last annotation of that level says
    how many."""
    annotated, moved = _github_split(report, limit)
    lines: list[str] = []
    last = {f.level: i for i, f in enumerate(annotated)}
    for i, f in enumerate(annotated):
        kind = "error" if f.level is Level.ERROR else "warning"
        props = [f"title={_github_escape('migtools ' + f.rule_id, prop=True)}"]
        if f.path:
            props.insert(0, f"file={_github_escape(paths.show(f.path), prop=True)}")
            props.insert(1, f"line={f.line or 1}")
        on = f.on_database().strip()[1:-1]  # "database 'x'", or empty with one database
        body = f"{on[:1].upper()}{on[1:]}: " if on else ""
        body += f"{f.message}\nSafe recipe:\n{_steps(f)}"
        if f.sql:
            body += f"\nSQL: {f.sql}"
        body += f"\nWhy: {f.rule.why}"
        more = sum(1 for m in moved if m.level is f.level)
        if more and last[f.level] == i:
            body += (
                f"\n\n{more} more {kind}{'s' if more != 1 else ''} moved to the job summary "
                f"(GitHub shows {limit} {kind} annotations per step)."
            )
        lines.append(f"::{kind} {','.join(props)}::{_github_escape(body)}")
    lines.append(summary(report))
    return lines


def github_step_summary(
    report: Report, *, paths: Paths = CWD, limit: int = GITHUB_ANNOTATIONS
) -> str | None:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: the findings :func:`as_github` left out past
    ``limit`` (None when none were)."""
    _annotated, moved = _github_split(report, limit)
    if not moved:
        return None
    lines = [
        f"### migtools: {len(moved)} finding{'s' if len(moved) != 1 else ''} past GitHub's "
        f"{limit} annotations per level",
        "",
        "| Level | Rule | Where | Finding |",
        "| --- | --- | --- | --- |",
    ]
    for f in moved:
        place = f"{paths.show(f.path)}:{f.line or 1}" if f.path else ""
        lines.append(
            f"| {f.level} | `{f.rule_id}` | `{place}` | "
            f"`{f.app_label}.{f.migration_name}`{f.on_database()}: {_cell(f.message)} |"
        )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """``text`` on one line, safe inside a markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _steps(f: Finding, indent: str = "") -> str:
    return "\n".join(f"{indent}{n}. {step}" for n, step in enumerate(f.rule.recipe, 1))


def as_gitlab(report: Report, *, paths: Paths = CWD) -> str:
    """A GitLab code-quality report (``artifacts: reports: codequality``): one issue per
    finding, with a fingerprint unique per finding and stable across runs and machines
    (rule, file relative to the repository, migration, operation, statement, SQL, and the
    occurrence of that combination)."""
    issues = []
    seen: dict[str, int] = {}
    for f in ordered(report):
        path = paths.show(f.path) if f.path else f"{f.app_label}.{f.migration_name}"
        identity = "\0".join(
            str(part)
            for part in (
                f.rule_id,
                path,
                f"{f.app_label}.{f.migration_name}",
                f.operation_index,
                f.statement_index,
                " ".join((f.sql or "").split()),
            )
        )
        occurrence = seen.get(identity, 0)
        seen[identity] = occurrence + 1
        issues.append(
            {
                "type": "issue",
                "check_name": f.rule_id,
                "description": f"{f.app_label}.{f.migration_name}{f.on_database()}: {f.message}",
                "content": {"body": f"{f.rule.why}\n\nSafe recipe:\n{_steps(f)}"},
                "categories": ["Bug Risk"],
                "severity": "major" if f.level is Level.ERROR else "minor",
                "fingerprint": hashlib.sha256(f"{identity}\0{occurrence}".encode()).hexdigest(),
                "location": {"path": path, "lines": {"begin": f.line or 1}},
            }
        )
    return json.dumps(issues, indent=2)


def _fence(text: str, language: str = "") -> list[str]:
    """``text`` in a code block whose fence no line of it can close."""
    fence = "```"
    while fence in text:
        fence += "`"
    return [f"{fence}{language}", text, fence]


def _op(f: Finding) -> str:
    return f" (operation {(f.operation_index or 0) + 1}: {f.operation})" if f.operation else ""


def as_markdown(report: Report, *, paths: Paths = CWD, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment body: the summary, then per migration its SQL (with the
    findings as ``-- migtools:`` comments where they apply) and each finding with why and the
    full recipe. Starts with :data:`MARKDOWN_MARKER`.

    Longer than ``limit`` characters (GitHub refuses bodies over 65,536), it becomes
    :func:`_compact_markdown`: a table per migration, every finding on one line, and the SQL
    folded, cut where the room ends, with a note saying what was left out."""
    body = _full_markdown(report, paths)
    if len(body) <= limit:
        return body
    return _compact_markdown(report, paths, limit, len(body))


def _full_markdown(report: Report, paths: Paths) -> str:
    lines = [MARKDOWN_MARKER, f"### migtools: {summary(report)}", ""]
    if not report.migrations:
        lines.append("No migrations to verify.")
    for m in sorted(report.migrations, key=lambda m: m.node):
        label, name = m.node
        lines.append(f"#### `{label}.{name}`")
        if m.path:
            lines.append(f"`{paths.show(m.path)}`")
        lines.append("")
        sql = "\n".join(m.annotated()).strip() or "-- (no SQL)"
        lines.extend(_fence(sql, "sql"))
        lines.append("")
        if not m.findings:
            lines.extend(["No findings.", ""])
        for f in sorted(m.findings, key=lambda f: (f.operation_index or -1, f.rule_id)):
            lines.append(f"- **{f.level}** `{f.rule_id}`{f.on_database()}{_op(f)}: {f.message}")
            lines.append(f"  - Why: {f.rule.why}")
            lines.append("  - Safe recipe:")
            lines.append(_steps(f, indent="    "))
        if m.findings:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _compact_markdown(report: Report, paths: Paths, limit: int, full: int) -> str:
    migrations = sorted(report.migrations, key=lambda m: m.node)
    head = [
        MARKDOWN_MARKER,
        f"### migtools: {summary(report)}",
        "",
        f"The full report ({full:,} characters) is longer than a comment can be: each "
        "migration's findings are listed on one line (`manage.py verify_migrations --explain "
        "RULE` prints why and the safe recipe), and the SQL is folded below as far as it fits. The job log has everything.",
        "",
        "| Migration | File | Errors | Warnings |",
        "| --- | --- | ---: | ---: |",
    ]
    for m in migrations:
        errors = sum(1 for f in m.findings if f.level is Level.ERROR)
        warnings = sum(1 for f in m.findings if f.level is Level.WARNING)
        where_ = f"`{paths.show(m.path)}`" if m.path else ""
        head.append(f"| `{m.node[0]}.{m.node[1]}` | {where_} | {errors} | {warnings} |")
    head.append("")
    findings: list[str] = []
    for m in migrations:
        if not m.findings:
            continue
        findings.append(f"**`{m.node[0]}.{m.node[1]}`**")
        findings.append("")
        for f in sorted(m.findings, key=lambda f: (f.operation_index or -1, f.rule_id)):
            findings.append(
                f"- **{f.level}** `{f.rule_id}`{f.on_database()}{_op(f)}: {_cell(f.message)}"
            )
        findings.append("")
    text = "\n".join([*head, *findings])
    if len(text) > limit:  # findings alone overflow: keep what fits, count the rest
        return _cut_lines([*head, *findings], limit, "finding lines")
    room = limit - len(text) - 300  # kept for the note on what was left out
    # Room goes first to the SQL of migrations with findings, then to the rest; the blocks
    # are printed in plan order.
    blocks: dict[Node, str] = {}
    notes: dict[Node, str] = {}
    for m in sorted(migrations, key=lambda m: not m.findings):
        label = f"{m.node[0]}.{m.node[1]}"
        sql = "\n".join(m.annotated()).strip() or "-- (no SQL)"
        block = _details(label, sql)
        if len(block) + 1 <= room:
            blocks[m.node] = block
            room -= len(block) + 1
            continue
        statements = sql.splitlines()
        kept: list[str] = []
        size = len(_details(label, "")) + 40
        for line in statements:
            if size + len(line) + 1 > room - 80:
                break
            kept.append(line)
            size += len(line) + 1
        if len(kept) >= 3:
            cut = len(statements) - len(kept)
            blocks[m.node] = _details(label, "\n".join([*kept, f"-- ... {cut} more lines cut"]))
            note = f"`{label}` (cut after {len(kept)} of {len(statements)} lines)"
            room -= size
        else:
            note = f"`{label}` ({len(statements)} lines)"
        notes[m.node] = note
        room -= len(note) + 2
    order = [m.node for m in migrations]
    left_out = [notes[n] for n in order if n in notes]
    tail = ["#### SQL", "", *(blocks[n] for n in order if n in blocks)]
    if left_out:
        tail += [
            "",
            f"_SQL left out for room: {', '.join(left_out)}. Run `python manage.py "
            "sqlmigrate APP NAME` to read it._",
        ]
    body = "\n".join([text.rstrip(), "", *tail]).rstrip() + "\n"
    if len(body) > limit:  # the note itself (many migrations left out) overflows
        return _cut_lines(body.splitlines(), limit, "lines")
    return body


def _details(label: str, sql: str) -> str:
    return "\n".join(
        [
            f"<details><summary><code>{label}</code></summary>",
            "",
            *_fence(sql, "sql"),
            "",
            "</details>",
        ]
    )


def _cut_lines(lines: list[str], limit: int, what: str) -> str:
    kept: list[str] = []
    size = 200
    for line in lines:
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    cut = len(lines) - len(kept)
    kept += ["", f"_{cut} more {what} left out for room: the job log has the full report._"]
    return "\n".join(kept) + "\n"
