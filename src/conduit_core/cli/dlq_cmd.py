"""`conduit dlq list|show|replay`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from conduit_core.cli.output import out, print_json
from conduit_core.config.loader import load_config
from conduit_core.engine.runner import select_resources
from conduit_core.errors import ConfigError
from conduit_core.quality.dlq import read_entries


def _files(state_dir: Path, resource: str | None = None) -> list[dict[str, Any]]:
    root = state_dir / "errors"
    found = []
    for path in sorted(root.glob(f"{resource or '*'}/*.jsonl"), key=lambda p: p.stat().st_mtime):
        marker = path.with_suffix(".replayed.json")
        with path.open("rb") as handle:
            rows = sum(1 for line in handle if line.strip())
        found.append({"resource": path.parent.name, "run_id": path.stem, "rows": rows, "file": str(path),
                      "replayed": json.loads(marker.read_text()) if marker.exists() else None})
    return found


def list_command(file: Path, *, json_output: bool) -> None:
    config = load_config(file)
    files = _files(config.settings.state_dir)
    if json_output:
        print_json(files)
        return
    if not files:
        out.print("The dead-letter queue is empty.")
        return
    table = Table(title="Dead-letter queue")
    for name in ("resource", "run", "rows", "replayed", "file"):
        table.add_column(name, overflow="fold")
    for f in files:
        replayed = f"by {f['replayed']['replayed_by'][:12]} at {f['replayed']['at']}" if f["replayed"] else "no"
        table.add_row(escape(f["resource"]), f["run_id"], str(f["rows"]), replayed, escape(f["file"]))
    out.print(table)


def show_command(file: Path, resource: str, *, run_id: str | None, limit: int, json_output: bool) -> None:
    config = load_config(file)
    select_resources(config, [resource])
    files = _files(config.settings.state_dir, resource)
    if run_id is not None:
        files = [f for f in files if f["run_id"] == run_id]
    if not files:
        msg = f"no dead-letter rows for {resource!r}" + (f" in run {run_id!r}" if run_id else "")
        raise ConfigError(msg, hint="`conduit dlq list` shows what there is")
    chosen = files[-1]
    entries = read_entries(Path(chosen["file"]))
    if json_output:
        print_json(entries[:limit])
        return
    table = Table(title=f"{resource}: run {chosen['run_id']}, {len(entries)} row(s)"
                        + (f" (first {limit})" if len(entries) > limit else ""))
    for name in ("row", "check", "column", "value", "message", "record"):
        table.add_column(name, overflow="fold")
    for e in entries[:limit]:
        table.add_row(str(e.get("row")), escape(str(e.get("check"))), escape(str(e.get("column") or "")),
                      escape(repr(e.get("value"))), escape(str(e.get("message"))),
                      escape(json.dumps(e.get("record"), default=str)))
    out.print(table)


def replay_command(file: Path, resource: str, *, run_id: str, fixed: Path | None, json_output: bool) -> int:
    """Replay; return how many records were rejected again."""
    from conduit_core.engine.replay import replay

    config = load_config(file)
    (selected,) = select_resources(config, [resource])
    result = replay(config, selected, run_id, fixed)
    r = result.resources[0]
    if json_output:
        print_json(result.to_dict())
    else:
        out.print(f"{resource}: replayed {r.rows_read} record(s) of run {run_id}: {r.rows_written} written, "
                  f"{r.rows_dlq} rejected again (replay run {result.run_id}).")
    return r.rows_dlq
