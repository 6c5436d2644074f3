"""Checkpoints for file destinations: numbered part files committed by a state file.

Beside the output ``dir/name`` lives ``dir/.name.conduit/``. A checkpoint
closes the part being written, renames it to ``part-NNNNN.ext`` and then
atomically replaces ``state.json`` (the resume state plus the list of committed
parts): a part that ``state.json`` does not list was never committed and is
deleted when the load resumes. The end of the load assembles the parts into
one file and publishes it in two steps, recorded in ``state.json`` so that a
crash between them is completed, never repeated, by the next run.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from conduit_core.errors import FatalError
from conduit_core.state.resume import ResumeState

_STATE = "state.json"


def _fsync(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


class PartFiles:
    def __init__(self, final: Path, extension: str) -> None:
        self.final = final
        self.extension = extension
        self.dir = final.parent / f".{final.name}.conduit"
        self.parts: list[str] = []
        self.state: ResumeState | None = None

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
        return data

    def load(self) -> ResumeState | None:
        """The committed state, after completing an interrupted publish and deleting uncommitted parts."""
        doc = self._document()
        self.state = ResumeState.from_json(doc["state"]) if doc.get("state") else None
        self.parts = list(doc.get("parts", []))
        if doc.get("publishing"):
            assembled = self.dir / str(doc["publishing"])
            if assembled.exists():
                assembled.replace(self.final)
            self._finished(self.state)
            return self.state
        if self.dir.is_dir():
            keep = {*self.parts, _STATE}
            for path in self.dir.iterdir():
                if path.name not in keep:
                    path.unlink(missing_ok=True)
        return self.state

    # -- writing ---------------------------------------------------------------------
    def start_fresh(self) -> None:
        """Drop the parts of any earlier load; keep a completed state (its high-water mark)."""
        self.load()
        for name in self.parts:
            (self.dir / name).unlink(missing_ok=True)
        self.parts = []
        if self.state is not None and self.state.in_progress:
            self.state = None
        self._write({"state": self.state.to_json() if self.state else None, "parts": []})

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
        self._write({"state": state.to_json(), "parts": self.parts})

    def part_paths(self) -> list[Path]:
        return [self.dir / name for name in self.parts]

    def publish(self, assembled: Path, state: ResumeState | None) -> None:
        """Replace the output with ``assembled`` (a finished file in this directory), then record ``state``."""
        _fsync(assembled)
        self._write({"state": state.to_json() if state else None, "parts": self.parts, "publishing": assembled.name})
        assembled.replace(self.final)
        self._finished(state)

    def _finished(self, state: ResumeState | None) -> None:
        if state is not None and state.mark is not None:
            for name in self.parts:
                (self.dir / name).unlink(missing_ok=True)
            self.parts = []
            self._write({"state": state.to_json(), "parts": []})
        else:
            self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.parts, self.state = [], None

    def _write(self, doc: dict[str, Any]) -> None:
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
