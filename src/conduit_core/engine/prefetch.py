"""Read ahead of the consumer in a background thread.

pyarrow and DuckDB release the GIL while parsing and writing, so reading the
next batch while the destination writes this one overlaps the two on separate
cores. The queue is bounded, so memory stays at a few batches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

from conduit_core.engine import cancel

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(source: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield the items of ``source`` while a thread produces up to ``depth`` ahead."""
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer thread
            put(_Failure(exc))
            return
        finally:
            close = getattr(source, "close", None)
            if stop.is_set() and close is not None:
                close()
        put(_DONE)

    worker = threading.Thread(target=produce, name="conduit-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = buffer.get(timeout=0.1)
            except queue.Empty:
                cancel.check()  # a slow source must not keep a signal waiting
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        # A source blocked in a driver call is left behind (a daemon thread) rather than delay a stop.
        worker.join(timeout=1 if cancel.TOKEN.is_set else 5)
