"""Progress of long work counted in units (characters scored, say), on stderr: a bar that
redraws itself with the rate and the time left on a terminal, and a plain line every few
seconds elsewhere (a log file, CI). No TensorFlow.

Example:

>>> progress = Progress(len(text), "scored", unit="chars")
>>> for done in ...:
...     progress.update(done)
>>> progress.close()
"""

from __future__ import annotations

import sys
import time

BAR_WIDTH = 30


def is_terminal(stream) -> bool:
    """Whether `stream` is a terminal (where a line that redraws itself belongs)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """Reports `done` of `total` units as work goes on.

    Args:
        total: the units of the whole work.
        label: what is counted, in the past tense ("scored").
        unit: the units' name ("chars").
        stream: where to write (stderr).
        after: seconds of work before the first report: short work says nothing.
        every: seconds between two lines where the stream is not a terminal (a terminal's
            bar redraws every 0.2 s).
        clock: the time source, for tests.
    """

    def __init__(
        self,
        total: int,
        label: str,
        unit: str = "chars",
        stream=None,
        after: float = 2.0,
        every: float = 5.0,
        clock=time.monotonic,
    ):
        self.total, self.label, self.unit = max(int(total), 1), label, unit
        self.stream = stream or sys.stderr
        self.terminal = is_terminal(self.stream)
        self.clock = clock
        self.started = clock()
        self.after, self.every = after, (0.2 if self.terminal else every)
        self.last_report = None
        self.shown = False

    def line(self, done: int) -> str:
        """What a report of `done` units says."""
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = done / elapsed
        left = (self.total - done) / rate if rate > 0 else float("inf")
        eta = _duration(left) if left != float("inf") else "?"
        counts = f"{done:,}/{self.total:,} {self.unit} {self.label}"
        text = f"{counts}, {rate:,.0f} {self.unit}/s, {eta} left"
        if not self.terminal:
            return text
        filled = int(BAR_WIDTH * done / self.total)
        return (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {100 * done / self.total:3.0f}% {text}"
        )

    def update(self, done: int) -> None:
        now = self.clock()
        if now - self.started < self.after:
            return
        if self.last_report is not None and now - self.last_report < self.every:
            return
        self.last_report = now
        if self.terminal:
            self.stream.write(f"\r{self.line(done)} ")
        else:
            self.stream.write(f"{self.line(done)}\n")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        """End a terminal's bar line, so that what follows starts on a line of its own."""
        if self.shown and self.terminal:
            self.stream.write("\n")
            self.stream.flush()
        self.shown = False
