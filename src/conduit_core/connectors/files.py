"""Helpers shared by file connectors: globbing and atomic output files."""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from pathlib import Path

from conduit_core.errors import ConfigError, FatalError


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


class AtomicFile:
    """A file written under a temporary name and renamed into place on commit.

    A failed or killed run therefore never leaves a partial file under the final
    name. With ``append=True`` the existing file is copied first, so the old
    contents also survive a failure.
    """

    def __init__(self, final: Path, *, append: bool = False) -> None:
        self.final = final
        self.temp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.tmp")
        self.appending = append and final.exists()
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            if self.appending:
                shutil.copyfile(final, self.temp)
        except OSError as exc:
            msg = f"cannot prepare output file {final}: {exc.strerror}"
            raise FatalError(msg, hint="check that the directory exists and is writable") from exc

    def commit(self) -> None:
        with self.temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        self.temp.replace(self.final)

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)
