"""The state store: run history, manifests, resource state (checkpoints and high-water marks) and locks.

Default: SQLite at ``<state_dir>/state.db`` (WAL), plus a ``manifest.json``
per run. With ``state: postgresql://...`` the same tables live in PostgreSQL
(see :mod:`conduit_core.state.pg_store`) so several machines can share them.

Error summaries are stored as the engine produced them, which never include
option values, so secrets from ingest.yml cannot reach the store.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from conduit_core.engine.results import RunResult
from conduit_core.schema.model import TableSchema
from conduit_core.state.resume import ResumeState

RUN_COLUMNS = ("run_id", "status", "config_file", "started_at", "finished_at", "duration_s",
               "rows_read", "rows_written", "rows_dlq", "rows_filtered", "dry_run")
RESOURCE_COLUMNS = ("run_id", "resource", "source", "destination", "mode", "status", "started_at", "finished_at",
                    "duration_s", "rows_read", "rows_written", "rows_dlq", "rows_filtered", "batches", "retries",
                    "files_read", "error", "error_type")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    config_file TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s {real},
    rows_read {int}, rows_written {int}, rows_dlq {int}, rows_filtered {int},
    dry_run INTEGER NOT NULL DEFAULT 0,
    manifest TEXT
);
CREATE TABLE IF NOT EXISTS resource_runs (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    resource TEXT NOT NULL,
    source TEXT, destination TEXT, mode TEXT,
    status TEXT NOT NULL,
    started_at TEXT, finished_at TEXT, duration_s {real},
    rows_read {int}, rows_written {int}, rows_dlq {int}, rows_filtered {int},
    batches {int},
    retries INTEGER NOT NULL DEFAULT 0,
    files_read TEXT,
    error TEXT, error_type TEXT,
    PRIMARY KEY (run_id, resource)
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
CREATE TABLE IF NOT EXISTS schema_versions (
    resource TEXT NOT NULL,
    version INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    schema_json TEXT NOT NULL,
    diff_json TEXT,
    run_id TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (resource, version)
);
CREATE TABLE IF NOT EXISTS resource_state (
    resource TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StateStore(ABC):
    """Where runs, manifests and resource state are kept. Subclasses supply the database."""

    #: Shown in messages: a path or a redacted URL.
    location: str

    # -- the database -------------------------------------------------------------
    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement (``?`` placeholders) in the current transaction."""

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """Open the store (creating its tables) for one transaction."""

    @abstractmethod
    def lock(self, resources: Sequence[str], run_id: str) -> AbstractContextManager[None]:
        """Hold the run lock of every resource in ``resources``; raise :class:`LockedError` if one is held."""

    def _write_manifest(self, run_id: str, data: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Keep a copy of the manifest outside the database too (the SQLite store writes a file)."""

    # -- runs -------------------------------------------------------------------------
    def record(self, run: RunResult) -> None:
        """Store ``run`` (insert or update) with its manifest."""
        self.record_manifest(run.to_dict())

    def record_manifest(self, data: dict[str, Any]) -> None:
        """Store a run's manifest (``RunResult.to_dict()``, or one read back and amended)."""
        manifest = json.dumps(data, indent=2) + "\n"
        with self._transaction():
            values = [int(data[c]) if c == "dry_run" else data[c] for c in RUN_COLUMNS]
            self._upsert("runs", (*RUN_COLUMNS, "manifest"), [*values, manifest], ("run_id",))
            for resource in data["resources"]:
                res = {**resource, "run_id": data["run_id"], "files_read": json.dumps(resource.get("files_read", []))}
                self._upsert("resource_runs", RESOURCE_COLUMNS, [res.get(c) for c in RESOURCE_COLUMNS],
                             ("run_id", "resource"))
        self._write_manifest(data["run_id"], data)

    def unfinished_runs(self) -> list[dict[str, Any]]:
        """Manifests of the runs that did not finish (status running or interrupted) and that no later run
        has resumed or gone past, newest first."""
        with self._transaction():
            rows = self._query("SELECT manifest FROM runs WHERE status IN ('running', 'interrupted') "
                               "AND manifest IS NOT NULL ORDER BY started_at DESC, run_id DESC")
        manifests = [json.loads(r["manifest"]) for r in rows]
        return [m for m in manifests if not m.get("resumed_by") and not m.get("superseded_by")]

    def _upsert(self, table: str, columns: Sequence[str], values: Sequence[Any], key: Sequence[str]) -> None:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        self._execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                      f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}", values)

    def runs(self, *, status: str | None = None, resource: str | None = None,
             last: int | None = 20) -> list[dict[str, Any]]:
        """Runs newest first, each with its resources, filtered as asked. A resource carries what its manifest
        recorded beyond the columns (its ``steps``, ``quality``, schema drift...)."""
        columns = ", ".join(RUN_COLUMNS)
        query = f"SELECT {columns}, manifest FROM runs"
        clauses: list[str] = []
        params: list[Any] = []
        if status:
            clauses.append("(status = ? OR run_id IN (SELECT run_id FROM resource_runs WHERE status = ?))")
            params += [status, status]
        if resource:
            clauses.append("run_id IN (SELECT run_id FROM resource_runs WHERE resource = ?)")
            params.append(resource)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY started_at DESC, run_id DESC"
        if last:
            query += f" LIMIT {int(last)}"
        with self._transaction():
            runs = self._query(query, params)
            for run in runs:
                rows = self._query(f"SELECT {', '.join(RESOURCE_COLUMNS)} FROM resource_runs WHERE run_id = ? "
                                   "ORDER BY started_at, resource", [run["run_id"]])
                run["dry_run"] = bool(run["dry_run"])
                manifest = json.loads(run.pop("manifest") or "{}")
                recorded = {r["resource"]: r for r in manifest.get("resources", [])}
                run["resources"] = [{**recorded.get(r["resource"], {}), **r,
                                     "files_read": json.loads(r["files_read"] or "[]")} for r in rows
                                    if resource is None or r["resource"] == resource]
        return runs

    def manifest(self, run_id: str) -> dict[str, Any] | None:
        with self._transaction():
            rows = self._query("SELECT manifest FROM runs WHERE run_id = ?", [run_id])
        return json.loads(rows[0]["manifest"]) if rows and rows[0]["manifest"] else None

    # -- resource state -----------------------------------------------------------------
    def get_state(self, resource: str) -> ResumeState | None:
        with self._transaction():
            rows = self._query("SELECT state FROM resource_state WHERE resource = ?", [resource])
        return ResumeState.from_json(rows[0]["state"]) if rows else None

    def put_state(self, state: ResumeState) -> None:
        with self._transaction():
            self._upsert("resource_state", ("resource", "state", "updated_at"),
                         [state.resource, state.to_json(), state.updated_at or now()], ("resource",))

    def delete_state(self, resource: str) -> None:
        with self._transaction():
            self._execute("DELETE FROM resource_state WHERE resource = ?", [resource])

    # -- schema versions -------------------------------------------------------------------------
    def schema_versions(self, resource: str) -> list[dict[str, Any]]:
        """Every stored version of ``resource``'s schema, oldest first (``schema`` and ``diff`` decoded)."""
        with self._transaction():
            rows = self._query("SELECT version, fingerprint, schema_json, diff_json, run_id, created_at "
                               "FROM schema_versions WHERE resource = ? ORDER BY version", [resource])
        return [{"version": int(r["version"]), "fingerprint": r["fingerprint"], "run_id": r["run_id"],
                 "created_at": r["created_at"], "schema": json.loads(r["schema_json"]),
                 "diff": json.loads(r["diff_json"]) if r["diff_json"] else None} for r in rows]

    def record_schema(self, resource: str, schema: TableSchema, run_id: str) -> int:
        """Store ``schema`` as a new version when it differs from the latest; return the current version."""
        from conduit_core.schema.diff import diff

        with self._transaction():
            rows = self._query("SELECT version, fingerprint, schema_json FROM schema_versions WHERE resource = ? "
                               "ORDER BY version DESC LIMIT 1", [resource])
            fingerprint = schema.fingerprint()
            if rows and rows[0]["fingerprint"] == fingerprint:
                return int(rows[0]["version"])
            version = int(rows[0]["version"]) + 1 if rows else 1
            previous = TableSchema.from_dict(json.loads(rows[0]["schema_json"])) if rows else None
            changes = diff(previous, schema).to_dict() if previous is not None else None
            self._execute("INSERT INTO schema_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [resource, version, fingerprint, json.dumps(schema.to_dict()),
                           json.dumps(changes) if changes else None, run_id, now()])
        return version

    def states(self) -> list[ResumeState]:
        with self._transaction():
            rows = self._query("SELECT state FROM resource_state ORDER BY resource")
        return [ResumeState.from_json(r["state"]) for r in rows]


def lock_message(resource: str, holder: str, where: str) -> str:
    return (f"resource {resource!r} is being run by another conduit process ({holder}); "
            f"two runs of one resource would interleave their writes. Lock: {where}")


