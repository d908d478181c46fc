"""What a verifier run found, and every output format of it (text, json, github, gitlab,
markdown)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from migtools.rules.catalogue import Finding, Level

Node = tuple[str, str]

# Where each rule is documented: docs/rules.md in the repository named in pyproject's
# [project.urls] (a heading per rule id, so the id is its anchor).
DOCS_URL = "https://github.com/migtools/migtools/blob/main/docs/rules.md"
# The first line of the markdown body, for a CI job to find its own comment and update it.
MARKDOWN_MARKER = "<!-- migtools:verify_migrations -->"


def docs_url(rule_id: str) -> str:
    return f"{DOCS_URL}#{rule_id}"


@dataclass
class MigrationReport:
    """One verified migration: its collected SQL (as sqlmigrate prints it) and findings."""

    node: Node
    path: str | None
    entries: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    atomic: bool = True
    op_starts: list[int] = field(default_factory=list)  # entry index where each op begins

    def annotated(self) -> list[str]:
        """``entries`` with each finding as a ``-- migtools: <id>: <message>`` line before
        the statement it concerns (before the operation's header when it has no statement;
        at the top for findings about the whole migration)."""
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
        out: list[str] = []
        for i, entry in enumerate(self.entries):
            out.extend(
                f"-- migtools: {f.rule_id}{f.on_database()}: {' '.join(f.message.split())}"
                for f in before.get(i, ())
            )
            out.append(entry)
        if not self.entries:
            out.extend(f"-- migtools: {f.rule_id}: {f.message}" for f in before.get(0, ()))
        return out


@dataclass
class Report:
    migrations: list[MigrationReport] = field(default_factory=list)
    # With one_deploy: the tables the selection creates (new for the whole deploy).
    new_tables: frozenset[str] = frozenset()

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
        lines.append(f"    docs: {docs_url(f.rule_id)}")
    lines.append(summary(report))
    return lines


def as_json(report: Report) -> str:
    return json.dumps(
        {
            "migrations": len(report.migrations),
            "errors": report.errors,
            "warnings": report.warnings,
            "findings": [f.as_dict() for f in ordered(report)],
        },
        indent=2,
    )


def _github_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def as_github(report: Report) -> list[str]:
    """GitHub Actions workflow commands (``::error file=…,line=…::…``), one per finding."""
    lines: list[str] = []
    for f in ordered(report):
        kind = "error" if f.level is Level.ERROR else "warning"
        props = [f"title={_github_escape('migtools ' + f.rule_id, prop=True)}"]
        if f.path:
            props.insert(0, f"file={_github_escape(where(f).rsplit(':', 1)[0], prop=True)}")
            props.insert(1, f"line={f.line or 1}")
        body = f"{f.message}\nSafe recipe:\n{_steps(f)}"
        if f.sql:
            body += f"\nSQL: {f.sql}"
        body += f"\nDocs: {docs_url(f.rule_id)}"
        lines.append(f"::{kind} {','.join(props)}::{_github_escape(body)}")
    lines.append(summary(report))
    return lines


def _steps(f: Finding, indent: str = "") -> str:
    return "\n".join(f"{indent}{n}. {step}" for n, step in enumerate(f.rule.recipe, 1))


def as_gitlab(report: Report) -> str:
    """A GitLab code-quality report (``artifacts: reports: codequality``): one issue per
    finding, with a fingerprint stable across runs (rule, migration, operation)."""
    issues = []
    for f in ordered(report):
        path = where(f).rsplit(":", 1)[0] if f.path else f"{f.app_label}.{f.migration_name}"
        identity = f"{f.rule_id}:{f.app_label}.{f.migration_name}:{f.operation_index}:{f.sql}"
        issues.append(
            {
                "type": "issue",
                "check_name": f.rule_id,
                "description": f"{f.app_label}.{f.migration_name}: {f.message}",
                "content": {
                    "body": f"{f.rule.why}\n\nSafe recipe:\n{_steps(f)}\n\n{docs_url(f.rule_id)}"
                },
                "categories": ["Bug Risk"],
                "severity": "major" if f.level is Level.ERROR else "minor",
                "fingerprint": hashlib.sha256(identity.encode()).hexdigest(),
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


def as_markdown(report: Report) -> str:
    """A pull-request comment body: the summary, then per migration its SQL (with the
    findings as ``-- migtools:`` comments where they apply) and each finding with why, the
    full recipe and the rule's docs. Starts with :data:`MARKDOWN_MARKER`."""
    lines = [MARKDOWN_MARKER, f"### migtools: {summary(report)}", ""]
    if not report.migrations:
        lines.append("No migrations to verify.")
    for m in sorted(report.migrations, key=lambda m: m.node):
        label, name = m.node
        lines.append(f"#### `{label}.{name}`")
        if m.path:
            lines.append(f"`{shown(m.path)}`")
        lines.append("")
        sql = "\n".join(m.annotated()).strip() or "-- (no SQL)"
        lines.extend(_fence(sql, "sql"))
        lines.append("")
        if not m.findings:
            lines.extend(["No findings.", ""])
        for f in sorted(m.findings, key=lambda f: (f.operation_index or -1, f.rule_id)):
            op = (
                f" (operation {(f.operation_index or 0) + 1}: {f.operation})" if f.operation else ""
            )
            lines.append(f"- **{f.level}** [`{f.rule_id}`]({docs_url(f.rule_id)}){op}: {f.message}")
            lines.append(f"  - Why: {f.rule.why}")
            lines.append("  - Safe recipe:")
            lines.append(_steps(f, indent="    "))
        if m.findings:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
