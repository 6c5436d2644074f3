"""State in PostgreSQL (``state: postgresql://...``): several machines share history, checkpoints and locks.

The tables are those of the SQLite store, in their own schema (``conduit_state``
unless ``state: {dsn, schema}`` says otherwise). Run locks are session-level
advisory locks on a connection held for the whole run: the server releases
them when that connection ends, so a killed run never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

from conduit_core.connectors.postgresql import PostgresOptions, connect, translate
from conduit_core.connectors.sql import quote_ident
from conduit_core.errors import ConduitError, FatalError, LockedError
from conduit_core.observe.redact import redact
from conduit_core.state.store import SCHEMA, StateStore, lock_message

_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def _lock_key(resource: str) -> int:
    # Advisory locks take a bigint: a stable 63-bit hash of the resource name.
    return int.from_bytes(hashlib.sha256(f"conduit:{resource}".encode()).digest()[:8], "big") >> 1


class PostgresStateStore(StateStore):
    def __init__(self, dsn: str, schema: str = "conduit_state") -> None:
        self.options = PostgresOptions.model_validate({"dsn": dsn})
        self.schema = schema
        self.location = f"{redact(dsn, self.options.secrets())} (schema {schema})"
        self._cur: Any = None
        self._ready = False

    def _connect(self) -> Any:
        try:
            return connect(self.options)
        except ConduitError as exc:
            msg = f"cannot open the PostgreSQL state store: {exc.message}"
            raise FatalError(msg, hint="check `state:` in ingest.yml") from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        con = self._connect()
        try:
            self._cur = con.cursor()
            self._execute(f"SET search_path TO {quote_ident(self.schema)}")
            if not self._ready:
                # Two first runs on new machines may race to create the tables: serialise them.
                self._execute("SELECT pg_advisory_xact_lock(?)", [_lock_key("__schema__")])
                self._execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.schema)}")
                for statement in SCHEMA.format(int="BIGINT", real="DOUBLE PRECISION").split(";"):
                    if statement.strip():
                        self._execute(statement)
            yield
            con.commit()
            self._ready = True
        except BaseException:
            with contextlib.suppress(Exception):
                con.rollback()
            raise
        finally:
            self._cur = None
            with contextlib.suppress(Exception):
                con.close()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self._cur.execute(_numbered(sql), tuple(params) or None)
        except Exception as exc:  # noqa: BLE001 - every driver error is translated
            raise translate(exc, "state store statement", self.options) from None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._execute(sql, params)
        names = [d[0] for d in self._cur.description]
        return [dict(zip(names, row, strict=True)) for row in self._cur.fetchall()]

    @contextlib.contextmanager
    def lock(self, resources: Sequence[str], run_id: str) -> Iterator[None]:
        try:
            con = connect(self.options, autocommit=True)
        except ConduitError as exc:
            msg = f"cannot open the PostgreSQL state store: {exc.message}"
            raise FatalError(msg, hint="check `state:` in ingest.yml") from None
        try:
            cur = con.cursor()
            for resource in sorted(set(resources)):
                try:
                    cur.execute("SELECT pg_try_advisory_lock($1)", (_lock_key(resource),))
                    (acquired,) = cur.fetchone()
                except Exception as exc:  # noqa: BLE001
                    raise translate(exc, "state store lock", self.options) from None
                if not acquired:
                    holder = "see pg_locks for the holding session"
                    raise LockedError(lock_message(resource, holder, f"advisory lock {_lock_key(resource)} in "
                                                   f"{self.location}"),
                                      hint="wait for that run to finish; the lock is released when it exits")
            yield
        finally:
            with contextlib.suppress(Exception):  # ending the session releases every lock it held
                con.close()
