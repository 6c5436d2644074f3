"""Helpers shared by file connectors: globbing and atomic output files."""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from conduit_core.batch import Batch
from conduit_core.errors import ConfigError, DataError, FatalError, StateError

#: How the files of a glob make one stream: ``concat`` (the same columns in every file), ``union_by_name``
#: (every column of any file, by name; NULL where a file lacks one), ``validate_schema`` (every file checked
#: to have the first one's columns before a row is read).
Combine = Literal["concat", "union_by_name", "validate_schema"]


def column_difference(expected: list[str], found: list[str]) -> str:
    """How the columns ``found`` differ from ``expected``, in words."""
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    parts = [f"missing {missing}" if missing else "", f"extra {extra}" if extra else ""]
    said = "; ".join(p for p in parts if p)
    return said or f"the same columns in another order: {found} (expected {expected})"


def schema_difference(expected: pa.Schema, found: pa.Schema) -> str | None:
    """How ``found`` differs from ``expected`` (names, order, then types), or None when it does not."""
    if found.names != expected.names:
        return column_difference(expected.names, found.names)
    for want, got in zip(expected, found, strict=True):
        if not want.type.equals(got.type):
            return f"column {want.name!r} is {got.type}, not {want.type}"
        if want.nullable != got.nullable:
            return f"column {want.name!r} is {'' if got.nullable else 'not '}nullable here, unlike the first file"
    return None


def union_schema(schemas: list[tuple[Path, pa.Schema]]) -> pa.Schema:
    """Every column of any file, in the order they first appear; a column must have one type in every file
    that has it (a guess between two types could change values)."""
    fields: dict[str, tuple[pa.Field, Path]] = {}
    for path, schema in schemas:
        for field in schema:
            if field.name not in fields:
                fields[field.name] = (field, path)
                continue
            first, where = fields[field.name]
            if not first.type.equals(field.type):
                msg = (f"column {field.name!r} is {field.type} here but {first.type} in {where}; union_by_name "
                       "needs one type per column")
                raise DataError(msg, file=str(path), hint="declare the column's type on the source, or read the "
                                                          "files as separate resources")
    # NULL where a file lacks the column, or where any file allows it.
    strict = {name for name in fields if all(name in schema.names and not schema.field(name).nullable
                                              for _, schema in schemas)}
    return pa.schema([field.with_nullable(name not in strict) for name, (field, _) in fields.items()])


def align(data: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``data`` with the columns of ``schema``, in its order: NULL for the ones ``data`` lacks."""
    if data.schema.equals(schema):
        return data
    columns = [data.column(f.name) if f.name in data.schema.names else pa.nulls(data.num_rows, f.type)
               for f in schema]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


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


_HEAD_BYTES = 64 * 1024
_CHANGED_HINT = ("restore the file as it was, or discard the checkpoint with `conduit state reset RESOURCE` and load "
                 "again (`conduit run --full-refresh` replaces the target)")


def fingerprint(path: Path) -> dict[str, Any]:
    """Size, modification time and a hash of the first 64 KiB: enough to tell that a file is not the one a
    checkpoint read (rows put in front, a file replaced), without reading all of it."""
    stat = path.stat()
    with path.open("rb") as handle:
        head = hashlib.sha256(handle.read(_HEAD_BYTES)).hexdigest()[:32]
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head": head}


def listing_digest(files: list[Path]) -> str:
    """One hash of the names, sizes and modification times of ``files`` (those a glob read before a checkpoint)."""
    return Listing(files).before(len(files))


def row_digest(data: pa.RecordBatch, index: int) -> str:
    """A hash of the values of one row: a resumed read finds the row it stopped after, or knows it moved."""
    row = data.slice(index, 1).to_pylist()[0]
    return hashlib.sha256(json.dumps(row, default=str, sort_keys=True).encode()).hexdigest()[:32]


class Listing:
    """The files of one read, with the digest of the files before each one (every file stated once)."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self._digests: list[str] = []
        self._hash = hashlib.sha256()

    def before(self, index: int) -> str:
        """The digest of the names, sizes and modification times of the first ``index`` files."""
        while len(self._digests) <= index:
            done = len(self._digests)
            self._digests.append(self._hash.copy().hexdigest()[:32])
            if done < len(self.files):
                stat = self.files[done].stat()
                self._hash.update(json.dumps([str(self.files[done]), stat.st_size, stat.st_mtime_ns]).encode())
        return self._digests[index]

    def marks(self, path: Path) -> FileMarks:
        return FileMarks(path, self.before(self.files.index(path)))


class FileMarks:
    """The positions of one file's batches: file and row to resume after, plus what a resume checks."""

    def __init__(self, path: Path, before: str) -> None:
        self.path = path
        self.fingerprint = fingerprint(path)
        self.before = before

    def position(self, row: int, data: pa.RecordBatch) -> dict[str, Any]:
        return {"file": str(self.path), "row": row, "fp": self.fingerprint, "before": self.before,
                "last": row_digest(data, data.num_rows - 1) if data.num_rows else None}


def resume_files(files: list[Path], position: Mapping[str, Any] | None, *,
                 strict: bool = False) -> list[tuple[Path, int, str | None]]:
    """Each file to read with the rows to skip at its start and the digest the last skipped row must have,
    continuing after ``position`` (as :class:`FileMarks` made it). A source that changed since the checkpoint
    is refused (:class:`StateError`, exit 5): a new or changed file before the checkpoint's file, or a change
    to the start of that file (rows put in front would be skipped, and the rows they push down read twice).
    ``strict``: any change of the checkpoint's file is refused (formats that are only ever rewritten whole)."""
    if position is None:
        return [(f, 0, None) for f in files]
    done = Path(str(position["file"]))
    if done not in files:
        msg = f"the checkpoint stopped in {done}, which no longer matches the source's path"
        raise StateError(msg, hint="restore the file, or `conduit state reset RESOURCE` and load again")
    index = files.index(done)
    rows = int(position["row"])
    before = position.get("before")
    if before is not None and before != listing_digest(files[:index]):
        msg = (f"the files read before {done.name} changed since the checkpoint (one was added, removed or "
               f"modified); resuming in {done.name} would skip or repeat their rows")
        raise StateError(msg, hint=_CHANGED_HINT)
    saved = position.get("fp")
    if saved is not None:
        now = fingerprint(done)
        unchanged = (now["size"], now["mtime_ns"]) == (saved["size"], saved["mtime_ns"])
        if not unchanged and (strict or now["head"] != saved["head"]):
            what = "its start differs" if now["head"] != saved["head"] else "it was modified"
            msg = (f"{done} changed since the checkpoint ({what}: {saved['size']:,} -> {now['size']:,} bytes); "
                   f"resuming after row {rows:,} would skip or repeat rows")
            raise StateError(msg, hint=_CHANGED_HINT)
    return [(done, rows, position.get("last")), *((f, 0, None) for f in files[index + 1:])]


def skip_rows(batches: Iterator[Batch], rows: int, last: str | None = None) -> Iterator[Batch]:
    """``batches`` without their first ``rows`` rows (already loaded before a resume). With ``last``, the
    row just before the resume point must still have that digest: otherwise rows were inserted, deleted
    or the file cut short, and the resume would skip or repeat rows (:class:`StateError`)."""
    skipped = 0
    for batch in batches:
        if skipped >= rows:
            yield batch
            continue
        take = min(rows - skipped, batch.num_rows)
        skipped += take
        if skipped == rows and last is not None and take and row_digest(batch.data, take - 1) != last:
            msg = (f"{batch.source_file} changed since the checkpoint: row {rows:,}, the last one loaded, is not "
                   "the row the checkpoint recorded; resuming would skip or repeat rows")
            raise StateError(msg, hint=_CHANGED_HINT)
        if take < batch.num_rows:
            yield replace(batch, data=batch.data.slice(take), first_row=batch.first_row + take)
    if skipped < rows and last is not None:
        msg = (f"the source ended after {skipped:,} rows, before the {rows:,} the checkpoint had loaded from it: "
               "it was cut short since the checkpoint")
        raise StateError(msg, hint=_CHANGED_HINT)


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
