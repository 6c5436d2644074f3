"""Feed batches pushed by the engine into a consumer that pulls a RecordBatchReader.

Engines such as DuckDB load fastest, and in flat memory, from one statement
that scans a stream; the engine, however, pushes batches one by one. The pipe
runs the consuming statement in a worker thread and hands it the pushed
batches through a bounded queue.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator

import pyarrow as pa

from conduit_core.engine import cancel

_END = object()


class _AbortedError(Exception):
    """Raised inside the consumer's stream when the producer gives up."""


class BatchPipe:
    """``put`` batches in one thread; ``consume(reader)`` runs in a worker thread."""

    def __init__(self, schema: pa.Schema, consume: Callable[[pa.RecordBatchReader], None], depth: int = 4) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._done = threading.Event()
        reader = pa.RecordBatchReader.from_batches(schema, self._batches())

        def run() -> None:
            try:
                consume(reader)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
                self._error = exc
            finally:
                self._done.set()

        self._thread = threading.Thread(target=run, name="conduit-load", daemon=True)
        self._thread.start()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _AbortedError):
                raise item
            yield item

    def _offer(self, item: object) -> None:
        while not self._done.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                if item is not _END:
                    cancel.check()  # a stalled consumer must not keep a signal waiting
                continue
            return
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
        msg = "the loading statement stopped before its input ended"
        raise RuntimeError(msg)

    def put(self, batch: pa.RecordBatch) -> None:
        """Hand one batch to the consumer (blocks while the queue is full)."""
        self._offer(batch)

    def close(self) -> None:
        """Signal the end of input and wait; re-raise the consumer's error, if any."""
        self._offer(_END)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Make the consumer fail and wait for it; never raises."""
        if not self._done.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(_AbortedError("load aborted"), timeout=5)
        self._thread.join(timeout=30)


class SerialWorker:
    """Run submitted jobs one after another in a background thread (bounded backlog).

    A job's error is raised in the submitting thread at the next ``submit`` or at
    ``join``; after an error no further job runs.
    """

    def __init__(self, depth: int = 2) -> None:
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="conduit-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is None:
                try:
                    job()
                except BaseException as exc:  # noqa: BLE001 - handed to the submitting thread
                    self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, job: Callable[[], None]) -> None:
        self._check()
        while True:
            try:
                self._queue.put(job, timeout=0.1)
                return
            except queue.Full:
                cancel.check()
                self._check()

    def join(self) -> None:
        """Wait for every submitted job; raise the first error."""
        self._queue.put(None)
        self._thread.join()
        self._check()
