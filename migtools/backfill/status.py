"""What ``manage.py backfills`` shows: each recorded backfill with its live state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from migtools.backfill import progress

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class Status:
    backfill: progress.Backfill
    state: str  # pending | running | done | failed
    note: str = ""


def listing(connection: BaseDatabaseWrapper) -> list[Status]:
    """An inline backfill is "running" only while a session holds its run lock; one whose run
    died (killed, timed out) is "pending" again and resumes after its last committed key."""
    live = progress.running(connection)
    out = []
    for b in progress.all_backfills(connection):
        state, note = b.state, ""
        if b.name in live:
            state = progress.RUNNING
        elif b.runner == "inline" and b.state == progress.RUNNING:
            state = progress.PENDING
            note = f"interrupted after key {b.last_key}" if b.last_key else "interrupted"
        elif b.runner == "tasks" and b.state == progress.RUNNING and b.ranges_left:
            note = f"{b.ranges_left} range(s) left"
        out.append(Status(b, state, note))
    return out


def table(rows: list[Status]) -> list[str]:
    header = ("NAME", "STATE", "RUNNER", "ROWS", "RATE", "LAST ERROR")
    body = []
    for s in rows:
        b = s.backfill
        total = f"/{b.total:,}" if b.total and s.state != progress.DONE else ""
        rate = f"{b.rate:,.0f}/s" if b.rate else "-"
        state = f"{s.state} ({s.note})" if s.note else s.state
        error = (b.last_error or "-").splitlines()[0]
        body.append((b.name, state, b.runner, f"{b.rows:,}{total}", rate, error))
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header) - 1)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in (header, *body)
    ]
