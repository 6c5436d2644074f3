"""The ``join`` step: columns from a lookup source, matched on keys, one batch at a time.

Only the keys of a batch go to DuckDB (with each row's position); the lookup's columns come back in the
batch's order and are cast back to the types the lookup source read, and the batch's own columns never
leave Arrow. A lookup must hold at most one row per key, so a join never adds rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from conduit_core.config.issues import suggest
from conduit_core.config.models import TransformConfig
from conduit_core.connectors.sql import quote_ident
from conduit_core.errors import ConfigError, DataError
from conduit_core.stages.lookups import Lookup, Lookups
from conduit_core.stages.stage import Rows, StageOutput, require_columns

_PROBE = "_conduit_probe"
_ROW = "_conduit_row"
_MATCHED = "_conduit_matched"


def _family(kind: pa.DataType) -> str:
    """Types whose values compare as equal when they are equal: a key's two sides must be of one family.
    Floats only match floats of the same width (a float32 0.1 is not the float64 0.1)."""
    checks = (("integer", pa.types.is_integer), ("string", lambda t: pa.types.is_string(t) or
                                                 pa.types.is_large_string(t) or pa.types.is_string_view(t)),
              ("decimal", pa.types.is_decimal), ("date", pa.types.is_date), ("boolean", pa.types.is_boolean))
    for name, test in checks:
        if test(kind):
            return name
    return str(kind)


class JoinStep:
    def __init__(self, config: TransformConfig, position: int, lookups: Lookups) -> None:
        assert config.join is not None
        self.join = config.join
        self.name = config.name or f"join #{position}"
        self.lookups = lookups
        self._plan: tuple[Lookup, str, dict[str, str]] | None = None
        self._con: Any = None

    def _prepare(self, data: pa.RecordBatch) -> tuple[Lookup, str, dict[str, str]]:
        """Check the keys and columns against both sides (once): the lookup, the query, and the names the
        added columns take {lookup column: name in the output}."""
        join, names = self.join, data.schema.names
        lookup = self.lookups.get(join.with_)
        theirs = lookup.schema.names
        require_columns(list(join.keys), data, self.name, "fix `on:` (columns are named as after earlier steps)")
        for here, there in join.keys.items():
            if there not in theirs:
                msg = (f"transform {self.name}: key {there!r} is not a column of lookup {join.with_!r}"
                       f"{suggest(there, theirs)}; its columns: {theirs}")
                raise ConfigError(msg, hint="fix `on:` ({column here: column of the lookup})")
            mine, other = data.schema.field(here).type, lookup.schema.field(there).type
            if _family(mine) != _family(other):
                msg = (f"transform {self.name}: key {here!r} is {mine} here but {there!r} is {other} in lookup "
                       f"{join.with_!r}; values of different types never match")
                raise ConfigError(msg, hint=f"add a cast step for {here!r} before the join, or declare the "
                                            "lookup source's column type")
        wanted = list(join.columns) if join.columns is not None else [
            c for c in theirs if c not in join.keys.values()]
        added: dict[str, str] = {}
        for column in wanted:
            if column not in theirs:
                msg = (f"transform {self.name}: {column!r} is not a column of lookup {join.with_!r}"
                       f"{suggest(column, theirs)}; its columns: {theirs}")
                raise ConfigError(msg, hint="fix `columns:`")
            out = column if column not in names else f"{column}{join.suffix}" if join.suffix else None
            if out is None:
                msg = f"transform {self.name}: column {column!r} of lookup {join.with_!r} is already in the data"
                raise ConfigError(msg, hint="set suffix: (e.g. suffix: _lookup), or leave it out with columns:")
            if out in names or out in added.values():
                msg = (f"transform {self.name}: {column!r} of lookup {join.with_!r} would be named {out!r}, "
                       "which is taken")
                raise ConfigError(msg, hint="choose another suffix:, or leave the column out with columns:")
            added[column] = out
        self._check_unique(lookup)
        table = quote_ident(lookup.table)
        first_key = quote_ident(next(iter(join.keys.values())))
        on = " AND ".join(f"p.k{i} = l.{quote_ident(there)}" for i, there in enumerate(join.keys.values()))
        select = "".join(f", l.{quote_ident(c)}" for c in added)
        query = (f"SELECT l.{first_key} IS NOT NULL AS {_MATCHED}{select} FROM {_PROBE} AS p "
                 f"LEFT JOIN {table} AS l ON {on} ORDER BY p.{_ROW}")
        return lookup, query, added

    def _check_unique(self, lookup: Lookup) -> None:
        keys = ", ".join(quote_ident(k) for k in self.join.keys.values())
        present = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in self.join.keys.values())
        found = self._cursor().sql(f"SELECT {keys}, count(*) AS n FROM {quote_ident(lookup.table)} WHERE {present} "
                                   f"GROUP BY {keys} HAVING count(*) > 1 LIMIT 1").fetchall()
        if found:
            *values, count = found[0]
            where = ", ".join(f"{k} = {v!r}" for k, v in zip(self.join.keys.values(), values, strict=True))
            msg = (f"transform {self.name}: lookup {lookup.source!r} has {count} rows where {where}; a join "
                   "takes at most one row per key (more would repeat the row it joins)")
            raise DataError(msg, hint="make the lookup unique on the join keys (its source, or more keys in on:)")

    def _cursor(self) -> Any:
        if self._con is None:
            self._con = self.lookups.db.cursor()
        return self._con

    def apply(self, rows: Rows) -> StageOutput:
        if self._plan is None:
            self._plan = self._prepare(rows.data)
        lookup, query, added = self._plan
        data = rows.data
        probe = pa.RecordBatch.from_arrays(
            [*(data.column(k) for k in self.join.keys), pa.array(np.arange(data.num_rows, dtype=np.int64))],
            names=[*(f"k{i}" for i in range(len(self.join.keys))), _ROW])
        con = self._cursor()
        con.register(_PROBE, probe)
        try:
            found = con.sql(query).to_arrow_table()
        finally:
            con.unregister(_PROBE)
        if found.num_rows != data.num_rows:  # the lookup was checked to be unique on the keys
            msg = f"transform {self.name}: the join gave {found.num_rows} rows for {data.num_rows}"
            raise DataError(msg)
        for position, (column, out) in enumerate(added.items(), start=1):  # column 0: whether the row matched
            field = lookup.schema.field(column)
            values = found.column(position).combine_chunks().cast(field.type)
            data = data.append_column(pa.field(out, field.type), values)
        matched = np.asarray(found.column(0).to_numpy(zero_copy_only=False), dtype=bool)
        unmatched = int((~matched).sum())
        policy = self.join.policy
        if not unmatched or policy == "keep":
            return StageOutput(rows.replace(data), unmatched=unmatched)
        kept = rows.keep(matched, data.filter(pa.array(matched)))
        if policy == "drop":
            return StageOutput(kept, filtered=unmatched, unmatched=unmatched)
        keys = list(self.join.keys)
        missing = rows.data.select(keys).filter(pa.array(~matched)).to_pylist()
        return StageOutput(kept, [
            (int(origin), {"error_type": "transform", "check": f"{self.name}: no match in {self.join.with_}",
                           "column": keys[0] if len(keys) == 1 else keys, "value": key if len(keys) > 1
                           else key[keys[0]]})
            for origin, key in zip(rows.origin[~matched], missing, strict=True)], unmatched=unmatched)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
