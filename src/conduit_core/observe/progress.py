"""Progress of running resources: a Rich display on a terminal, log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:  # Rich's progress display is imported only when a terminal shows it (~5 ms of every run)
    from rich.console import Console
    from rich.progress import TaskID


class ProgressSink(Protocol):
    def start(self, resource: str, total: int | None) -> None: ...
    def advance(self, resource: str, rows: int) -> None: ...
    def finish(self, resource: str, status: str) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    def start(self, resource: str, total: int | None) -> None:
        pass

    def advance(self, resource: str, rows: int) -> None:
        pass

    def finish(self, resource: str, status: str) -> None:
        pass

    def close(self) -> None:
        pass


class LogProgress:
    """Plain lines (rows, rows/s) at most every ``interval`` seconds, for logs and CI."""

    def __init__(self, stream: TextIO | None = None, interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._state: dict[str, tuple[float, float, int, int | None]] = {}

    def start(self, resource: str, total: int | None) -> None:
        now = time.monotonic()
        self._state[resource] = (now, now, 0, total)
        estimate = f" (about {total:,} rows)" if total else ""
        print(f"[{resource}] started{estimate}", file=self.stream, flush=True)

    def advance(self, resource: str, rows: int) -> None:
        started, last, done, total = self._state[resource]
        done += rows
        now = time.monotonic()
        if now - last >= self.interval:
            rate = done / max(now - started, 1e-9)
            pct = f" {min(done / total, 1.0):.0%}" if total else ""
            print(f"[{resource}] {done:,} rows{pct}, {rate:,.0f} rows/s", file=self.stream, flush=True)
            last = now
        self._state[resource] = (started, last, done, total)

    def finish(self, resource: str, status: str) -> None:
        started, _, done, _ = self._state.pop(resource, (time.monotonic(), 0.0, 0, None))
        elapsed = time.monotonic() - started
        print(f"[{resource}] {status}: {done:,} rows in {elapsed:.1f}s", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class RichProgress:
    """One bar per resource with rows, rows/s and (when the size is known) ETA."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._progress.start()

    def start(self, resource: str, total: int | None) -> None:
        self._tasks[resource] = self._progress.add_task(resource, total=total, rate="")
        self._started[resource] = time.monotonic()

    def advance(self, resource: str, rows: int) -> None:
        task = self._tasks[resource]
        self._progress.advance(task, rows)
        done = self._progress.tasks[task].completed
        rate = done / max(time.monotonic() - self._started[resource], 1e-9)
        self._progress.update(task, rate=f"{rate:,.0f} rows/s")

    def finish(self, resource: str, status: str) -> None:
        task = self._tasks[resource]
        done = self._progress.tasks[task].completed
        self._progress.update(task, total=done, description=f"{resource} [{status}]")

    def close(self) -> None:
        self._progress.stop()


def make_progress(enabled: bool, *, is_terminal: bool | None = None) -> ProgressSink:
    if not enabled:
        return NoProgress()
    terminal = sys.stderr.isatty() if is_terminal is None else is_terminal
    return RichProgress() if terminal else LogProgress()
