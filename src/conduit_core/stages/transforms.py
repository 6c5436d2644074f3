"""Transform steps (``transforms:`` on a resource): rename, select, drop, cast, filter, derive, sql and Python
steps, applied in order to every batch, after coercion and before the quality checks.

Every step works on one batch at a time, in Arrow or in DuckDB over the Arrow batch (zero-copy), and keeps
the rows in their order, so each row still knows the source row it came from. A step never changes a value
it was not asked to: a ``cast`` that does not convert sends the row to the dead-letter queue, a ``filter``
counts the rows it leaves out, and a ``sql`` or Python step must map rows one to one.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from conduit_core.config.issues import suggest
from conduit_core.config.models import DeclaredColumn, TransformConfig
from conduit_core.connectors.sql import quote_ident
from conduit_core.errors import ConfigError, DataError
from conduit_core.schema.declared import DeclaredSchema
from conduit_core.stages.dedupe import DryDedupe, HoldingDedupe, StreamingDedupe
from conduit_core.stages.join import JoinStep
from conduit_core.stages.lookups import Lookups
from conduit_core.stages.stage import Rows, Stage, StageOutput, require_columns

GROUP = "conduit.transforms"
_TABLE = "batch"
#: SQL that needs the whole stream (or reorders rows) cannot run on one batch at a time.
_NOT_ROW_WISE = re.compile(r"\b(GROUP\s+BY|ORDER\s+BY|DISTINCT|LIMIT|OFFSET|OVER\s*\(|HAVING|UNION|QUALIFY)\b",
                           re.IGNORECASE)


def check_row_wise(sql: str) -> None:
    """Refuse SQL that is not row by row (raised as ValueError at the step's YAML path)."""
    if match := _NOT_ROW_WISE.search(sql):
        msg = (f"a sql step runs on one batch at a time, so {match.group(1).upper()} would apply to each batch, "
               "not to the whole load; use a row-wise SELECT ... FROM batch (dedupe and join are their own steps)")
        raise ValueError(msg)
    if not re.search(r"\bFROM\s+batch\b", sql, re.IGNORECASE):
        msg = "a sql step reads the current batch as the table `batch`: SELECT ..., FROM batch"
        raise ValueError(msg)


class _Step:
    def __init__(self, config: TransformConfig, position: int) -> None:
        self.config = config
        self.name = config.name or f"{config.kind} #{position}"


class RenameStep(_Step):
    def apply(self, rows: Rows) -> StageOutput:
        mapping = self.config.rename or {}
        require_columns(list(mapping), rows.data, self.name)
        names = [mapping.get(n, n) for n in rows.data.schema.names]
        if len(set(names)) != len(names):
            msg = f"transform {self.name}: the new names repeat a column name ({names})"
            raise ConfigError(msg, hint="rename into names that are not taken")
        return StageOutput(rows.replace(rows.data.rename_columns(names)))


class SelectStep(_Step):
    def apply(self, rows: Rows) -> StageOutput:
        data = rows.data
        if self.config.select is not None:
            require_columns(self.config.select, data, self.name)
            return StageOutput(rows.replace(data.select(list(self.config.select))))
        require_columns(self.config.drop or (), data, self.name)
        return StageOutput(rows.replace(data.drop_columns(list(self.config.drop or ()))))


class CastStep(_Step):
    """Like a declared schema: values that do not convert send their row to the dead-letter queue."""

    def __init__(self, config: TransformConfig, position: int, *, strict: bool) -> None:
        super().__init__(config, position)
        self.declared = DeclaredSchema({c: DeclaredColumn(type=t) for c, t in (config.cast or {}).items()},
                                       strict=strict)

    def apply(self, rows: Rows) -> StageOutput:
        require_columns(list(self.declared.columns), rows.data, self.name)
        coerced, rejects = self.declared.coerce(rows.as_batch())
        if not rejects:
            return StageOutput(rows.replace(coerced.data))
        keep = np.ones(rows.num_rows, dtype=bool)
        keep[list(rejects)] = False
        return StageOutput(rows.keep(keep, coerced.data), [
            (int(rows.origin[i]), {**reason, "error_type": "transform", "check": f"{self.name}: {reason['check']}"})
            for i, reason in sorted(rejects.items())])


class _Duck:
    """One in-memory DuckDB connection for the SQL steps of a load, opened at the first use."""

    def __init__(self) -> None:
        self._con: Any = None

    def __call__(self) -> Any:
        if self._con is None:
            import duckdb

            self._con = duckdb.connect()
            # One batch is a small query: a second thread costs more to start than it saves, and the other
            # core is busy writing the batches before it.
            self._con.execute("SET threads = 1")
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class _DuckStep(_Step):
    """A step that runs DuckDB SQL over the batch (registered as ``batch``, zero-copy)."""

    def __init__(self, config: TransformConfig, position: int, duck: _Duck) -> None:
        super().__init__(config, position)
        self._duck = duck

    def close(self) -> None:
        self._duck.close()

    def _query(self, data: pa.RecordBatch, sql: str) -> pa.Table:
        import duckdb

        con = self._duck()
        con.register(_TABLE, data)
        try:
            table: pa.Table = con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            msg = f"transform {self.name}: {str(exc).splitlines()[0]}"
            raise ConfigError(msg, hint="the expression is DuckDB SQL over the batch's columns") from None
        finally:
            con.unregister(_TABLE)
        if table.num_rows != data.num_rows:
            msg = (f"transform {self.name} returned {table.num_rows} rows for a batch of {data.num_rows}; a "
                   "step must map rows one to one")
            raise DataError(msg, hint="use a filter step to leave rows out")
        return table


class FilterStep(_DuckStep):
    """Rows where the expression is false or NULL are left out and counted as filtered."""

    def apply(self, rows: Rows) -> StageOutput:
        if not rows.num_rows:
            return StageOutput(rows)
        keep_table = self._query(rows.data, f"SELECT coalesce(({self.config.filter}), false) AS keep FROM {_TABLE}")
        keep = np.asarray(keep_table.column(0).to_numpy(zero_copy_only=False), dtype=bool)
        if keep.all():
            return StageOutput(rows)
        return StageOutput(rows.keep(keep), filtered=int((~keep).sum()))


class DeriveStep(_DuckStep):
    """New columns from DuckDB expressions (a name that exists is replaced, in place)."""

    def apply(self, rows: Rows) -> StageOutput:
        derive = self.config.derive or {}
        select = ", ".join(f"({expression}) AS {quote_ident(name)}" for name, expression in derive.items())
        new = self._query(rows.data, f"SELECT {select} FROM {_TABLE}")
        data = rows.data
        for name in derive:
            column = new.column(name).combine_chunks()
            index = data.schema.get_field_index(name)
            field = pa.field(name, column.type)
            data = data.set_column(index, field, column) if index >= 0 else data.append_column(field, column)
        return StageOutput(rows.replace(data))


class SqlStep(_DuckStep):
    """A row-wise SELECT over ``batch``: the result replaces the batch, row for row."""

    def apply(self, rows: Rows) -> StageOutput:
        table = self._query(rows.data, str(self.config.sql))
        return StageOutput(rows.replace(pa.RecordBatch.from_arrays(
            [c.combine_chunks() for c in table.columns], schema=table.schema)))


class PythonStep(_Step):
    """``function(batch, **with)`` -> a RecordBatch (or Table, or pandas DataFrame) with the same rows."""

    def __init__(self, config: TransformConfig, position: int) -> None:
        super().__init__(config, position)
        self.function = load_step(str(config.uses))

    def apply(self, rows: Rows) -> StageOutput:
        try:
            result = self.function(rows.data, **self.config.with_)
        except (ConfigError, DataError):
            raise
        except Exception as exc:  # noqa: BLE001 - a broken step fails the resource with its name
            msg = f"transform {self.name} ({self.config.uses}) raised {type(exc).__name__}: {exc}"
            raise DataError(msg, file=rows.source.source_file, row=rows.source.first_row) from None
        data = _as_batch(result, self.name)
        if data.num_rows != rows.num_rows:
            msg = (f"transform {self.name} returned {data.num_rows} rows for a batch of {rows.num_rows}; a "
                   "Python step must map rows one to one")
            raise DataError(msg, hint="use a filter step to leave rows out")
        return StageOutput(rows.replace(data))


def pandas_step(function: Callable[..., Any]) -> Callable[..., pa.RecordBatch]:
    """Decorator for a Python step written with pandas: ``function(frame, **with)`` takes and returns a
    ``pandas.DataFrame``. The frame's columns are Arrow-backed (``pd.ArrowDtype``), so no value changes on the
    way in or out: an integer column with NULLs stays integers (NumPy-backed pandas would make it float64 and
    round values beyond 2**53), decimals stay decimals. Needs pandas (``pip install 'conduit-core[pandas]'``)."""

    @functools.wraps(function)
    def step(batch: pa.RecordBatch, **options: Any) -> pa.RecordBatch:
        try:
            pd = importlib.import_module("pandas")  # optional: only steps written with it need it
        except ImportError:
            msg = f"the step {function.__name__} is written with pandas, which is not installed"
            raise ConfigError(msg, hint="pip install 'conduit-core[pandas]'") from None
        frame = function(batch.to_pandas(types_mapper=pd.ArrowDtype), **options)
        return pa.RecordBatch.from_pandas(frame, preserve_index=False)

    return step


def _as_batch(result: Any, step: str) -> pa.RecordBatch:
    if isinstance(result, pa.RecordBatch):
        return result
    if isinstance(result, pa.Table):
        return result.combine_chunks().to_batches()[0] if result.num_rows else pa.RecordBatch.from_pylist(
            [], schema=result.schema)
    if type(result).__name__ == "DataFrame" and hasattr(result, "to_dict"):  # pandas, when installed
        return pa.RecordBatch.from_pandas(result, preserve_index=False)
    msg = f"transform {step} returned {type(result).__name__}; a step returns a pyarrow RecordBatch"
    raise DataError(msg)


#: The built-in steps, as `conduit steps` lists them.
BUILT_IN = {
    "rename": "rename columns: {old: new}",
    "select": "keep only the named columns, in that order",
    "drop": "leave out the named columns",
    "cast": "convert columns to declared types; values that do not convert go to the dead-letter queue",
    "filter": "leave out rows where a DuckDB SQL expression is false or NULL (counted as filtered)",
    "derive": "new columns from DuckDB SQL expressions",
    "sql": "a row-wise SELECT ... FROM batch",
    "dedupe": "one row per key across the whole load (keep: first | last | latest | non_null)",
    "join": "columns from a lookup source, matched on keys (unmatched: keep | drop | dlq)",
    "uses": "a Python step: module:function, or a name registered in the conduit.transforms group",
}


@dataclass(frozen=True)
class StepInfo:
    name: str
    origin: str
    target: str
    description: str
    error: str | None = None


def list_steps() -> list[StepInfo]:
    """The built-in steps, then the Python steps packages register (each imported for its description)."""
    from conduit_core.connectors.registry import origin

    infos = [StepInfo(name, "built-in", f"{name}:", text) for name, text in BUILT_IN.items()]
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        try:
            function = point.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is listed as unavailable, not fatal
            infos.append(StepInfo(point.name, origin(point), point.value, "", f"{type(exc).__name__}: {exc}"))
            continue
        doc = (getattr(function, "__doc__", None) or "").strip().splitlines()
        infos.append(StepInfo(point.name, origin(point), point.value, doc[0] if doc else ""))
    return infos


def load_step(target: str) -> Callable[..., Any]:
    """The function of a Python step: ``module:function``, or a name from the ``conduit.transforms`` group."""
    module_name, _, attribute = target.partition(":")
    if not attribute:
        names = {point.name: point for point in entry_points(group=GROUP)}
        if target not in names:
            msg = (f"unknown transform step {target!r}{suggest(target, names)}; use module:function, or one of "
                   f"the installed steps: {', '.join(sorted(names)) or 'none'}")
            raise ConfigError(msg)
        loaded: Callable[..., Any] = names[target].load()
        return loaded
    try:
        function: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        msg = f"transform step {target!r} cannot be loaded: {type(exc).__name__}: {exc}"
        raise ConfigError(msg, hint="check the module is importable and the function name is right") from None
    return function


@dataclass(frozen=True)
class StepContext:
    """What steps that look beyond one batch need from the load."""

    #: The lookup sources of the load (join steps).
    lookups: Lookups | None = None
    #: Where a step keeps what must outlive the process (the keys a dedupe has seen); None: nowhere (a dry
    #: run, a replay).
    work: Path | None = None
    #: The rows the checkpoint a resumed load continues had read (None: a fresh load).
    resumed_at: int | None = None
    batch_size: int = 50_000
    #: Preflight: check the steps' columns, remember nothing.
    dry: bool = False


def build_steps(transforms: Sequence[TransformConfig], *, strict: bool,
                context: StepContext = StepContext()) -> list[Stage]:
    """The stages of ``transforms:``, sharing one in-memory DuckDB connection for the SQL steps."""
    duck = _Duck()

    steps: list[Stage] = []
    for position, config in enumerate(transforms, start=1):
        kind = config.kind
        if kind == "rename":
            steps.append(RenameStep(config, position))
        elif kind in ("select", "drop"):
            steps.append(SelectStep(config, position))
        elif kind == "cast":
            steps.append(CastStep(config, position, strict=strict))
        elif kind == "filter":
            steps.append(FilterStep(config, position, duck))
        elif kind == "derive":
            steps.append(DeriveStep(config, position, duck))
        elif kind == "sql":
            steps.append(SqlStep(config, position, duck))
        elif kind == "dedupe":
            steps.append(_dedupe(config, position, context))
        elif kind == "join":
            if context.lookups is None:
                msg = f"transform {config.name or f'join #{position}'}: this command cannot read lookup sources"
                raise ConfigError(msg)
            steps.append(JoinStep(config, position, context.lookups))
        else:
            steps.append(PythonStep(config, position))
    return steps


def _dedupe(config: TransformConfig, position: int, context: StepContext) -> Stage:
    assert config.dedupe is not None
    if context.dry:
        return DryDedupe(config, position)
    if config.dedupe.streams:
        path = context.work / f"dedupe-{position}.duckdb" if context.work is not None else None
        return StreamingDedupe(config, position, path, context.resumed_at)
    return HoldingDedupe(config, position, context.batch_size)
