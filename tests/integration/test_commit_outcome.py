"""A commit whose outcome the client cannot see: the retry reads the committed state back and decides.

The fault is injected with a DuckDB destination subclass (a stand-in for a
connection that drops during COMMIT, which a real server cannot be made to do
on cue): it either commits and then raises a ConnectionError (the commit
landed), or raises before committing (it did not). The rows are counted in the
real DuckDB file.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from conduit_core.config.loader import load_config
from conduit_core.connectors import registry
from conduit_core.connectors.duckdb import DuckDBDestination
from conduit_core.engine.results import Status
from conduit_core.engine.runner import RunOptions, run
from conduit_core.errors import ConnectionError as RetriableError
from conduit_core.state.resume import ResumeState

ROWS = 20_000


class _FlakyCommit(DuckDBDestination):
    failures = 0
    landed = True
    when_final = True

    def checkpoint(self, state: ResumeState, *, final: bool = False) -> None:
        if final is self.when_final and _FlakyCommit.failures == 0:
            _FlakyCommit.failures += 1
            if self.landed:
                super().checkpoint(state, final=final)
            else:
                self.abort()
            msg = "server closed the connection unexpectedly (during COMMIT)"
            raise RetriableError(msg)
        super().checkpoint(state, final=final)


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> type[_FlakyCommit]:
    real = registry.destination_class
    monkeypatch.setattr(registry, "destination_class",
                        lambda name: _FlakyCommit if name == "duckdb" else real(name))
    _FlakyCommit.failures = 0
    return _FlakyCommit


def _project(tmp_path: Path) -> Path:
    (tmp_path / "in.csv").write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, ROWS + 1)))
    config = tmp_path / "ingest.yml"
    config.write_text("""\
sources: [{name: src, type: csv, path: in.csv}]
destinations: [{name: dst, type: duckdb, path: out.duckdb}]
resources:
  - {name: load, source: src, destination: dst, checkpoint: {every_rows: 3000},
     retries: {attempts: 3, initial_wait: 0, max_wait: 0}}
""")
    return config


@pytest.mark.parametrize(("landed", "when_final"), [(True, True), (False, True), (True, False), (False, False)],
                         ids=["final-landed", "final-lost", "checkpoint-landed", "checkpoint-lost"])
def test_unknown_commit_outcome_is_resolved_by_the_committed_state(
        tmp_path: Path, flaky: type[_FlakyCommit], landed: bool, when_final: bool) -> None:
    flaky.landed, flaky.when_final = landed, when_final
    result = run(load_config(_project(tmp_path)), RunOptions(batch_size=1000)).resources[0]
    assert flaky.failures == 1
    assert result.status is Status.SUCCESS, result.error
    assert result.retries == 1
    assert result.rows_written == ROWS
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*), count(DISTINCT id) FROM load").fetchall() == [(ROWS, ROWS)]


@pytest.mark.parametrize(("landed", "when_final"), [(True, False), (True, True)],
                         ids=["checkpoint-landed", "final-landed"])
def test_rejected_rows_are_counted_once_across_a_retry(tmp_path: Path, flaky: type[_FlakyCommit], landed: bool,
                                                        when_final: bool) -> None:
    """Every 10th row goes to the DLQ: after the retry the counts still balance and each row is in one place."""
    flaky.landed, flaky.when_final = landed, when_final
    config = _project(tmp_path)
    config.write_text(config.read_text().replace(
        "retries: {", 'quality_checks: [{check: expression, sql: "id % 10 <> 0"}],\n     retries: {'))
    result = run(load_config(config), RunOptions(batch_size=1000)).resources[0]
    assert flaky.failures == 1
    assert result.status is Status.PARTIAL_SUCCESS, result.error
    assert (result.rows_read, result.rows_written, result.rows_dlq) == (ROWS, ROWS * 9 // 10, ROWS // 10)
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*), count(DISTINCT id) FROM load").fetchall() == [(ROWS * 9 // 10,) * 2]
    lines = [line for path in (tmp_path / ".conduit" / "errors" / "load").glob("*.jsonl")
             for line in path.read_text().splitlines()]
    assert len(lines) == ROWS // 10


class _CrashAt(DuckDBDestination):
    """Fails (not retriably) at the n-th checkpoint of a load, after the batches before it were written:
    a stand-in for a process killed between writing rejected rows and committing them."""

    crash_at: int | None = None
    seen = 0

    def checkpoint(self, state: ResumeState, *, final: bool = False) -> None:
        _CrashAt.seen += 1
        if _CrashAt.crash_at is not None and _CrashAt.seen == _CrashAt.crash_at:
            msg = "crashed before this commit"
            raise RuntimeError(msg)
        super().checkpoint(state, final=final)


def test_rejected_rows_stay_once_after_several_failed_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = registry.destination_class
    monkeypatch.setattr(registry, "destination_class", lambda name: _CrashAt if name == "duckdb" else real(name))
    config = _project(tmp_path)
    config.write_text(config.read_text().replace(
        "retries: {", 'quality_checks: [{check: expression, sql: "id % 10 <> 0"}],\n     retries: {'))
    for crash_at, resume in ((3, False), (1, True), (None, True)):  # 2 checkpoints, then none, then to the end
        _CrashAt.crash_at, _CrashAt.seen = crash_at, 0
        outcome = run(load_config(config), RunOptions(batch_size=1000, resume=resume, skip_preflight=True))
        assert (outcome.status is Status.FAILED) == (crash_at is not None)
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*), count(DISTINCT id) FROM load").fetchall() == [(ROWS * 9 // 10,) * 2]
    files = list((tmp_path / ".conduit" / "errors" / "load").glob("*.jsonl"))
    ids = sorted(json.loads(line)["record"]["id"] for path in files for line in path.read_text().splitlines())
    assert ids == list(range(10, ROWS + 1, 10))  # each rejected row once, across all three runs
    assert len(files) == 1  # the load's one file, appended to by the runs that resumed it
