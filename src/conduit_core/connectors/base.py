"""The connector contract.

A simple third-party connector implements the dict contract (``read()`` yielding
dicts; ``write(records)`` and ``finalize()``) and is about ten lines. Built-in
connectors override the Arrow fast path (``read_batches``; ``begin`` /
``write_batch`` / ``commit`` / ``abort``). The engine only calls the fast path;
the defaults here adapt the dict contract to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, final

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from conduit_core.batch import Batch, Position, group_records
from conduit_core.errors import FatalError
from conduit_core.state.resume import ResumeState

if TYPE_CHECKING:
    from conduit_core.schema.diff import Change
    from conduit_core.schema.model import TableSchema


class ConnectorOptions(BaseModel):
    """Base of every connector's options model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _is_path_key(key: str) -> bool:
    return key == "path" or key.endswith(("_path", "_dir", "_file"))


class PluginOptions(BaseModel):
    """Options for connectors that declare no model: anything goes, read via ``config``.

    Relative values of ``path`` and of keys ending in ``_path``, ``_dir`` or
    ``_file`` are resolved against ingest.yml's directory, as for built-ins.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _resolve_paths(cls, data: Any, info: ValidationInfo) -> Any:
        context = info.context if isinstance(info.context, dict) else {}
        base = context.get("base_dir")
        if base is None or not isinstance(data, dict):
            return data
        return {
            key: str(Path(base) / value)
            if _is_path_key(key) and isinstance(value, str) and value and "://" not in value
            and not Path(value).expanduser().is_absolute() else value
            for key, value in data.items()
        }


class WriteMode(StrEnum):
    APPEND = "append"
    FULL_REFRESH = "full_refresh"
    MERGE = "merge"


@dataclass(frozen=True)
class ReadRequest:
    """What the engine asks a source for."""

    batch_size: int = 50_000
    query: str | None = None
    #: Continue after this position (from a batch this source yielded earlier); None: from the start.
    resume_position: Position | None = None
    #: The types the load started with, when resuming: a source that infers types should use them.
    schema: pa.Schema | None = None
    #: A unique column to order by and resume after (keyset); database sources only.
    checkpoint_column: str | None = None
    #: ``(column, value)``: only rows with ``column > value`` are needed. A source may push this
    #: down (database sources do, with a bound parameter); the engine filters every batch anyway.
    after: tuple[str, pa.Scalar] | None = None


@dataclass(frozen=True)
class WriteTarget:
    """Where and how a resource is written."""

    resource: str
    mode: WriteMode = WriteMode.APPEND
    table: str | None = None
    path: Path | None = None
    primary_key: tuple[str, ...] = ()
    #: The checkpoint this load continues (None: a fresh load).
    resume: ResumeState | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a destination supports; read by the engine and by preflight."""

    transactional: bool = False
    merge: bool = False
    full_refresh: bool = True
    schema_evolution: bool = False
    #: Commits progress with a :class:`ResumeState` atomically (see ``BaseDestination.checkpoint``).
    checkpoints: bool = False
    #: Column names that differ only by case are the same column (DuckDB, SQLite, MySQL): such names are
    #: renamed apart before a load (see :mod:`conduit_core.engine.names`).
    case_insensitive_names: bool = False
    #: Longest identifier (table or column name), in bytes of UTF-8 or in characters, and most columns in a
    #: table: a name or a table beyond them is a preflight problem, never a silent truncation. None: no limit.
    max_identifier_bytes: int | None = None
    max_identifier_chars: int | None = None
    max_columns: int | None = None


class _Connector:
    #: Options model; connectors that keep the default get a permissive model.
    Options: ClassVar[type[BaseModel]] = PluginOptions
    #: Human description shown by ``conduit connectors``.
    description: ClassVar[str] = ""

    def __init__(self, options: BaseModel | Mapping[str, Any] | None = None) -> None:
        if options is None or isinstance(options, Mapping):
            options = self.Options.model_validate(dict(options or {}))
        self.options = options
        #: Plain-dict view of the options, for simple connectors.
        self.config: dict[str, Any] = {**options.model_dump(), **(options.model_extra or {})}

    def test_connection(self) -> bool:
        """Return True when the peer is reachable; raise a ConduitError to say why not."""
        return True

    def close(self) -> None:
        """Release connections and handles; called once when the engine is done."""


class BaseSource(_Connector):
    """Reads records. Override :meth:`read` (dicts) or :meth:`read_batches` (Arrow)."""

    #: Reading again from the start gives the same records (files, tables). A source that cannot promise it
    #: (an API, a queue: the default) is read exactly once per load, its first batch kept from preflight.
    rereadable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.read is BaseSource.read and cls.read_batches is BaseSource.read_batches:
            msg = f"{cls.__name__} must override read() or read_batches()"
            raise TypeError(msg)

    def read(self, query: str | None = None) -> Iterator[dict[str, Any]]:
        """Yield records as dicts (the simple contract)."""
        raise NotImplementedError

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        """Yield batches. The default groups :meth:`read` into Arrow batches."""
        row = 1
        for data in group_records(self.read(request.query), request.batch_size):
            row += data.num_rows
            # No position: a generic read() cannot be resumed part-way, so the load is one unit.
            yield Batch(data, first_row=row - data.num_rows)

    def estimate_total_records(self) -> int | None:
        """Total rows if cheaply known (for progress and ETA), else None."""
        return None


class BaseDestination(_Connector):
    """Writes batches. Override :meth:`write` (dicts) or the Arrow methods."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.write is BaseDestination.write and cls.write_batch is BaseDestination.write_batch:
            msg = f"{cls.__name__} must override write() or write_batch()"
            raise TypeError(msg)

    # -- simple dict contract -------------------------------------------------
    def write(self, records: Sequence[dict[str, Any]]) -> None:
        """Write a list of dict records (the simple contract)."""
        raise NotImplementedError

    def finalize(self) -> None:
        """Flush and commit everything written (the simple contract)."""

    def execute_ddl(self, sql: str) -> None:
        """Run a DDL statement (table destinations)."""
        msg = f"{type(self).__name__} does not run DDL"
        raise NotImplementedError(msg)

    def get_table_schema(self) -> dict[str, Any] | None:
        """Current schema of the target table as {column: type}, or None if absent."""
        return None

    # -- Arrow fast path --------------------------------------------------------
    def begin(self, target: WriteTarget, schema: pa.Schema) -> None:
        """Start writing ``target``; ``schema`` is the schema of every batch to come."""
        self.target = target
        self.schema = schema

    def write_batch(self, batch: Batch) -> int:
        """Write one batch; return the number of rows written."""
        self.write(batch.to_records())
        return batch.num_rows

    def commit(self) -> None:
        """Make everything written since :meth:`begin` durable and visible."""
        self.finalize()

    def abort(self) -> None:
        """Discard uncommitted work; must be safe to call after a failure."""

    def release(self) -> None:
        """Give back connections kept between calls while other resources load (the destination opens them
        again on its next call). Not called during a load."""

    # -- checkpoints (destinations whose capabilities say ``checkpoints=True``) ------------
    def checkpoint(self, state: ResumeState, *, final: bool = False) -> None:
        """Make everything written so far durable together with ``state``, atomically.

        ``final=False``: a checkpoint; writing continues after it. ``final=True``:
        the end of the load (publish it, as :meth:`commit` does). Either way, after a
        crash :meth:`read_state` returns ``state`` if and only if the data is there.
        """
        msg = f"{type(self).__name__} does not support checkpoints"
        raise NotImplementedError(msg)

    def read_state(self, target: WriteTarget) -> ResumeState | None:
        """The state last committed with :meth:`checkpoint` for ``target``, or None."""
        return None

    def target_id(self, target: WriteTarget) -> str:
        """``target`` as this destination names it (a table with its schema, a file name): saved state is
        tied to it. Independent of where the destination is (a moved database file keeps its states)."""
        return str(target.table or (target.path.name if target.path else None) or target.resource)

    def discard_state(self, target: WriteTarget, state: ResumeState) -> None:
        """Drop an in-progress load's leftovers (staging tables, part files) and its state."""

    # -- schema (drift checks and evolution) ------------------------------------------------
    def table_schema(self, target: WriteTarget) -> TableSchema | None:
        """The live schema of ``target`` (table or existing output file), or None if there is none yet
        (or the destination cannot tell: then there is no drift check)."""
        return None

    def evolve(self, target: WriteTarget, changes: Sequence[Change]) -> list[str]:
        """Apply ``changes`` (added columns, widened types, dropped NOT NULL) to ``target`` before a
        load; return the statements run. Called only by ``schema_evolution: {mode: auto}``."""
        msg = f"{type(self).__name__} cannot change a target's schema; set schema_evolution.mode to manual or warn"
        raise FatalError(msg)

    @final
    def supports(self, mode: WriteMode) -> bool:
        if mode is WriteMode.MERGE:
            return self.capabilities.merge
        if mode is WriteMode.FULL_REFRESH:
            return self.capabilities.full_refresh
        return True
