"""Pydantic models of ingest.yml.

Connector entries keep their options as the connector's own options model,
chosen by ``type`` through the registry (see :mod:`conduit_core.config.loader`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class IngestConfig(_Frozen):
    """A whole ingest.yml after validation."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    file: Path
    sources: tuple[ConnectorEntry, ...]
    destinations: tuple[ConnectorEntry, ...]
    resources: tuple[ResourceConfig, ...]
    settings: Settings = Settings()

    @property
    def base_dir(self) -> Path:
        return self.file.parent

    def source(self, name: str) -> ConnectorEntry:
        return next(s for s in self.sources if s.name == name)

    def destination(self, name: str) -> ConnectorEntry:
        return next(d for d in self.destinations if d.name == name)

    def resource(self, name: str) -> ResourceConfig:
        return next(r for r in self.resources if r.name == name)
