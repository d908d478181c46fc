"""How a running backfill shows its progress: a one-line bar on a TTY (rows done, rate, ETA),
plain log lines otherwise (at most one every few seconds, plus the last).

A backfill runs inside ``migrate`` (or a worker), where no command's ``self.stdout`` reaches the
operation: the display writes to the stream it is given (``sys.stderr`` by default, as
Django's own migrate progress does for warnings). This is the only module of the backfill
capability that writes anything.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def line(name: str, rows: int, total: int | None, elapsed: float) -> str:
    """``name: 12,000 / 2,000,000 rows (0.6%), 40,000 rows/s, ETA 49s``."""
    rate = rows / elapsed if elapsed > 0 else 0.0
    text = f"{name}: {rows:,}"
    if total:
        shown = max(total, rows)
        text += f" / {shown:,} rows ({100 * rows / shown:.1f}%)"
    else:
        text += " rows"
    text += f", {rate:,.0f} rows/s"
    if total and rate > 0 and rows < total:
        text += f", ETA {_duration((total - rows) / rate)}"
    return text


class Display:
    """Progress of one backfill run on ``stream``."""

    every = 5.0  # seconds between plain log lines

    def __init__(self, name: str, total: int | None, stream: TextIO | None = None) -> None:
        self.name = name
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last = 0.0
        self._width = 30

    def update(self, rows: int) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        if self.tty:
            fraction = min(1.0, rows / self.total) if self.total else 0.0
            filled = int(self._width * fraction)
            bar = "#" * filled + "-" * (self._width - filled)
            self.stream.write(f"\r  [{bar}] {line(self.name, rows, self.total, elapsed)}\x1b[K")
            self.stream.flush()
        elif now - self._last >= self.every:
            self._last = now
            self.stream.write(f"  backfill {line(self.name, rows, self.total, elapsed)}\n")
            self.stream.flush()

    def finish(self, rows: int, state: str) -> None:
        elapsed = time.monotonic() - self.started
        text = line(self.name, rows, None, elapsed)
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(f"  backfill {text} in {_duration(elapsed)}: {state}\n")
        self.stream.flush()
