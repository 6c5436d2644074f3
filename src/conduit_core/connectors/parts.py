"""Checkpoints for file destinations: numbered part files committed by a state file.

Beside the output ``dir/name`` lives ``dir/.name.conduit/``. A checkpoint
closes the part being written, renames it to ``part-NNNNN.ext`` and then
atomically replaces ``state.json`` (the resume state plus the list of committed
parts): a part that ``state.json`` does not list was never committed and is
deleted when the load resumes. The end of the load assembles the parts into
one file and publishes it in two steps, recorded in ``state.json`` so that a
crash between them is completed, never repeated, by the next run.

Several resources may write one file (appending in turn), so ``state.json`` keeps
a state per resource: the in-progress load's checkpoint, and each resource's last
completed load (its high-water mark, and the record that the load finished, which
``--resume`` reads to skip it after a kill that followed the publish). The parts on
disk belong to the one resource named ``loading``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from conduit_core.errors import FatalError, StateError
from conduit_core.state.resume import ResumeState

_STATE = "state.json"


def _fsync(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


class PartFiles:
    def __init__(self, final: Path, extension: str, resource: str) -> None:
        self.final = final
        self.extension = extension
        self.resource = resource
        self.dir = final.parent / f".{final.name}.conduit"
        self.parts: list[str] = []
        self.state: ResumeState | None = None
        #: The other resources' states in the same file, kept as they are.
        self._others: dict[str, str] = {}
        self._loading: str | None = None

    # -- reading ---------------------------------------------------------------------
    def _document(self) -> dict[str, Any]:
        path = self.dir / _STATE
        if not path.exists():
            return {}
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            msg = f"cannot read the load state {path}: {exc}"
            raise FatalError(msg, hint="delete that directory to start the load again from scratch") from exc
        if "state" in data:  # written before states were kept per resource
            state = ResumeState.from_json(data["state"]) if data.get("state") else None
            data = {"loads": {state.resource: data["state"]} if state else {},
                    "loading": state.resource if state and data.get("parts") else None,
                    "parts": data.get("parts", []), "publishing": data.get("publishing")}
        return data

    def load(self) -> ResumeState | None:
        """This resource's committed state, after completing an interrupted publish and deleting uncommitted
        parts."""
        doc = self._document()
        loads: dict[str, str] = dict(doc.get("loads", {}))
        own = loads.pop(self.resource, None)
        self.state = ResumeState.from_json(own) if own else None
        self._others = loads
        self._loading = doc.get("loading")
        self.parts = list(doc.get("parts", []))
        if doc.get("publishing"):
            assembled = self.dir / str(doc["publishing"])
            if assembled.exists():
                assembled.replace(self.final)
            # Finished on behalf of whichever resource was publishing: its final state, written with the
            # first step, stays.
            self._clear_parts()
            self._write()
            return self.state
        if self.dir.is_dir() and self._loading in (None, self.resource):
            # Files the state does not list were never committed (another resource's load in progress is
            # left alone: it may be writing right now).
            keep = {*self.parts, _STATE}
            for path in self.dir.iterdir():
                if path.name not in keep:
                    path.unlink(missing_ok=True)
        return self.state

    # -- writing ---------------------------------------------------------------------
    def start_fresh(self) -> None:
        """Drop the parts of this resource's earlier load; keep its completed state (its high-water mark)."""
        self.load()
        if self._loading not in (None, self.resource) and self.parts:
            msg = (f"{self.final.name} has an unfinished load of resource {self._loading!r}; two loads cannot "
                   "write one file at the same time")
            raise StateError(msg, hint=f"finish it with `conduit run {self._loading} --resume`, or discard it "
                                       f"with `conduit state reset {self._loading}`")
        self._clear_parts()
        if self.state is not None and self.state.in_progress:
            self.state = None
        if self.state is not None or self._others:
            self._write()
        else:
            self.discard()

    def temp_path(self) -> Path:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create {self.dir}: {exc.strerror}"
            raise FatalError(msg, hint="check that the output directory is writable") from exc
        return self.dir / f"{uuid.uuid4().hex[:12]}.{self.extension}.tmp"

    def add_part(self, temp: Path) -> None:
        """Make ``temp`` the next part (committed by the next :meth:`commit`)."""
        _fsync(temp)
        name = f"part-{len(self.parts):05d}.{self.extension}"
        temp.replace(self.dir / name)
        self.parts.append(name)

    def commit(self, state: ResumeState) -> None:
        self.state = state
        self._loading = self.resource
        self._write()

    def part_paths(self) -> list[Path]:
        return [self.dir / name for name in self.parts]

    def publish(self, assembled: Path, state: ResumeState | None) -> None:
        """Replace the output with ``assembled`` (a finished file in this directory), then record ``state``."""
        _fsync(assembled)
        self.state = state if state is not None else self.state
        self._loading = self.resource
        self._write(publishing=assembled.name)
        assembled.replace(self.final)
        self._finished(state)

    def _finished(self, state: ResumeState | None) -> None:
        """The load is published: its parts go, and its completed state stays as the record of it."""
        self._clear_parts()
        self.state = state
        if state is not None or self._others:
            self._write()
        else:
            self.discard()

    def _clear_parts(self) -> None:
        for name in self.parts:
            (self.dir / name).unlink(missing_ok=True)
        self.parts = []
        self._loading = None

    def discard(self) -> None:
        """Forget this resource's state (and its parts); the directory goes when no resource has one left."""
        if self._loading in (None, self.resource):
            self._clear_parts()
        self.state = None
        if self._others or self.parts:
            self._write()
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def tidy(self) -> None:
        """After a failed load that committed nothing: leave no directory behind that holds nothing."""
        if self.state is None and not self._others and not self.parts and self.dir.is_dir():
            shutil.rmtree(self.dir, ignore_errors=True)

    def _write(self, *, publishing: str | None = None) -> None:
        loads = dict(self._others)
        if self.state is not None:
            loads[self.resource] = self.state.to_json()
        doc = {"loads": loads, "loading": self._loading if self.parts or publishing else None,
               "parts": self.parts, "publishing": publishing}
        self.dir.mkdir(parents=True, exist_ok=True)
        temp = self.dir / f"{_STATE}.tmp"
        with temp.open("w", encoding="utf-8") as handle:
            json.dump(doc, handle)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(self.dir / _STATE)
        # The rename itself must reach the disk before the load goes on.
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
