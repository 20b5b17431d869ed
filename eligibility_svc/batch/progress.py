"""Progress: done / failed / rate / ETA (pure), and a terminal line (a bar on a TTY, plain lines otherwise)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True, slots=True)
class Snapshot:
    total: int
    done: int
    failed: int
    elapsed: float  # seconds since the start

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def rate(self) -> float:
        """Items finished per second."""
        return self.finished / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None before anything finished)."""
        if self.finished >= self.total:
            return 0.0
        return (self.total - self.finished) / self.rate if self.rate > 0 else None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}" if whole < 3600 else f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def render_line(snap: Snapshot, *, width: int = 30, bar: bool = True) -> str:
    """``[#####.....] 120/500 done 118 failed 2 9.5/s ETA 00:40`` (the bar only when ``bar``)."""
    share = snap.finished / snap.total if snap.total else 1.0
    text = (
        f"{snap.finished}/{snap.total} done {snap.done} failed {snap.failed} {snap.rate:.1f}/s ETA {_clock(snap.eta)}"
    )
    if not bar:
        return text
    filled = int(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {text}"


class ProgressPrinter:
    """Redraws one line on a TTY; elsewhere (logs, CI) prints a plain line every ``every`` seconds."""

    def __init__(self, stream: TextIO, *, every: float = 5.0, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.every = every
        self._last = 0.0
        self._printed: Snapshot | None = None

    def show(self, snap: Snapshot, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + render_line(snap) + "\x1b[K")
            self.stream.flush()
        elif (force and snap.finished != (self._printed.finished if self._printed else -1)) or (
            now - self._last >= self.every
        ):
            self.stream.write(render_line(snap, bar=False) + "\n")
            self.stream.flush()
            self._last = now
            self._printed = snap

    def close(self, snap: Snapshot) -> None:
        self.show(snap, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
