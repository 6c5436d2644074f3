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
    #: Where the source resumes (owned by the source); None once the load completed.
    position: dict[str, Any] | None = None
    #: Rows of this load committed so far (across resumes and retries).
    rows_committed: int = 0
    rows_read: int = 0
    rows_filtered: int = 0
    rows_dlq: int = 0
    #: The Arrow schema the load started with (base64 IPC); resumed batches are cast to it.
    schema: str | None = None
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
