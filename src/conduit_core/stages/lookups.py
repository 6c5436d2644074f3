"""Lookup sources for ``join`` steps: each read in full once per load, into an on-disk DuckDB table (not a
Python dict: a lookup may be larger than memory)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from conduit_core.connectors.base import ReadRequest
from conduit_core.errors import ConfigError, DataError
from conduit_core.stages.scratch import ScratchDB, unstorable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conduit_core.config.models import ConnectorEntry

_INCOMING = "_conduit_incoming"


@dataclass(frozen=True)
class Lookup:
    """A lookup source, loaded: ``table`` in the database of :class:`Lookups`."""

    source: str
    table: str
    #: The columns as the source read them (what a join gives back, exactly).
    schema: pa.Schema
    rows: int


class Lookups:
    """The lookups of one load, loaded at the first use and shared by its join steps (and its preflight)."""

    def __init__(self, sources: Sequence[ConnectorEntry], batch_size: int) -> None:
        self.sources, self.batch_size = {entry.name: entry for entry in sources}, batch_size
        self.db = ScratchDB("conduit-lookup-")
        self._loaded: dict[str, Lookup] = {}
        self._lock = threading.Lock()

    def get(self, source: str) -> Lookup:
        with self._lock:
            if source not in self._loaded:
                self._loaded[source] = self._load(source, f"lookup_{len(self._loaded)}")
            return self._loaded[source]

    def _load(self, name: str, table: str) -> Lookup:
        import duckdb

        from conduit_core.connectors import registry

        entry = self.sources[name]
        source = registry.source_class(entry.type)(entry.options)
        con = self.db.cursor()
        schema: pa.Schema | None = None
        rows = 0
        try:
            for batch in source.read_batches(ReadRequest(batch_size=self.batch_size)):
                first = schema is None
                if schema is None:
                    schema = batch.schema
                    if problem := unstorable(schema):
                        msg = f"lookup {name!r}: {problem} cannot be held for a join"
                        raise ConfigError(msg, hint="declare another type for it on the lookup source, or leave it "
                                                    "out with the join's columns:")
                elif not batch.schema.equals(schema):
                    msg = (f"lookup {name!r} changed its columns mid-read ({batch.source_file or 'the source'}): "
                           f"{batch.schema} after {schema}")
                    raise DataError(msg, hint="declare the lookup source's column types")
                con.register(_INCOMING, batch.data)
                try:
                    con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM {_INCOMING}' if first else
                                f'INSERT INTO "{table}" SELECT * FROM {_INCOMING}')
                except duckdb.Error as exc:
                    msg = f"lookup {name!r} cannot be stored for the join: {str(exc).splitlines()[0]}"
                    raise DataError(msg) from None
                finally:
                    con.unregister(_INCOMING)
                rows += batch.num_rows
        finally:
            source.close()
            con.close()
        if schema is None:
            msg = f"lookup {name!r} has no columns (its source yields nothing)"
            raise DataError(msg, hint="a lookup needs at least its header; check the source's path or table")
        return Lookup(name, table, schema, rows)

    def close(self) -> None:
        self.db.close()
        self._loaded.clear()

