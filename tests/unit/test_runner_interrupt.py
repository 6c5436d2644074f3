from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conduit_core.batch import Batch
from conduit_core.config import load_config
from conduit_core.config.models import ConnectorEntry
from conduit_core.connectors.base import BaseSource, ReadRequest
from conduit_core.engine import runner
from conduit_core.engine import session as session_module
from conduit_core.state.sqlite_store import SqliteStateStore


class Interrupting(BaseSource):
    """Stands in for a source the user interrupts with Ctrl-C mid-read."""

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        raise KeyboardInterrupt
        yield  # pragma: no cover


def test_interrupted_run_is_recorded_as_interrupted(write_config: Callable[[str], Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in.csv").write_text("id\n1\n")
    config = load_config(write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: d, type: parquet, path: out.parquet}]
    resources: [{name: r, source: s, destination: d}]
    """), env={})

    def build(_entry: ConnectorEntry) -> Any:
        return Interrupting({})

    monkeypatch.setattr(session_module, "source_of", build)
    with pytest.raises(KeyboardInterrupt):
        runner.run(config, runner.RunOptions(skip_preflight=True))
    runs = SqliteStateStore(config.settings.state_dir).runs()
    assert runs[0]["status"] == "interrupted"
    assert runs[0]["resources"][0]["status"] == "interrupted"
    assert runs[0]["resources"][0]["error"] == "interrupted (KeyboardInterrupt)"
    assert not (tmp_path / "out.parquet").exists()
    # Interrupted during preflight (which reads the source first): recorded as interrupted, no resource run.
    with pytest.raises(KeyboardInterrupt):
        runner.run(config)
    latest = SqliteStateStore(config.settings.state_dir).runs()[0]
    assert latest["status"] == "interrupted"
    assert latest["resources"] == []
