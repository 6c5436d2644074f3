"""Runs that did not finish: found, recorded as interrupted with what they committed, and resumed.

A run is recorded as ``running`` before it loads anything, and again after every resource. A process
stopped by a signal records itself as ``interrupted``; a killed one cannot, so the next run that holds
the locks of its resources knows it is dead (it would still hold them) and records it as interrupted,
reading each resource's committed state from its destination: a load whose final commit landed before
the kill counts as completed, one with a checkpoint as interrupted at that checkpoint.

``conduit run --resume`` continues the latest such run: resources that completed in it (or in the runs
it resumed in turn) are skipped and say so, the interrupted one continues from its checkpoint, and those
it did not reach run. The two runs are linked (``resumes`` / ``resumed_by``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conduit_core.config.models import IngestConfig, ResourceConfig
from conduit_core.engine.results import RunResult, Status
from conduit_core.state.resume import ResumeState
from conduit_core.state.store import StateStore, now

log = logging.getLogger("conduit")


@dataclass
class Unfinished:
    """The latest interrupted run (not resumed yet) and what had completed in it and the runs it resumed."""

    run_id: str
    planned: list[str]
    #: When the oldest run of the chain started: a load completed after it needs no doing again.
    started_at: str = ""
    #: Resource -> the run of the chain in which its load completed.
    completed: dict[str, str] = field(default_factory=dict)
    #: This run and the runs it resumed, newest first.
    chain: list[str] = field(default_factory=list)


def _committed_state(config: IngestConfig, name: str) -> ResumeState | None:
    """The state ``name``'s destination holds now (its own record of what committed), or None."""
    from conduit_core.engine.runner import RunOptions, build_destination, write_target

    try:
        resource = config.resource(name)
    except StopIteration:
        return None  # no longer in the configuration
    destination = build_destination(config, resource)
    try:
        if destination.capabilities.checkpoints:
            return destination.read_state(write_target(resource, RunOptions()))
        return None
    except Exception:  # noqa: BLE001 - an unreachable destination says nothing about the dead run
        return None
    finally:
        with contextlib.suppress(Exception):
            destination.close()


def _settle(config: IngestConfig, store: StateStore, manifest: dict[str, Any], locked: Sequence[str]) -> dict[str, Any]:
    """Record a run found still ``running`` (its process is gone) as interrupted, with what it committed (read
    for the resources this process holds the locks of: reading a state may complete a file's publish)."""
    run_id = manifest["run_id"]
    recorded = {r["resource"] for r in manifest.get("resources", [])}
    for name in manifest.get("planned", []):
        if name in recorded or name not in locked:
            continue
        state = _committed_state(config, name)
        if state is None or state.run_id != run_id:
            continue  # not reached before the kill
        completed = not state.in_progress
        manifest["resources"].append({
            "resource": name, "source": None, "destination": None, "mode": None,
            "status": str(Status.SUCCESS if completed else Status.INTERRUPTED),
            "started_at": None, "finished_at": state.updated_at or None, "duration_s": None,
            "rows_read": state.rows_read, "rows_written": state.rows_committed, "rows_dlq": state.rows_dlq,
            "rows_filtered": state.rows_filtered, "batches": None, "retries": 0, "files_read": state.files_read,
            "error": None if completed else f"killed; {state.rows_committed:,} rows committed by its last checkpoint",
            "error_type": None if completed else "Killed",
            "note": "the final commit had landed; the process was killed before recording it" if completed
            else "killed mid-load",
        })
    for total in ("rows_read", "rows_written", "rows_dlq", "rows_filtered"):
        manifest[total] = sum(r.get(total) or 0 for r in manifest["resources"])
    manifest["status"] = str(Status.INTERRUPTED)
    manifest["interrupted"] = manifest.get("interrupted") or "killed"
    manifest["finished_at"] = manifest.get("finished_at") or now()
    store.record_manifest(manifest)
    log.warning("run %s did not finish (its process is gone): recorded as interrupted", run_id)
    return manifest


def find_unfinished(config: IngestConfig, store: StateStore, locked: Sequence[str]) -> Unfinished | None:
    """Settle dead runs that touch ``locked`` (this process holds their locks, so none of them is alive) and
    return the latest unfinished run among them, with what had completed in its chain."""
    manifests = [m for m in store.unfinished_runs() if set(m.get("planned", [])) & set(locked)]
    if not manifests:
        return None
    settled = [_settle(config, store, m, locked) if m.get("status") == str(Status.RUNNING) else m
               for m in manifests]
    latest = settled[0]
    found = Unfinished(latest["run_id"], list(latest.get("planned", [])))
    manifest: dict[str, Any] | None = latest
    while manifest is not None and len(found.chain) < 1000:
        found.chain.append(manifest["run_id"])
        found.started_at = manifest["started_at"]
        for r in manifest.get("resources", []):
            if r["resource"] not in found.completed and (
                    Status(r["status"]).completed or r.get("completed_in")):
                found.completed[r["resource"]] = r.get("completed_in") or manifest["run_id"]
        earlier = manifest.get("resumes")
        manifest = store.manifest(earlier) if earlier else None
    return found


def completed_in(unfinished: Unfinished | None, resource: ResourceConfig, state: ResumeState | None) -> str | None:
    """The run of the chain in which ``resource``'s load completed, or None: from the history, or from the
    destination's own state (a final commit that landed before a kill that left no record)."""
    if unfinished is None:
        return None
    if resource.name in unfinished.completed:
        return unfinished.completed[resource.name]
    if state is not None and not state.in_progress and (
            state.run_id in unfinished.chain or (state.updated_at and state.updated_at >= unfinished.started_at)):
        # Completed by the chain, or since it started (a run of some of its resources, e.g. `run y --resume`).
        return state.run_id
    return None


def link(store: StateStore, unfinished: Unfinished, run: RunResult, *, resumed: bool) -> None:
    """Record on the interrupted run (and the runs of its chain) that ``run`` continued it (``--resume``) or
    went past it (a run of its resources without ``--resume``), so a later ``--resume`` does not go back to it.
    A run of only some of its resources leaves it open: the others may still be resumed."""
    remaining = set(unfinished.planned) - set(unfinished.completed)
    if not remaining <= set(run.planned):
        return
    for run_id in unfinished.chain:
        manifest = store.manifest(run_id)
        if manifest is not None and not manifest.get("resumed_by") and not manifest.get("superseded_by"):
            manifest["resumed_by" if resumed else "superseded_by"] = run.run_id
            store.record_manifest(manifest)
    if not resumed:
        log.warning("run %s was interrupted (completed: %s); this run loads its resources again. "
                    "`conduit run --resume` would have continued it instead", unfinished.run_id,
                    ", ".join(sorted(unfinished.completed)) or "none")
