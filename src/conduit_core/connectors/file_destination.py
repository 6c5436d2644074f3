"""What the file destinations (Parquet, CSV, NDJSON) share: atomic output and checkpoints as part files.

Rows are written to a part file under ``.NAME.conduit/`` beside the output
(see :mod:`conduit_core.connectors.parts`). A load without checkpoints has one
part, renamed into place at the end. A checkpoint commits the current part and
starts the next; the end of the load assembles the parts into the output file.
An append copies the existing file into the first part, so the old file stays
whole until the new one replaces it.
"""

from __future__ import annotations

import contextlib
import shutil
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from conduit_core.batch import Batch
from conduit_core.connectors.base import BaseDestination, Capabilities, WriteMode, WriteTarget
from conduit_core.connectors.files import check_writable
from conduit_core.connectors.parts import PartFiles
from conduit_core.errors import ConfigError, DataError
from conduit_core.schema.diff import Change
from conduit_core.schema.model import TableSchema
from conduit_core.state.resume import ResumeState


def file_target(target: WriteTarget, default: Path | None, extension: str) -> Path:
    """The output file of a file destination: resource ``path`` > destination ``path``."""
    path = target.path or default
    if path is None:
        msg = (f"resource {target.resource!r} writes to a {extension} destination but no path is set; "
               f"set `path:` on the resource or the destination")
        raise ConfigError(msg)
    # A directory (existing, or named without a file extension) gets one file per resource.
    if path.is_dir() or not path.suffix:
        return path / f"{target.resource}.{extension}"
    return path


class FileDestination(BaseDestination):
    """Template: subclasses open, write and close one part, copy an existing file, and assemble parts."""

    extension: ClassVar[str]
    capabilities = Capabilities(transactional=True, merge=False, checkpoints=True)

    # -- format-specific --------------------------------------------------------------
    @abstractmethod
    def _open(self, path: Path, *, first: bool) -> None:
        """Start writing a part at ``path``; ``first``: the first part of the output (CSV writes its header)."""

    @abstractmethod
    def _write(self, data: pa.RecordBatch) -> None: ...

    @abstractmethod
    def _close(self) -> None:
        """Flush and close the part being written."""

    def _discard_writer(self) -> None:
        """Close the part being written after a failure; must not raise."""
        with contextlib.suppress(OSError, pa.ArrowException):
            self._close()

    @abstractmethod
    def _copy_existing(self, existing: Path) -> None:
        """Append: write the existing output into the current (first) part, or raise if it does not fit."""

    def _assemble(self, parts: list[Path], out: Path) -> None:
        """One output file from the parts (byte concatenation; Parquet rewrites row groups)."""
        with out.open("wb") as sink:
            for part in parts:
                with part.open("rb") as source:
                    shutil.copyfileobj(source, sink, 1024 * 1024)

    def _output_path(self) -> Path | None:
        path = getattr(self.options, "path", None)
        return path if isinstance(path, Path) else None

    # -- template ---------------------------------------------------------------------------
    def test_connection(self) -> bool:
        if (path := self._output_path()) is not None:
            check_writable(path)
        return True

    def _parts(self, target: WriteTarget) -> PartFiles:
        return PartFiles(file_target(target, self._output_path(), self.extension), self.extension, target.resource)

    def target_id(self, target: WriteTarget) -> str:
        # The state lives beside the file, so the file's name is enough (and survives moving the directory).
        return file_target(target, self._output_path(), self.extension).name

    def begin(self, target: WriteTarget, schema: pa.Schema) -> None:
        super().begin(target, schema)
        self._files = self._parts(target)
        if target.resume is not None:
            self._files.load()
            self._new_part()
            return
        self._files.start_fresh()
        final = self._files.final
        appending = target.mode is WriteMode.APPEND and final.exists()
        if appending:
            self.schema = self._append_schema(final, schema)
        self._new_part(first=not appending)
        if appending:
            self._copy_existing(final)

    def _new_part(self, *, first: bool = False) -> None:
        self._temp: Path | None = self._files.temp_path()
        self._open(self._temp, first=first)

    def write_batch(self, batch: Batch) -> int:
        data = batch.data
        if not data.schema.equals(self.schema):
            data = self._conform(data)
        with self._naming_the_file():
            self._write(data)
        return batch.num_rows

    @contextlib.contextmanager
    def _naming_the_file(self) -> Iterator[None]:
        """I/O errors of the writers (a full disk) name the output they were writing."""
        try:
            yield
        except OSError as exc:
            if exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror or str(exc), str(self._files.final)) from exc

    def _append_schema(self, existing: Path, schema: pa.Schema) -> pa.Schema:
        """The schema to write when appending to ``existing``: the new data's, unless the format keeps types."""
        return schema

    def _conform(self, data: pa.RecordBatch) -> pa.RecordBatch:
        """``data`` in the schema being written (an appended file's types), never changing a value."""
        try:
            return data.cast(self.schema, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            column = next((f.name for f, g in zip(data.schema, self.schema, strict=False) if not f.type.equals(g.type)),
                          None)
            msg = f"a value does not fit the existing file's type without changing ({exc})"
            raise DataError(msg, column=column, hint="use mode: full_refresh, or write to a new file") from None

    def commit(self) -> None:
        self._publish(None, final=True)

    def checkpoint(self, state: ResumeState, *, final: bool = False) -> None:
        self._publish(state, final=final)

    def _publish(self, state: ResumeState | None, *, final: bool) -> None:
        with self._naming_the_file():
            self._publish_parts(state, final=final)

    def _publish_parts(self, state: ResumeState | None, *, final: bool) -> None:
        self._close()
        temp, self._temp = self._temp, None
        assert temp is not None
        if not final:
            assert state is not None
            self._files.add_part(temp)
            self._files.commit(state)
            self._new_part()
            return
        if self._files.parts:
            self._files.add_part(temp)
            temp = self._files.temp_path()
            self._assemble(self._files.part_paths(), temp)
        self._files.publish(temp, state)

    def abort(self) -> None:
        temp = getattr(self, "_temp", None)
        if temp is not None:
            self._discard_writer()
            temp.unlink(missing_ok=True)
            self._temp = None
        files = getattr(self, "_files", None)
        if files is not None:
            files.tidy()

    # -- schema -------------------------------------------------------------------------------
    def _file_schema(self, path: Path) -> TableSchema | None:
        """The schema of an existing output file (None: the format cannot tell)."""
        return None

    def table_schema(self, target: WriteTarget) -> TableSchema | None:
        final = file_target(target, self._output_path(), self.extension)
        return self._file_schema(final) if final.exists() else None

    def evolve(self, target: WriteTarget, changes: Sequence[Change]) -> list[str]:
        """A file is written whole: a replaced file simply carries the new schema. Appending rows with
        another schema to an existing file would make it inconsistent, so that is an error."""
        final = file_target(target, self._output_path(), self.extension)
        if target.mode is WriteMode.APPEND and final.exists():
            wanted = "; ".join(str(c.action) for c in changes)
            msg = f"cannot append to {final.name} with a different schema ({wanted}); a file cannot be altered in place"
            raise DataError(msg, file=str(final), hint="use mode: full_refresh, or write to a new file")
        return []

    def read_state(self, target: WriteTarget) -> ResumeState | None:
        return self._parts(target).load()

    def discard_state(self, target: WriteTarget, state: ResumeState) -> None:
        files = self._parts(target)
        files.load()  # the other resources' states in the file stay
        files.discard()
