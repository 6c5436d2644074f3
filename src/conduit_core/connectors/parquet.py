"""Parquet source (read by row group) and destination (written in row groups)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from conduit_core.batch import Batch
from conduit_core.config.paths import ConfigPath
from conduit_core.connectors.base import (
    BaseDestination,
    BaseSource,
    Capabilities,
    ConnectorOptions,
    ReadRequest,
    WriteMode,
    WriteTarget,
)
from conduit_core.connectors.csv import file_target
from conduit_core.connectors.files import check_writable, expand, resume_files, skip_rows
from conduit_core.connectors.parts import PartFiles
from conduit_core.errors import DataError
from conduit_core.state.resume import ResumeState


class ParquetSourceOptions(ConnectorOptions):
    path: ConfigPath = Field(description="file or glob")


class ParquetSource(BaseSource):
    """Parquet files, streamed one row group at a time."""

    Options = ParquetSourceOptions
    options: ParquetSourceOptions

    def test_connection(self) -> bool:
        expand(self.options.path)
        return True

    def estimate_total_records(self) -> int | None:
        return sum(int(pq.ParquetFile(p).metadata.num_rows) for p in expand(self.options.path))

    def read_batches(self, request: ReadRequest) -> Iterator[Batch]:
        for path, skip in resume_files(expand(self.options.path), request.resume_position):
            yield from self._read_file(path, request, skip)

    def _read_file(self, path: Path, request: ReadRequest, skip: int) -> Iterator[Batch]:
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            msg = f"not a readable Parquet file: {exc}"
            raise DataError(msg, file=str(path)) from None
        row = 0
        for group in range(parquet.num_row_groups):
            group_rows = parquet.metadata.row_group(group).num_rows
            if row + group_rows <= skip:  # loaded before a resume: skipped without decoding
                row += group_rows
                continue
            batches = (Batch(data, position={"file": str(path), "row": row + offset + data.num_rows},
                             source_file=str(path), first_row=row + offset + 1)
                       for offset, data in _offsets(parquet.iter_batches(batch_size=request.batch_size,
                                                                         row_groups=[group])))
            yield from skip_rows(batches, max(skip - row, 0))
            row += group_rows


def _offsets(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[int, pa.RecordBatch]]:
    offset = 0
    for data in batches:
        yield offset, data
        offset += data.num_rows


class ParquetDestinationOptions(ConnectorOptions):
    path: ConfigPath | None = Field(default=None, description="output file; a resource's `path:` overrides it")
    compression: Literal["snappy", "zstd", "gzip", "lz4", "none"] = "snappy"
    row_group_size: int = Field(default=122_880, ge=1)


class ParquetDestination(BaseDestination):
    """Writes one Parquet file per resource, atomically; long loads checkpoint as part files."""

    Options = ParquetDestinationOptions
    options: ParquetDestinationOptions
    capabilities = Capabilities(transactional=True, merge=False, checkpoints=True)

    def test_connection(self) -> bool:
        if self.options.path is not None:
            check_writable(self.options.path)
        return True

    def _parts(self, target: WriteTarget) -> PartFiles:
        return PartFiles(file_target(target, self.options.path, "parquet"), "parquet")

    def begin(self, target: WriteTarget, schema: pa.Schema) -> None:
        super().begin(target, schema)
        self._files = self._parts(target)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        if target.resume is not None:
            self._files.load()
            self._open_part()
            return
        self._files.start_fresh()
        self._open_part()
        final = self._files.final
        if target.mode is WriteMode.APPEND and final.exists():
            # Parquet cannot be appended in place: the existing row groups are copied into the
            # first part, so the old file stays whole until the new one replaces it.
            self._copy_existing(final, schema)

    def _open_part(self) -> None:
        self._temp = self._files.temp_path()
        self._writer = pq.ParquetWriter(self._temp, self.schema, compression=self.options.compression)

    def _copy_existing(self, final: Path, schema: pa.Schema) -> None:
        existing = pq.ParquetFile(final)
        if not existing.schema_arrow.equals(schema):
            msg = (f"cannot append: the existing file's columns {existing.schema_arrow.names} and types differ "
                   f"from the new data's {schema.names}")
            raise DataError(msg, file=str(final), hint="use mode: full_refresh, or write to a new file")
        for group in range(existing.num_row_groups):
            self._writer.write_table(existing.read_row_group(group))

    def write_batch(self, batch: Batch) -> int:
        self._pending.append(batch.data)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.options.row_group_size:
            self._flush()
        return batch.num_rows

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._writer.write_table(table, row_group_size=self.options.row_group_size)
            self._pending, self._pending_rows = [], 0

    def commit(self) -> None:
        self._publish(None, final=True)

    def checkpoint(self, state: ResumeState, *, final: bool = False) -> None:
        self._publish(state, final=final)

    def _publish(self, state: ResumeState | None, *, final: bool) -> None:
        self._flush()
        self._writer.close()
        if not final:
            assert state is not None
            self._files.add_part(self._temp)
            self._files.commit(state)
            self._open_part()
            return
        if self._files.parts:
            self._files.add_part(self._temp)
            self._temp = self._assemble(self._files.part_paths())
        self._files.publish(self._temp, state)

    def _assemble(self, parts: list[Path]) -> Path:
        """One file from the committed parts (row groups re-encoded; the price of checkpoints)."""
        assembled = self._files.temp_path()
        with pq.ParquetWriter(assembled, self.schema, compression=self.options.compression) as writer:
            for part in parts:
                source = pq.ParquetFile(part)
                for group in range(source.num_row_groups):
                    writer.write_table(source.read_row_group(group))
        return assembled

    def abort(self) -> None:
        writer = getattr(self, "_writer", None)
        if writer is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                writer.close()
        temp = getattr(self, "_temp", None)
        if temp is not None:
            temp.unlink(missing_ok=True)

    def read_state(self, target: WriteTarget) -> ResumeState | None:
        return self._parts(target).load()

    def discard_state(self, target: WriteTarget, state: ResumeState) -> None:
        self._parts(target).discard()
