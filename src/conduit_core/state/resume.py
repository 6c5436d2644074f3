"""What is remembered about a resource between runs: its checkpoint and its high-water mark.

A :class:`ResumeState` is stored as JSON, atomically with the data it
describes where the destination can (a row in ``_conduit_checkpoints`` in the
same transaction, or a state file published with the part files), and mirrored
in the state store for ``conduit state show``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

IN_PROGRESS = "in_progress"
COMPLETE = "complete"


@dataclass
class ResumeState:
    resource: str
    run_id: str
    status: str = IN_PROGRESS
    #: The load's target as its destination names it (``main.orders``, ``orders.parquet``): a state is only
    #: ever used for the target it was saved for. None in states saved before conduit recorded it.
    target: str | None = None
    #: Where the source resumes (owned by the source); None once the load completed.
    position: dict[str, Any] | None = None
    #: Rows of this load committed so far (across resumes and retries).
    rows_committed: int = 0
    rows_read: int = 0
    rows_filtered: int = 0
    rows_dlq: int = 0
    #: The Arrow schema the load started with (base64 IPC); resumed batches are cast to it.
    schema: str | None = None
    #: The schema the source read, before any conversion: a resumed source reads with exactly these types.
    source_schema: str | None = None
    #: Name of a destination's persistent staging table or part directory, when it has one.
    stage: str | None = None
    incremental_column: str | None = None
    #: The committed high-water mark (typed value, see :mod:`conduit_core.state.values`).
    mark: dict[str, str] | None = None
    #: The largest value the in-progress load has read; becomes ``mark`` when it completes.
    pending_mark: dict[str, str] | None = None
    files_read: list[str] = field(default_factory=list)
    #: The data is committed and only the final swap remains (destinations whose swap is a separate step).
    publishing: bool = False
    #: The dead-letter file of the load and its length at this checkpoint (a resume cuts it back to that).
    dlq_file: str | None = None
    dlq_bytes: int | None = None
    updated_at: str = ""

    @property
    def in_progress(self) -> bool:
        return self.status == IN_PROGRESS

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ResumeState:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def state_key(resource: str, target: str) -> str:
    """Where a destination files a load's state: its resource and its target together, so two projects whose
    resources share a name, loading different tables of one database, never share checkpoints or marks."""
    return f"{resource} -> {target}"


def check_owner(state: ResumeState, resource: str, target: str) -> None:
    """Refuse a saved state that belongs to another resource or target (or does not say which)."""
    from conduit_core.errors import StateError

    if state.resource == resource and state.target == target:
        return
    if state.target is None:
        msg = (f"the saved state of resource {resource!r} (run {state.run_id}) was written by an earlier conduit "
               f"that did not record its target, so it cannot be told apart from another project's state for "
               f"{target!r}")
    else:
        msg = (f"the saved state found for resource {resource!r} at {target!r} belongs to resource "
               f"{state.resource!r} at {state.target!r} (run {state.run_id})")
    raise StateError(msg, hint=f"`conduit state reset {resource}` discards it (the next run then loads every "
                               "row that the source holds)")
