from __future__ import annotations

import json
from pathlib import Path

from conduit_core.engine.results import ResourceResult, RunResult, Status
from conduit_core.state.sqlite_store import SqliteStateStore


def _run(run_id: str, started: str, status: Status, resource: str = "users") -> RunResult:
    res = ResourceResult(resource=resource, source="s", destination="d", mode="append", status=status,
                         rows_read=10, rows_written=10 if status is Status.SUCCESS else 0,
                         files_read=["a.csv"], error=None if status is Status.SUCCESS else "boom")
    return RunResult(run_id=run_id, config_file="ingest.yml", started_at=started, finished_at=started, resources=[res])


def test_history_filters_and_orders_newest_first(tmp_path: Path) -> None:
    history = SqliteStateStore(tmp_path / ".conduit")
    history.record(_run("r1", "2026-01-01T00:00:00", Status.SUCCESS))
    history.record(_run("r2", "2026-01-02T00:00:00", Status.FAILED))
    history.record(_run("r3", "2026-01-03T00:00:00", Status.SUCCESS, resource="orders"))
    assert [r["run_id"] for r in history.runs()] == ["r3", "r2", "r1"]
    failed = history.runs(status="failed")
    assert [r["run_id"] for r in failed] == ["r2"]
    assert failed[0]["resources"][0]["error"] == "boom"
    assert [r["run_id"] for r in history.runs(resource="orders")] == ["r3"]
    assert [r["run_id"] for r in history.runs(last=1)] == ["r3"]
    assert history.runs()[0]["resources"][0]["files_read"] == ["a.csv"]


def test_each_run_writes_a_manifest_json(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path)
    store.record(_run("r9", "2026-01-01T00:00:00", Status.FAILED))
    data = json.loads((tmp_path / "runs" / "r9" / "manifest.json").read_text())
    assert data["status"] == "failed"
    assert data["resources"][0]["rows_read"] == 10
    assert store.manifest("r9") == data
