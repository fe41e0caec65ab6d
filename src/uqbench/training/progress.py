"""Progress output for long work: one updating line on a terminal, a line every few seconds in logs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

TERMINAL_INTERVAL = 0.2


def format_seconds(seconds: float) -> str:
    """``75.2 -> '1m15s'``; short, for progress lines and tables."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Reports ``done/total`` with elapsed time and an ETA (``elapsed / done * (total - done)``).

    On a terminal the line is rewritten in place; otherwise (CI logs, files) a line is written at
    most every ``log_interval`` seconds so logs stay short, and always when ``done`` reaches
    ``total``. Nothing is written before ``delay`` seconds have passed, so work that finishes
    sooner stays silent. ``quiet`` silences it; ``clock`` (seconds) defaults to
    ``time.perf_counter``.
    """

    def __init__(
        self,
        total: int,
        description: str,
        stream: TextIO | None = None,
        quiet: bool = False,
        log_interval: float = 10.0,
        *,
        delay: float = 0.0,
        unit: str = "",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.total = max(1, total)
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.log_interval = log_interval
        self.delay = delay
        self.unit = unit
        self.clock = clock if clock is not None else time.perf_counter
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.clock()
        self._last_print = -float("inf")
        self.done = 0

    def advance(self, count: int = 1, status: str = "") -> None:
        """Count ``count`` more units done (see :meth:`update`)."""
        self.update(self.done + count, status)

    def update(self, done: int, status: str = "") -> None:
        """Record ``done`` units and write a line if one is due."""
        self.done = done
        if self.quiet:
            return
        now = self.clock()
        elapsed = now - self.start
        finished = done >= self.total
        interval = TERMINAL_INTERVAL if self.interactive else self.log_interval
        if elapsed < self.delay or (not finished and now - self._last_print < interval):
            return
        self._last_print = now
        self._write(self.line(done, elapsed, status), finished)

    def line(self, done: int, elapsed: float, status: str = "") -> str:
        """The progress line for ``done`` units after ``elapsed`` seconds."""
        eta = format_seconds(elapsed / done * (self.total - done)) if done else "?"
        unit = f" {self.unit}" if self.unit else ""
        line = (
            f"{self.description}: {done}/{self.total}{unit} ({100 * done / self.total:.0f}%) "
            f"{format_seconds(elapsed)} elapsed, ETA {eta}"
        )
        return f"{line}  {status}" if status else line

    def _write(self, line: str, finished: bool) -> None:
        if self.interactive:
            self.stream.write("\r\033[K" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
