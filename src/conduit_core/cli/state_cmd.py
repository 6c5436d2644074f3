"""`conduit state show` and `conduit state reset`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from conduit_core.cli.output import out, print_json
from conduit_core.config.loader import load_config
from conduit_core.engine.runner import RunOptions, build_destination, select_resources, write_target
from conduit_core.state import open_store
from conduit_core.state.resume import ResumeState


def _summary(state: ResumeState) -> dict[str, Any]:
    # Where the load resumes: file and row, or the keyset column and value (not the digests a resume checks).
    position = {k: v for k, v in (state.position or {}).items() if k in ("file", "row", "column")}
    if state.position and "after" in state.position:
        position["after"] = state.position["after"].get("value")
    return {
        "resource": state.resource, "status": state.status, "run_id": state.run_id,
        "rows_committed": state.rows_committed, "position": position or None,
        "incremental_column": state.incremental_column,
        "high_water_mark": state.mark.get("value") if state.mark else None,
        "mark_type": state.mark.get("arrow_type") if state.mark else None,
        "updated_at": state.updated_at,
    }


def show_command(file: Path, resource: str | None, *, json_output: bool) -> None:
    config = load_config(file)
    names = [r.name for r in select_resources(config, [resource] if resource else [])]
    states = [_summary(s) for s in open_store(config).states() if s.resource in names]
    if json_output:
        print_json(states)
        return
    if not states:
        out.print(f"No saved state for {resource!r}." if resource else "No saved state.")
        return
    table = Table(title="Resource state")
    for name in ("resource", "status", "run", "rows committed", "resume at", "incremental", "high-water mark",
                 "updated"):
        table.add_column(name, overflow="fold")
    for s in states:
        where = ", ".join(f"{k} {v}" for k, v in (s["position"] or {}).items())
        table.add_row(escape(s["resource"]), "[yellow]checkpoint[/]" if s["status"] == "in_progress" else "complete",
                      s["run_id"][:12], f"{s['rows_committed']:,}", escape(where),
                      escape(s["incremental_column"] or ""), escape(str(s["high_water_mark"] or "")),
                      s["updated_at"][:19])
    out.print(table)


def reset_command(file: Path, resource: str) -> None:
    config = load_config(file)
    (selected,) = select_resources(config, [resource])
    store = open_store(config)
    with store.lock([selected.name], "state-reset"):
        destination = build_destination(config, selected)
        try:
            target = write_target(selected, RunOptions())
            # Whatever is there goes, even a state of another target or an earlier conduit (which a run refuses).
            saved = (destination.read_state(target) if destination.capabilities.checkpoints else None) \
                or store.get_state(selected.name)
            if saved is not None:
                destination.discard_state(target, saved)
        finally:
            destination.close()
        store.delete_state(selected.name)
    if saved is None:
        out.print(f"{resource}: no saved state; nothing to reset.")
        return
    out.print(f"{resource}: state reset (checkpoint and high-water mark discarded).")
    if saved.in_progress and saved.rows_committed:
        out.print(f"Note: the {saved.rows_committed:,} rows that the interrupted load (run {saved.run_id}) had "
                  "committed stay in the destination. A new append load reads the source from the start; use "
                  "`conduit run --full-refresh` to replace the target instead.")
