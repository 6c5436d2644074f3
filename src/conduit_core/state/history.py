"""Run history in SQLite (``<state_dir>/state.db``) and a manifest.json per run.

One row per run and one per resource of a run. Error summaries are stored as
the engine produced them, which never include option values, so secrets from
ingest.yml cannot reach the history.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conduit_core.engine.results import RunResult
from conduit_core.errors import FatalError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    config_file TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s REAL,
    rows_read INTEGER, rows_written INTEGER, rows_dlq INTEGER, rows_filtered INTEGER,
    dry_run INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS resource_runs (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    resource TEXT NOT NULL,
    source TEXT, destination TEXT, mode TEXT,
    status TEXT NOT NULL,
    started_at TEXT, finished_at TEXT, duration_s REAL,
    rows_read INTEGER, rows_written INTEGER, rows_dlq INTEGER, rows_filtered INTEGER,
    batches INTEGER,
    retries INTEGER NOT NULL DEFAULT 0,
    files_read TEXT,
    error TEXT, error_type TEXT,
    PRIMARY KEY (run_id, resource)
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
"""

_RUN_COLUMNS = ("run_id", "status", "config_file", "started_at", "finished_at", "duration_s",
                "rows_read", "rows_written", "rows_dlq", "rows_filtered", "dry_run")
_RESOURCE_COLUMNS = ("run_id", "resource", "source", "destination", "mode", "status", "started_at", "finished_at",
                     "duration_s", "rows_read", "rows_written", "rows_dlq", "rows_filtered", "batches", "retries",
                     "files_read", "error", "error_type")


def _migrate(con: sqlite3.Connection) -> None:
    """Add columns introduced after a state store was created."""
    columns = {row[1] for row in con.execute("PRAGMA table_info(resource_runs)")}
    if "retries" not in columns:
        con.execute("ALTER TABLE resource_runs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0")


class RunHistory:
    """Reads and writes the run history of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.db_path = state_dir / "state.db"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.db_path, timeout=30)
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open the state store {self.db_path}: {exc}"
            raise FatalError(msg, hint="check that the state directory is writable") from exc
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            _migrate(con)
            with con:
                yield con
        finally:
            con.close()

    def record(self, run: RunResult) -> Path:
        """Store ``run`` (insert or update) and write its manifest.json; return that path."""
        data = run.to_dict()
        with self._connect() as con:
            marks = ", ".join("?" * len(_RUN_COLUMNS))
            con.execute(
                f"INSERT OR REPLACE INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({marks})",
                [int(data[c]) if c == "dry_run" else data[c] for c in _RUN_COLUMNS],
            )
            for resource in data["resources"]:
                res = {**resource, "run_id": run.run_id, "files_read": json.dumps(resource["files_read"])}
                con.execute(
                    f"INSERT OR REPLACE INTO resource_runs ({', '.join(_RESOURCE_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_RESOURCE_COLUMNS))})",
                    [res[c] for c in _RESOURCE_COLUMNS],
                )
        return self._write_manifest(run.run_id, data)

    def _write_manifest(self, run_id: str, data: dict[str, Any]) -> Path:
        folder = self.state_dir / "runs" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "manifest.json"
        temp = path.with_suffix(".json.tmp")
        temp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        temp.replace(path)
        return path

    def runs(self, *, status: str | None = None, resource: str | None = None,
             last: int | None = 20) -> list[dict[str, Any]]:
        """Runs newest first, each with its resources, filtered as asked."""
        if not self.db_path.exists():
            return []
        query = "SELECT * FROM runs"
        clauses, params = [], []
        if status:
            clauses.append("(status = ? OR run_id IN (SELECT run_id FROM resource_runs WHERE status = ?))")
            params += [status, status]
        if resource:
            clauses.append("run_id IN (SELECT run_id FROM resource_runs WHERE resource = ?)")
            params.append(resource)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY started_at DESC, rowid DESC"
        if last:
            query += f" LIMIT {int(last)}"
        with self._connect() as con:
            runs = [dict(r) for r in con.execute(query, params)]
            for run in runs:
                rows = con.execute("SELECT * FROM resource_runs WHERE run_id = ? ORDER BY rowid", (run["run_id"],))
                run["dry_run"] = bool(run["dry_run"])
                run["resources"] = [
                    {**dict(r), "files_read": json.loads(r["files_read"] or "[]")} for r in rows
                    if resource is None or r["resource"] == resource
                ]
        return runs
