"""Progress output for long work: one updating line on a terminal, a line every few seconds in logs."""

from __future__ import annotations

import sys
import time
from typing import TextIO


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
    """Reports ``done/total`` with elapsed time and an ETA.

    On a terminal the line is rewritten in place; otherwise (CI logs, files) a line is written at
    most every ``log_interval`` seconds so logs stay short. ``quiet`` silences it.
    """

    def __init__(
        self,
        total: int,
        description: str,
        stream: TextIO | None = None,
        quiet: bool = False,
        log_interval: float = 10.0,
    ) -> None:
        self.total = max(1, total)
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.log_interval = log_interval
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self._last_print = -float("inf")
        self.done = 0

    def update(self, done: int, status: str = "") -> None:
        self.done = done
        if self.quiet:
            return
        now = time.perf_counter()
        finished = done >= self.total
        if not finished and now - self._last_print < (
            0.2 if self.interactive else self.log_interval
        ):
            return
        self._last_print = now
        elapsed = now - self.start
        eta = elapsed / done * (self.total - done) if done else float("nan")
        eta_text = format_seconds(eta) if done else "?"
        line = (
            f"{self.description}: {done}/{self.total} ({100 * done / self.total:.0f}%) "
            f"{format_seconds(elapsed)} elapsed, ETA {eta_text}"
        )
        if status:
            line += f"  {status}"
        if self.interactive:
            self.stream.write("\r\033[K" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
