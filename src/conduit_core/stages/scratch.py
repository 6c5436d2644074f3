"""On-disk DuckDB databases for what a load must remember beyond one batch (keys seen, lookups, held rows):
on disk, so a large load does not grow in memory."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa

#: DuckDB spills to disk beyond this; the load's batches and the destination need the rest of the memory.
MEMORY_LIMIT = "256MB"


class ScratchDB:
    """A DuckDB database opened at the first use: in a new temporary directory (removed on close), or at
    ``path`` (kept on close, for state that must outlive the process)."""

    def __init__(self, prefix: str, path: Path | None = None) -> None:
        self.prefix, self.path = prefix, path
        self._con: Any = None
        self._dir: Path | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._con is None:
                import duckdb

                if self.path is None:
                    self._dir = Path(tempfile.mkdtemp(prefix=self.prefix))
                    file, spill = self._dir / "scratch.duckdb", self._dir
                else:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    file, spill = self.path, self.path.parent
                self._con = duckdb.connect(str(file))
                self._con.execute(f"SET temp_directory = '{spill}'")
                self._con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            return self._con

    def cursor(self) -> Any:
        """A connection of its own to the same database, for use from another thread."""
        return self().cursor()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None


def unstorable(schema: pa.Schema) -> str | None:
    """The first column DuckDB would not give back as it was (it must not change a value it holds): wider
    decimals, dictionaries, durations and intervals (DuckDB keeps microseconds), also inside lists and
    structs."""
    for field in schema:
        if (kind := _unstorable_type(field.type)) is not None:
            return f"column {field.name!r} of type {field.type}" + (f" (it holds {kind})" if kind != field.type
                                                                     else "")
    return None


def _unstorable_type(kind: pa.DataType) -> pa.DataType | None:
    if (pa.types.is_decimal256(kind) or pa.types.is_dictionary(kind) or pa.types.is_duration(kind)
            or pa.types.is_interval(kind)):
        return kind
    for index in range(kind.num_fields):
        if (inner := _unstorable_type(kind.field(index).type)) is not None:
            return inner
    return None
