"""Apply a declared ``schema:`` to batches: declared types take precedence over inferred ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.batch import Batch
from conduit_core.config.models import DeclaredColumn
from conduit_core.errors import DataError
from conduit_core.schema.types import parse_type


def not_null(field: pa.Field) -> bool:
    """Whether a created column should be NOT NULL: only when ``schema:`` declared it ``nullable: false``
    (most sources call every column nullable, so their own flag says nothing)."""
    return not field.nullable and bool((field.metadata or {}).get(b"conduit.declared"))


class DeclaredSchema:
    def __init__(self, columns: Mapping[str, DeclaredColumn]) -> None:
        self.columns = dict(columns)
        self.types = {name: parse_type(c.type) for name, c in self.columns.items()}

    def arrow_field(self, name: str) -> pa.Field:
        return pa.field(name, self.types[name], self.columns[name].nullable, metadata={b"conduit.declared": b"1"})

    def apply(self, batch: Batch) -> Batch:
        """``batch`` with every declared column cast (safely: a value that does not convert is an error)."""
        data = batch.data
        missing = [n for n in self.columns if n not in data.schema.names]
        if missing:
            msg = f"declared column(s) {missing} are not in the data; columns: {data.schema.names}"
            raise DataError(msg, file=batch.source_file, hint="fix `schema:` on the resource")
        fields, arrays = [], []
        for field, array in zip(data.schema, data.columns, strict=True):
            if field.name not in self.columns:
                fields.append(field)
                arrays.append(array)
                continue
            declared = self.columns[field.name]
            target = self.types[field.name]
            converted = self._convert(array, target, declared, field.name, batch)
            if not declared.nullable and converted.null_count:
                msg = f"{converted.null_count} NULL value(s) in a column declared nullable: false"
                raise DataError(msg, file=batch.source_file, column=field.name, row=batch.first_row,
                                hint="fix the data, or declare the column nullable")
            fields.append(self.arrow_field(field.name))
            arrays.append(converted)
        return replace(batch, data=pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields)))

    @staticmethod
    def _convert(array: pa.Array, target: pa.DataType, declared: DeclaredColumn, name: str, batch: Batch) -> pa.Array:
        if array.type.equals(target):
            return array
        try:
            if declared.format and (pa.types.is_timestamp(target) or pa.types.is_date(target)):
                parsed = pc.strptime(array.cast(pa.string()), format=declared.format,
                                     unit=target.unit if pa.types.is_timestamp(target) else "s", error_is_null=False)
                if pa.types.is_timestamp(target) and target.tz:
                    parsed = pc.assume_timezone(parsed, target.tz)
                return parsed.cast(target)
            return pc.cast(array, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            detail = str(exc).splitlines()[0]
            msg = f"cannot convert to the declared type {declared.type}: {detail}"
            raise DataError(msg, file=batch.source_file, column=name, row=batch.first_row,
                            hint="fix the data, or the declared type/format in `schema:`") from None
