"""Helpers shared by file connectors: globbing and atomic output files."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from conduit_core.batch import Batch
from conduit_core.errors import ConfigError, FatalError, StateError


def expand(pattern: Path) -> list[Path]:
    """Files matching ``pattern`` (a path or glob), sorted; an error if there are none."""
    text = str(pattern)
    if not glob.has_magic(text):
        if not pattern.is_file():
            what = "is a directory, not a file" if pattern.is_dir() else "does not exist"
            msg = f"input file {pattern} {what}"
            raise ConfigError(msg, hint="check `path:` (relative paths are relative to ingest.yml)")
        return [pattern]
    matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    if not matches:
        msg = f"no files match {pattern}"
        raise ConfigError(msg, hint="check the glob in `path:` (relative paths are relative to ingest.yml)")
    return matches


def resume_files(files: list[Path], position: Mapping[str, Any] | None) -> list[tuple[Path, int]]:
    """Each file to read with the rows to skip at its start, continuing after ``position``
    (``{"file": ..., "row": ...}``, as file sources put on their batches)."""
    if position is None:
        return [(f, 0) for f in files]
    done = Path(str(position["file"]))
    if done not in files:
        msg = f"the checkpoint stopped in {done}, which no longer matches the source's path"
        raise StateError(msg, hint="restore the file, or `conduit state reset RESOURCE` and load again")
    index = files.index(done)
    return [(done, int(position["row"])), *((f, 0) for f in files[index + 1:])]


def skip_rows(batches: Iterator[Batch], rows: int) -> Iterator[Batch]:
    """``batches`` without their first ``rows`` rows (already loaded before a resume)."""
    for batch in batches:
        if rows >= batch.num_rows > 0:
            rows -= batch.num_rows
        elif rows:
            yield replace(batch, data=batch.data.slice(rows), first_row=batch.first_row + rows)
            rows = 0
        else:
            yield batch


def check_writable(path: Path) -> None:
    """Raise unless ``path`` could be created or replaced; creates nothing (for dry runs)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    folder = existing if existing.is_dir() else existing.parent
    if existing.exists() and not existing.is_dir() and existing != path:
        msg = f"cannot write {path}: {existing} is a file, not a directory"
        raise FatalError(msg, hint="fix the destination's `path:`")
    if not os.access(folder, os.W_OK | os.X_OK):
        msg = f"cannot write {path}: directory {folder} is not writable"
        raise FatalError(msg, hint="fix permissions or choose another `path:`")
