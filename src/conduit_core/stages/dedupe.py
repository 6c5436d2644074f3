"""The ``dedupe`` step: one row per key across the whole load, not per batch.

``keep: first`` (in read order) streams: the keys seen so far are in an on-disk DuckDB table, each with the
rows read when it was first seen, so a resumed load cuts the table back to its checkpoint and goes on; a
later duplicate is left out as soon as it is read.

Any other rule (``last``, ``latest``, ``non_null``, or an ``order_by``) cannot know a key's winner until the
source is read to the end. Such a step holds every row in an on-disk table and releases the winners, in
read order, once the source is done (see :meth:`Pipeline.finish`). Nothing is written before that, so the
load takes no checkpoint: a crash or ``--resume`` reads the source again from its start.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from conduit_core.batch import Batch
from conduit_core.config.models import DedupeConfig, TransformConfig
from conduit_core.connectors.sql import quote_ident
from conduit_core.errors import ConfigError, DataError, StateError
from conduit_core.stages.scratch import ScratchDB, unstorable
from conduit_core.stages.stage import Rows, StageOutput, require_columns

_PROBE = "_conduit_probe"
_NEW = "_conduit_new"
_HINT = "fix the step's keys or order_by (columns are named as after earlier steps)"
#: How many dropped rows the manifest names (all of them are counted).
EXAMPLES = 10


class _Dedupe:
    def __init__(self, config: TransformConfig, position: int) -> None:
        assert config.dedupe is not None
        self.dedupe: DedupeConfig = config.dedupe
        self.name = config.name or f"dedupe #{position}"
        #: The first dropped rows: their key, file and row (for the manifest).
        self.examples: list[dict[str, Any]] = []

    def _note(self, rows: Rows, dropped: np.ndarray) -> None:
        files, lines = rows.locations()
        for index in dropped[:max(0, EXAMPLES - len(self.examples))]:
            key = {k: rows.data.column(k)[int(index)].as_py() for k in self.dedupe.keys}
            self.examples.append({"key": key, "file": files[int(index)].as_py(), "row": lines[int(index)].as_py()})


class StreamingDedupe(_Dedupe):
    """``keep: first`` in read order: the first row of each key passes, later ones are filtered."""

    def __init__(self, config: TransformConfig, position: int, path: Path | None, resumed_at: int | None) -> None:
        super().__init__(config, position)
        if path is not None and resumed_at is None:
            path.unlink(missing_ok=True)  # a fresh load: what an earlier load left is not this load's
            path.with_name(path.name + ".wal").unlink(missing_ok=True)
        elif path is not None and resumed_at and not path.exists():
            # Without the keys seen before the checkpoint, their duplicates after it would be loaded.
            msg = (f"transform {self.name}: the keys it saw before the checkpoint ({path}) are gone, so it "
                   "cannot tell duplicates of the rows already loaded")
            raise StateError(msg, hint="reload from scratch: `conduit state reset RESOURCE` (or `conduit run "
                                       "--full-refresh`); a step added before the dedupe also needs that")
        self.db = ScratchDB("conduit-dedupe-", path)
        self.path = path
        #: Rows read so far, counted as the checkpoints count them (a resumed load starts at its checkpoint's).
        self.read = self.start = resumed_at or 0
        self._ready = False

    def _open(self, probe: pa.RecordBatch) -> Any:
        con = self.db()
        if not self._ready:
            keys = ", ".join(f"k{i}" for i in range(len(self.dedupe.keys)))
            con.register(_PROBE, probe)
            try:
                con.execute(f"CREATE TABLE IF NOT EXISTS seen AS SELECT {keys}, 0::BIGINT AS read FROM {_PROBE} "
                            "LIMIT 0")
            finally:
                con.unregister(_PROBE)
            # Keys seen after the checkpoint belong to rows the resumed load reads again.
            con.execute("DELETE FROM seen WHERE read > ?", [self.start])
            self._ready = True
        return con

    def apply(self, rows: Rows) -> StageOutput:
        self.read += rows.source.num_rows
        self.db()  # the file exists from the first batch on: a checkpoint after it can rely on it
        if not rows.num_rows:
            return StageOutput(rows)
        keys = list(self.dedupe.keys)
        require_columns(keys, rows.data, self.name, _HINT)
        probe = pa.RecordBatch.from_arrays(
            [*(rows.data.column(k) for k in keys), pa.array(np.arange(rows.num_rows, dtype=np.int64))],
            names=[*(f"k{i}" for i in range(len(keys))), "_row"])
        con = self._open(probe)
        same = " AND ".join(f"s.k{i} IS NOT DISTINCT FROM p.k{i}" for i in range(len(keys)))
        names = ", ".join(f"k{i}" for i in range(len(keys)))
        con.register(_PROBE, probe)
        try:
            con.execute("BEGIN")
            first = con.sql(
                f"SELECT _row FROM (SELECT *, row_number() OVER (PARTITION BY {names} ORDER BY _row) AS _n "
                f"FROM {_PROBE}) AS p WHERE _n = 1 AND NOT EXISTS (SELECT 1 FROM seen AS s WHERE {same})"
            ).to_arrow_table().column(0).to_numpy()
            keep = np.zeros(rows.num_rows, dtype=bool)
            keep[first] = True
            con.register(_NEW, probe.filter(pa.array(keep)))
            con.execute(f"INSERT INTO seen SELECT {names}, {self.read}::BIGINT FROM {_NEW}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister(_PROBE)
            con.unregister(_NEW)
        dropped = int((~keep).sum())
        if not dropped:
            return StageOutput(rows)
        self._note(rows, np.flatnonzero(~keep))
        return StageOutput(rows.keep(keep), filtered=dropped)

    def discard(self) -> None:
        """The load completed: its keys are no longer needed."""
        self.db.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)

    def close(self) -> None:
        self.db.close()


class DryDedupe(_Dedupe):
    """Preflight: the columns are checked, the rows pass (nothing is remembered)."""

    def apply(self, rows: Rows) -> StageOutput:
        require_columns([*self.dedupe.keys, *([self.dedupe.order_by] if self.dedupe.order_by else [])], rows.data,
                 self.name, _HINT)
        return StageOutput(rows)


class HoldingDedupe(_Dedupe):
    """Every row is held (with the row as read, for the dead-letter queue) until :meth:`finish` picks each
    key's winner."""

    holds = True

    def __init__(self, config: TransformConfig, position: int, batch_size: int) -> None:
        super().__init__(config, position)
        self.batch_size = batch_size
        self.db = ScratchDB("conduit-dedupe-")
        self.schema: pa.Schema | None = None
        self.raw_schema: pa.Schema | None = None
        self.seq = 0
        self.held = 0

    def apply(self, rows: Rows) -> StageOutput:
        if not rows.num_rows:
            return StageOutput(rows)
        data, raw = rows.data, rows.source.data.take(pa.array(rows.origin))
        if self.schema is None:
            require_columns([*self.dedupe.keys, *([self.dedupe.order_by] if self.dedupe.order_by else [])], data,
                     self.name, _HINT)
            self.schema, self.raw_schema = data.schema, raw.schema
            for schema in (data.schema, raw.schema):
                if problem := unstorable(schema):
                    msg = f"transform {self.name}: {problem} cannot be held to find each key's winner"
                    raise ConfigError(msg, hint="cast it to another type before the step, or use keep: first")
        elif not data.schema.equals(self.schema) or not raw.schema.equals(self.raw_schema):
            msg = f"transform {self.name}: the columns changed mid-stream ({data.schema.names})"
            raise DataError(msg, file=rows.source.source_file, hint="declare the source's column types")
        count = rows.num_rows
        files, lines = rows.locations()
        incoming = pa.RecordBatch.from_arrays(
            [pa.array(np.arange(self.seq, self.seq + count, dtype=np.int64)), files, lines,
             *data.columns, *raw.columns],
            names=["_seq", "_file", "_line", *(f"c{i}" for i in range(data.num_columns)),
                   *(f"r{i}" for i in range(raw.num_columns))])
        con = self.db()
        con.register(_PROBE, incoming)
        try:
            con.execute(f"INSERT INTO held SELECT * FROM {_PROBE}" if self.seq else
                        f"CREATE TABLE held AS SELECT * FROM {_PROBE}")
        finally:
            con.unregister(_PROBE)
        self.seq += count
        self.held += count
        return StageOutput(rows.keep(np.zeros(count, dtype=bool)))

    def _order(self) -> str:
        assert self.schema is not None
        dedupe = self.dedupe
        by = quote_ident(f"c{self.schema.get_field_index(dedupe.order_by)}") if dedupe.order_by else None
        if dedupe.keep == "first":
            return f"{by} ASC NULLS LAST, _seq ASC"
        latest = f"{by} DESC NULLS LAST, " if by else ""
        if dedupe.keep == "non_null":
            filled = " + ".join(f"(c{i} IS NOT NULL)::INTEGER" for i in range(len(self.schema)))
            return f"({filled}) DESC, {latest}_seq DESC"
        return f"{latest}_seq DESC"

    def finish(self) -> Iterator[StageOutput]:
        """The winner of every key, in read order; the other rows counted as filtered (with the first batch)."""
        if self.schema is None or self.raw_schema is None or not self.held:
            return
        keys = ", ".join(f"c{self.schema.get_field_index(k)}" for k in self.dedupe.keys)
        con = self.db()
        con.execute(f"CREATE OR REPLACE TABLE winners AS SELECT _seq FROM (SELECT _seq, row_number() OVER "
                    f"(PARTITION BY {keys} ORDER BY {self._order()}) AS _n FROM held) WHERE _n = 1")
        winners = int(con.sql("SELECT count(*) FROM winners").fetchall()[0][0])
        losers = self.held - winners
        for file, line, *key in con.sql(
                f"SELECT _file, _line, {keys} FROM held WHERE _seq NOT IN (SELECT _seq FROM winners) "
                f"ORDER BY _seq LIMIT {EXAMPLES}").fetchall():
            self.examples.append({"key": dict(zip(self.dedupe.keys, key, strict=True)), "file": file, "row": line})
        reader = con.sql("SELECT * FROM held WHERE _seq IN (SELECT _seq FROM winners) ORDER BY _seq"
                         ).fetch_record_batch(self.batch_size)
        filtered, width = losers, len(self.schema)
        for chunk in reader:
            rows = self._rows(chunk, width)
            self.held -= rows.num_rows
            yield StageOutput(rows, filtered=filtered)
            filtered = 0
        self.held -= losers
        if self.held:
            msg = f"transform {self.name}: {self.held} held rows were neither released nor counted"
            raise DataError(msg)

    def _rows(self, chunk: pa.RecordBatch, width: int) -> Rows:
        assert self.schema is not None
        assert self.raw_schema is not None
        columns = chunk.columns
        data = pa.RecordBatch.from_arrays([c.cast(f.type) for c, f in zip(columns[3:3 + width], self.schema,
                                                                            strict=True)], schema=self.schema)
        raw = pa.RecordBatch.from_arrays([c.cast(f.type) for c, f in zip(columns[3 + width:], self.raw_schema,
                                                                          strict=True)], schema=self.raw_schema)
        # Each row's file and line, for the dead-letter queue (the rows are no longer one run of a file).
        source = Batch(raw, extras={"locations": (columns[1], columns[2])})
        return Rows(data, np.arange(data.num_rows, dtype=np.int64), source)

    def close(self) -> None:
        self.db.close()
