"""The default state store: SQLite in ``<state_dir>/state.db`` and a manifest.json per run."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from conduit_core.errors import FatalError, LockedError
from conduit_core.state.store import SCHEMA, StateStore, lock_message, now


def _migrate(con: sqlite3.Connection) -> None:
    """Add columns introduced after a state store was created."""
    columns = {row[1] for row in con.execute("PRAGMA table_info(resource_runs)")}
    if "retries" not in columns:
        con.execute("ALTER TABLE resource_runs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0")
    if "manifest" not in {row[1] for row in con.execute("PRAGMA table_info(runs)")}:
        con.execute("ALTER TABLE runs ADD COLUMN manifest TEXT")


class SqliteStateStore(StateStore):
    """State in one directory. Locks are ``flock`` locks on files under ``locks/``: the
    kernel releases them when the holder exits, even on SIGKILL, so a crash never
    leaves a stale lock behind."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.db_path = state_dir / "state.db"
        self.location = str(self.db_path)
        self._con: sqlite3.Connection | None = None
        self._ready = False  # the schema is in place (WAL mode persists in the file): set up once per store

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.db_path, timeout=30)
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open the state store {self.db_path}: {exc}"
            raise FatalError(msg, hint="check that the state directory is writable") from exc
        try:
            con.row_factory = sqlite3.Row
            if not self._ready:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(SCHEMA.format(int="INTEGER", real="REAL"))
                _migrate(con)
                self._ready = True
            self._con = con
            with con:
                yield
        finally:
            self._con = None
            con.close()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        assert self._con is not None
        self._con.execute(sql, list(params))

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        assert self._con is not None
        return [dict(r) for r in self._con.execute(sql, list(params))]

    def _write_manifest(self, run_id: str, data: dict[str, Any]) -> None:
        folder = self.state_dir / "runs" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "manifest.json"
        temp = path.with_suffix(".json.tmp")
        temp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        temp.replace(path)

    @contextlib.contextmanager
    def lock(self, resources: Sequence[str], run_id: str) -> Iterator[None]:
        folder = self.state_dir / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        held: list[TextIO] = []
        try:
            for resource in sorted(set(resources)):
                path = folder / f"{resource}.lock"
                handle = path.open("a+", encoding="utf-8")
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown process"
                    handle.close()
                    raise LockedError(lock_message(resource, holder, str(path)),
                                      hint="wait for that run to finish; the lock is released when it exits") from None
                handle.seek(0)
                handle.truncate()
                handle.write(f"pid {os.getpid()} on {socket.gethostname()}, run {run_id}, since {now()}")
                handle.flush()
                held.append(handle)
            yield
        finally:
            for locked in held:
                locked.close()  # closing releases the flock
