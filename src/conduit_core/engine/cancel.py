"""Stopping a run on SIGINT or SIGTERM: cleanly at the next safe point, or at once on a second signal.

A signal handler that raised an exception (Python's default for SIGINT) would land anywhere: inside a
driver call, in the middle of a commit's bookkeeping, in a thread-join. The handler here only sets a flag.
And a handler runs only when the main thread runs Python code, which it does not while a driver waits
(on a lock, on the network): so the work runs in a worker thread (:func:`in_worker`), and the main thread
only waits for it, ready to take a signal at any moment.
The engine looks at it where stopping is safe (between batches, while waiting for the source or for the
destination to take a batch, between retries, between preflight checks) and raises :class:`Cancelled`
there; the load in progress is rolled back to its last checkpoint, the run is recorded as interrupted,
and the command exits 130 (SIGINT) or 143 (SIGTERM). A second signal ends the process immediately.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TypeVar

EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class Cancelled(BaseException):
    """The run was asked to stop (a signal); raised where the engine can stop safely."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.name)


def exit_code_for(name: str | None) -> int:
    """The exit code of a run stopped by the signal called ``name`` (130 for SIGINT, 143 for SIGTERM)."""
    return EXIT_SIGTERM if name == "SIGTERM" else EXIT_SIGINT


class CancelToken:
    """Set by the signal handler, read by the engine in any thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self, signum: int) -> None:
        self.signum = signum
        self._event.set()

    def clear(self) -> None:
        self._event.clear()
        self.signum = None

    def check(self) -> None:
        """Raise :class:`Cancelled` if a stop was asked for."""
        if self._event.is_set():
            raise Cancelled(self.signum or signal.SIGINT)

    def sleep(self, seconds: float) -> None:
        """Sleep, waking up at once (with :class:`Cancelled`) if a stop is asked for."""
        self._event.wait(seconds)
        self.check()


#: The process's token: signal handlers set it, the engine checks it.
TOKEN = CancelToken()


def check() -> None:
    TOKEN.check()


@contextlib.contextmanager
def stopping_on_signals(message: str = "stopping after the current batch; signal again to stop at once") \
        -> Iterator[CancelToken]:
    """Within the block, SIGINT and SIGTERM ask the run to stop (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield TOKEN
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if TOKEN.is_set:
            sys.stderr.write(f"\n{name} again: stopping now; the last checkpoint is kept\n")
            sys.stderr.flush()
            os._exit(EXIT_SIGTERM if signum == signal.SIGTERM else EXIT_SIGINT)
        sys.stderr.write(f"\n{name}: {message}\n")
        sys.stderr.flush()
        TOKEN.set(signum)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    TOKEN.clear()
    try:
        yield TOKEN
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        TOKEN.clear()  # a later run in this process starts afresh


R = TypeVar("R")


def in_worker(work: Callable[[], R]) -> R:
    """``work()`` in a worker thread while the main thread stays free for signals; its result or its error."""
    outcome: list[R] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failure.append(exc)

    worker = threading.Thread(target=target, name="conduit-run", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(timeout=0.2)
    if failure:
        raise failure[0]
    return outcome[0]
