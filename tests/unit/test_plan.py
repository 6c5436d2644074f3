"""A resource's plan is a plain value: it pickles (an executor may send it to another process) and a session
built from the copy has the same connectors, target and lookups."""

from __future__ import annotations

import pickle
from pathlib import Path

from conduit_core.config.loader import load_config
from conduit_core.engine.plan import plan_resource
from conduit_core.engine.session import LoadSession


def test_a_plan_pickles_and_a_session_is_built_from_the_copy(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,cust\n1,a\n", encoding="utf-8")
    (tmp_path / "ingest.yml").write_text("""\
sources:
  - {name: s, type: csv, path: in.csv}
  - {name: customers, type: csv, path: in.csv}
destinations:
  - {name: d, type: postgresql, dsn: "postgresql://u:secret@127.0.0.1:1/db"}
resources:
  - name: orders
    source: s
    destination: d
    mode: merge
    primary_key: [id]
    batch_size: 123
    transforms: [{join: {with: customers, on: [cust], suffix: _c}}]
""", encoding="utf-8")
    config = load_config(tmp_path / "ingest.yml")
    plan = plan_resource(config, config.resources[0], "run-1", full_refresh=True)
    copy = pickle.loads(pickle.dumps(plan))
    assert copy == plan
    assert (copy.batch_size, copy.target.mode, copy.target.table) == (123, "full_refresh", "orders")
    assert [entry.name for entry in copy.lookups] == ["customers"]
    assert copy.destination.options.dsn.get_secret_value() == "postgresql://u:secret@127.0.0.1:1/db"
    assert "secret" not in repr(copy)
    session = LoadSession(copy)
    try:
        assert type(session.source).__name__ == "CsvSource"
        assert type(session.destination).__name__ == "PostgresDestination"
        assert session.lookups.get("customers").rows == 1
        assert session.step_context().work == tmp_path / ".conduit" / "work" / "orders"
    finally:
        session.close()
