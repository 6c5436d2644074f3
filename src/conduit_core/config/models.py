"""Pydantic models of ingest.yml.

Connector entries keep their options as the connector's own options model,
chosen by ``type`` through the registry (see :mod:`conduit_core.config.loader`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from conduit_core.config.paths import ConfigPath
from conduit_core.connectors.base import WriteMode

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConnectorEntry(_Frozen):
    """A source or destination: its name, type and validated options."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: Name
    type: str
    options: BaseModel

    def option(self, key: str, default: Any = None) -> Any:
        return getattr(self.options, key, default)


class RetryConfig(_Frozen):
    """How often a resource's load is redone after a transient (connection) error."""

    attempts: int = Field(default=3, ge=1, le=100)
    initial_wait: float = Field(default=1.0, ge=0, le=3600)
    max_wait: float = Field(default=30.0, ge=0, le=3600)


class CheckpointConfig(_Frozen):
    """How often a long load commits its progress (a batch boundary once either limit is passed).

    Both unset: the load is one transaction and a resumed run starts it again.
    """

    every_rows: int | None = Field(default=None, ge=1)
    every_seconds: float | None = Field(default=60.0, gt=0)


class IncrementalConfig(_Frozen):
    """Load only rows whose ``column`` is greater than the stored high-water mark."""

    column: str = Field(min_length=1)
    #: Used as the mark when none is stored yet (typed like the column: '2024-01-01' for a date).
    initial_value: int | float | str | None = None
    #: Re-read rows this far below the mark (a number, or a duration such as '2h' for timestamps);
    #: needs mode: merge so the re-read rows replace themselves.
    lookback: int | float | str | None = None

    @field_validator("lookback")
    @classmethod
    def _duration(cls, value: int | float | str | None) -> int | float | str | None:
        if isinstance(value, str):
            from conduit_core.state.values import parse_duration

            parse_duration(value)
        return value


class SchemaEvolutionConfig(_Frozen):
    """What to do when the source's schema drifts from the target's (see docs/schema.md)."""

    mode: Literal["manual", "auto", "warn"] = "manual"
    on_column_removed: Literal["fail", "ignore", "fill_null"] = "fail"
    on_type_change: Literal["fail", "widen"] = "widen"


class DeclaredColumn(_Frozen):
    """One column of a declared ``schema:``: its type, whether it may be NULL, and a parse format."""

    type: str
    nullable: bool = True
    #: strptime format for text parsed into a date or timestamp, e.g. '%d/%m/%Y'.
    format: str | None = None
    #: Time zone of text parsed into a timestamptz without an offset, e.g. 'Europe/Paris'.
    timezone: str | None = None
    #: Text read as true / false for a boolean column (default: Arrow's true/false/1/0).
    true_values: tuple[str, ...] | None = None
    false_values: tuple[str, ...] | None = None

    @field_validator("true_values", "false_values", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and any(isinstance(v, bool) for v in value):
            msg = "YAML reads unquoted yes/no/on/off/true/false as booleans: quote each token, e.g. ['yes']"
            raise ValueError(msg)
        return value

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        from conduit_core.schema.types import parse_type

        parse_type(value)
        return value


class QualityCheckConfig(BaseModel):
    """One check of ``quality_checks:``; parameters depend on the check (see docs/quality.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    check: str = Field(min_length=1)
    column: str | None = None
    action: Literal["fail", "warn", "dlq"] = "dlq"
    name: str | None = None
    pattern: str | None = None
    min_value: float | int | str | None = None
    max_value: float | int | str | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    values: tuple[Any, ...] | None = None
    sql: str | None = None
    #: Extra parameters passed to a custom check.
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _parameters(self) -> QualityCheckConfig:
        from conduit_core.quality.registry import validate_check

        validate_check(self)
        return self

    @property
    def label(self) -> str:
        return self.name or (f"{self.check}({self.column})" if self.column else self.check)


class QualityGate(_Frozen):
    """Fail the resource when more than this share of the rows read went to the dead-letter queue."""

    max_dlq_ratio: float = Field(ge=0, le=1)


class CoercionConfig(_Frozen):
    """``strict: true``: a value that cannot be converted fails the resource instead of going to the DLQ."""

    strict: bool = False


TRANSFORM_KINDS = ("rename", "select", "drop", "cast", "filter", "derive", "sql", "dedupe", "join", "uses")


class DedupeConfig(_Frozen):
    """``dedupe:`` one row per key across the whole load (see docs/transforms.md)."""

    keys: tuple[str, ...] = Field(min_length=1)
    #: first: the first row read (or the smallest ``order_by``); last: the last read (or the largest
    #: ``order_by``); latest: the largest ``order_by``; non_null: the row with the most non-NULL values.
    keep: Literal["first", "last", "latest", "non_null"] = "first"
    order_by: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _order(self) -> DedupeConfig:
        if self.keep == "latest" and self.order_by is None:
            msg = "keep: latest needs order_by (the column whose largest value wins)"
            raise ValueError(msg)
        if self.order_by is not None and self.order_by in self.keys:
            msg = f"order_by {self.order_by!r} is one of the keys; it must tell rows of the same key apart"
            raise ValueError(msg)
        return self

    @property
    def streams(self) -> bool:
        """Whether the winner is known when its row is read (the first one, in read order)."""
        return self.keep == "first" and self.order_by is None


class JoinConfig(_Frozen):
    """``join:`` columns from a lookup source, matched on keys (see docs/transforms.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    #: The lookup: the name of a source of this file, read in full once per load.
    with_: str = Field(alias="with", min_length=1)
    #: Key columns: a list when both sides name them alike, or {column here: column of the lookup}.
    on: tuple[str, ...] | dict[str, str]
    how: Literal["left", "inner"] = "left"
    #: The lookup's columns to add (default: all but its keys).
    columns: tuple[str, ...] | None = None
    #: Appended to an added column whose name is taken; without it, a taken name is an error.
    suffix: str | None = Field(default=None, min_length=1)
    #: Rows with no match: kept with NULLs (left only), left out and counted as filtered, or sent to the
    #: dead-letter queue. Default: keep for how: left, drop for how: inner.
    unmatched: Literal["keep", "drop", "dlq"] | None = None

    @model_validator(mode="after")
    def _policy(self) -> JoinConfig:
        if not self.on:
            msg = "on: name at least one key column"
            raise ValueError(msg)
        if self.how == "inner" and self.unmatched == "keep":
            msg = "how: inner leaves unmatched rows out; use how: left to keep them (or unmatched: drop | dlq)"
            raise ValueError(msg)
        return self

    @property
    def keys(self) -> dict[str, str]:
        """{column here: column of the lookup}."""
        return dict(self.on) if isinstance(self.on, dict) else {k: k for k in self.on}

    @property
    def policy(self) -> str:
        return self.unmatched or ("keep" if self.how == "left" else "drop")


class TransformConfig(_Frozen):
    """One step of ``transforms:``: exactly one of the step keys (see docs/transforms.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    #: How the manifest names the step (default: its kind and position, e.g. ``filter #2``).
    name: str | None = Field(default=None, min_length=1)
    rename: dict[str, str] | None = None
    select: tuple[str, ...] | None = None
    drop: tuple[str, ...] | None = None
    cast: dict[str, str] | None = None
    filter: str | None = Field(default=None, min_length=1)
    derive: dict[str, str] | None = None
    sql: str | None = Field(default=None, min_length=1)
    dedupe: DedupeConfig | None = None
    join: JoinConfig | None = None
    #: A Python step: ``module:function``, or a name registered in the entry-point group ``conduit.transforms``.
    uses: str | None = Field(default=None, min_length=1)
    #: Keyword arguments for a Python step.
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")

    @model_validator(mode="after")
    def _one_kind(self) -> TransformConfig:
        given = [k for k in TRANSFORM_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            what = f"{', '.join(given)} together" if given else "none of them"
            msg = f"a transform step takes exactly one of {', '.join(TRANSFORM_KINDS)} (got {what})"
            raise ValueError(msg)
        if self.with_ and given[0] != "uses":
            msg = "`with:` goes with `uses:` (the options of a Python step)"
            raise ValueError(msg)
        if self.cast:
            from conduit_core.schema.types import parse_type

            for column, type_text in self.cast.items():
                try:
                    parse_type(type_text)
                except ValueError as exc:
                    msg = f"cast.{column}: {exc}"
                    raise ValueError(msg) from None
        if self.sql is not None:
            from conduit_core.stages.transforms import check_row_wise

            check_row_wise(self.sql)
        return self

    @property
    def kind(self) -> str:
        return next(k for k in TRANSFORM_KINDS if getattr(self, k) is not None)


class ResourceConfig(_Frozen):
    """One source-to-destination flow."""

    name: Name
    source: str
    destination: str
    table: str | None = Field(default=None, min_length=1)
    path: ConfigPath | None = None
    mode: WriteMode = WriteMode.APPEND
    primary_key: tuple[str, ...] = ()
    query: str | None = Field(default=None, min_length=1)
    batch_size: int | None = Field(default=None, ge=1, le=10_000_000)
    retries: RetryConfig = RetryConfig()
    checkpoint: CheckpointConfig | None = None
    #: A unique, ordered source column to resume database sources after (keyset), e.g. the primary key.
    checkpoint_column: str | None = Field(default=None, min_length=1)
    incremental: IncrementalConfig | None = None
    #: Declared column types (they take precedence over inferred ones): {column: type or {type, nullable, format}}.
    declared_schema: dict[str, DeclaredColumn] | None = Field(default=None, alias="schema")
    schema_evolution: SchemaEvolutionConfig = SchemaEvolutionConfig()
    quality_checks: tuple[QualityCheckConfig, ...] = ()
    quality_gate: QualityGate | None = None
    coercion: CoercionConfig = CoercionConfig()
    #: Steps between coercion and the quality checks, applied in order (see docs/transforms.md).
    transforms: tuple[TransformConfig, ...] = ()

    @field_validator("declared_schema", mode="before")
    @classmethod
    def _type_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="before")
    @classmethod
    def _incremental_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "incremental_column" in data:
            data = dict(data)
            column = data.pop("incremental_column")
            if "incremental" in data:
                msg = "set either incremental_column or incremental, not both"
                raise ValueError(msg)
            data["incremental"] = {"column": column}
        return data

    @model_validator(mode="after")
    def _lookback_needs_merge(self) -> ResourceConfig:
        if self.incremental and self.incremental.lookback is not None and self.mode is not WriteMode.MERGE:
            msg = ("incremental.lookback re-reads rows that were already loaded; with mode "
                   f"{self.mode.value!r} they would be doubled. Use mode: merge with primary_key")
            raise ValueError(msg)
        return self

    @field_validator("primary_key", mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @property
    def target_table(self) -> str:
        return self.table or self.name


class Settings(_Frozen):
    """Project-wide settings (the optional top-level ``settings:`` block)."""

    state_dir: ConfigPath = Path(".conduit")
    batch_size: int = Field(default=50_000, ge=1, le=10_000_000)
    checkpoint: CheckpointConfig = CheckpointConfig()


class StateConfig(_Frozen):
    """``state: postgresql://...``: keep state, checkpoints and history in PostgreSQL."""

    dsn: SecretStr
    db_schema: str = Field(default="conduit_state", alias="schema", min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _url(cls, data: Any) -> Any:
        return {"dsn": data} if isinstance(data, str) else data

    @field_validator("dsn")
    @classmethod
    def _postgres(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            msg = "state must be a PostgreSQL URL (postgresql://user:password@host:port/database)"
            raise ValueError(msg)
        return value


class IngestConfig(_Frozen):
    """A whole ingest.yml after validation."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    file: Path
    sources: tuple[ConnectorEntry, ...]
    destinations: tuple[ConnectorEntry, ...]
    resources: tuple[ResourceConfig, ...]
    settings: Settings = Settings()
    state: StateConfig | None = None

    @property
    def base_dir(self) -> Path:
        return self.file.parent

    def source(self, name: str) -> ConnectorEntry:
        return next(s for s in self.sources if s.name == name)

    def destination(self, name: str) -> ConnectorEntry:
        return next(d for d in self.destinations if d.name == name)

    def checkpoint(self, resource: ResourceConfig) -> CheckpointConfig:
        return resource.checkpoint or self.settings.checkpoint

    def resource(self, name: str) -> ResourceConfig:
        return next(r for r in self.resources if r.name == name)
