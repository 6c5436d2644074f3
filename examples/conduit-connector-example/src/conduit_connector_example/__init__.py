"""An example conduit plugin written against the simple dict contract.

Nothing here knows about Arrow, batches or transactions: conduit adapts
``read()`` and ``write()``/``finalize()`` to its fast path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from conduit_core import BaseDestination, BaseSource

__all__ = ["JsonlDestination", "SequenceSource", "add_cube", "perfect_square"]


def perfect_square(value: Any, **_: Any) -> bool:
    """A quality check, registered by entry point as ``perfect_square``: one value in, valid or not out."""
    root = int(value**0.5)
    return bool(root * root == value)


def add_cube(batch: Any, column: str = "id", name: str = "cube") -> Any:
    """A transform step, registered by entry point as ``add_cube``: a RecordBatch in, the same rows out, with
    one more column. Steps that need no Arrow knowledge can use pandas instead (``batch.to_pandas()``)."""
    import pyarrow.compute as pc

    values = batch.column(column)
    return batch.append_column(name, pc.multiply(pc.multiply(values, values), values))


class SequenceSource(BaseSource):
    """Yields `count` numbered records starting at `start`, with their squares."""

    def read(self, query: str | None = None) -> Iterator[dict[str, Any]]:
        start = int(self.config.get("start", 1))
        for n in range(start, start + int(self.config.get("count", 10))):
            yield {"id": n, "square": n * n, "label": f"item-{n}"}

    def estimate_total_records(self) -> int | None:
        # Known up front, so the progress bar can show an ETA.
        return int(self.config.get("count", 10))


class JsonlDestination(BaseDestination):
    """Writes records as JSON lines to the file given by `path`."""

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not hasattr(self, "_file"):
            # Rows go to a sibling file that replaces `path` only on finalize, so readers never see half a run.
            self._tmp = Path(f"{self.config['path']}.tmp")
            self._file = self._tmp.open("w", encoding="utf-8")
        for record in records:
            # default=str: dates, decimals and the like have no JSON type.
            self._file.write(json.dumps(record, default=str) + "\n")

    def finalize(self) -> None:
        if hasattr(self, "_file"):
            self._file.close()
            self._tmp.replace(self.config["path"])  # os.replace: atomic on one filesystem
