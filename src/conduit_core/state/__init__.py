"""Persistent state: run history and manifests, checkpoints, high-water marks and run locks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conduit_core.config.models import IngestConfig
    from conduit_core.state.store import StateStore


def open_store(config: IngestConfig) -> StateStore:
    """The state store ingest.yml asks for: PostgreSQL with ``state:``, else SQLite in ``settings.state_dir``."""
    if config.state is not None:
        from conduit_core.state.pg_store import PostgresStateStore

        return PostgresStateStore(config.state.dsn.get_secret_value(), config.state.db_schema)
    from conduit_core.state.sqlite_store import SqliteStateStore

    return SqliteStateStore(config.settings.state_dir)
