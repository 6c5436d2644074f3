"""The dead-letter queue: rejected rows as JSON Lines under ``<state_dir>/errors/<resource>/<run_id>.jsonl``
(the run that started the load: a resumed load goes on appending to it, each line naming the run that wrote it).

Rows are streamed to the file as they are rejected (never held in memory), the
file is created with mode 0600 (it holds source data), and each line is the
original record as read with why it was rejected. Before the destination
commits a checkpoint the file is flushed and fsynced and its length goes into
the checkpoint, so a resumed load first cuts the file back to that length, even
after several killed attempts: a rejected row is in the queue once, like a
loaded row is in the destination once.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from conduit_core.errors import FatalError


def dlq_dir(state_dir: Path, resource: str) -> Path:
    return state_dir / "errors" / resource


class DeadLetterQueue:
    def __init__(self, state_dir: Path, resource: str, run_id: str, path: Path | None = None) -> None:
        #: A resumed load keeps appending to the file of the run that started it (``path``).
        self.path = path or dlq_dir(state_dir, resource) / f"{run_id}.jsonl"
        self.run_id = run_id
        self._fd: int | None = None
        self.rows = 0

    def _open(self) -> int:
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as exc:
                msg = f"cannot write the dead-letter queue {self.path}: {exc.strerror}"
                raise FatalError(msg, hint="check that the state directory is writable") from exc
        return self._fd

    def write(self, raw: pa.RecordBatch, indices: list[int], reasons: list[dict[str, Any]], *,
              source_file: str | None, first_row: int,
              locations: tuple[pa.Array, pa.Array] | None = None) -> None:
        """Append one line per rejected row: ``raw.take(indices)`` with the matching reason. ``locations``:
        each row's own file and row, for rows that are not one run of a file (rows a step held back)."""
        if not indices:
            return
        taken = pa.array(indices, pa.int64())
        records = raw.take(taken).to_pylist()
        if locations is not None:
            where = list(zip(locations[0].take(taken).to_pylist(), locations[1].take(taken).to_pylist(), strict=True))
        else:
            where = [(source_file, first_row + index) for index in indices]
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        lines = []
        for (file, row), record, reason in zip(where, records, reasons, strict=True):
            entry = {"record": record, **reason, "source_file": file, "row": row,
                     "run_id": self.run_id, "timestamp": stamp}
            lines.append(json.dumps(entry, default=str, ensure_ascii=False))
        os.write(self._open(), ("\n".join(lines) + "\n").encode("utf-8"))
        self.rows += len(lines)

    @property
    def used(self) -> bool:
        """Whether the load has a dead-letter file (this run's rows, or a resumed load's earlier ones)."""
        return bool(self.rows) or self.path.exists()

    def sync(self) -> int:
        """Make every line written so far durable; return the file's length (for the checkpoint)."""
        if self._fd is None:
            return self.path.stat().st_size if self.path.exists() else 0
        os.fsync(self._fd)
        return os.fstat(self._fd).st_size

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def cut_back(path: str | None, length: int | None) -> None:
    """Resuming: drop the lines a killed run wrote after its last checkpoint."""
    if path and length is not None and Path(path).exists() and Path(path).stat().st_size > length:
        with Path(path).open("r+b") as handle:
            handle.truncate(length)


def read_entries(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
