"""Arrow <-> PostgreSQL type mapping (documented in docs/connectors.md).

Arrow -> PostgreSQL (tables conduit creates):

==========================  ===========================
Arrow                       PostgreSQL
==========================  ===========================
bool                        boolean
int8, int16, uint8          smallint
int32, uint16               integer
int64, uint32               bigint
uint64                      numeric(20,0)
float16, float32            real
float64                     double precision
decimal128/256(p,s)         numeric(p,s)
string, large_string, view  text
binary, large_binary        bytea
date32, date64              date
time32/64                   time
timestamp (no zone)         timestamp
timestamp (with zone)       timestamptz
duration                    interval
arrow.uuid                  uuid
arrow.json                  jsonb
list<T>                     T[]
month_day_nano_interval     interval
==========================  ===========================

PostgreSQL -> Arrow (sources) follows the ADBC driver, plus: numeric(p,s)
with p <= 38 becomes decimal128(p,s); unconstrained numeric stays exact text
(string); json/jsonb become strings holding the JSON text.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.errors import DataError

_SIMPLE: list[tuple[object, str]] = [
    (pa.types.is_boolean, "boolean"),
    (lambda t: t in (pa.int8(), pa.int16(), pa.uint8()), "smallint"),
    (lambda t: t in (pa.int32(), pa.uint16()), "integer"),
    (lambda t: t in (pa.int64(), pa.uint32()), "bigint"),
    (lambda t: t == pa.uint64(), "numeric(20,0)"),
    (lambda t: t in (pa.float16(), pa.float32()), "real"),
    (lambda t: t == pa.float64(), "double precision"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t), "text"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t), "bytea"),
    (pa.types.is_date, "date"),
    (pa.types.is_time, "time"),
    (lambda t: pa.types.is_duration(t) or pa.types.is_interval(t), "interval"),
]


def pg_type(arrow_type: pa.DataType, column: str = "") -> str:
    """The PostgreSQL type conduit creates for ``arrow_type``."""
    if isinstance(arrow_type, pa.ExtensionType) or getattr(arrow_type, "extension_name", None):
        name = getattr(arrow_type, "extension_name", "")
        if name == "arrow.uuid":
            return "uuid"
        if name == "arrow.json":
            return "jsonb"
        return pg_type(arrow_type.storage_type, column)
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"{pg_type(arrow_type.value_type, column)}[]"
    for test, name in _SIMPLE:
        if test(arrow_type):  # type: ignore[operator]
            return name
    msg = f"no PostgreSQL type for Arrow type {arrow_type}"
    raise DataError(msg, column=column or None, hint="cast the column in the source query")


def _typmod(field: pa.Field) -> int:
    raw = (field.metadata or {}).get(b"POSTGRESQL:typmod")
    return int(raw) if raw else -1


def normalize_column(field: pa.Field, array: pa.Array | pa.ChunkedArray) -> tuple[pa.Field, pa.Array]:
    """Turn ADBC's PostgreSQL-specific columns into portable Arrow types."""
    type_name = (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()
    plain = field.remove_metadata()
    if type_name == "numeric":
        storage = array.storage if hasattr(array, "storage") else array
        typmod = _typmod(field)
        if typmod >= 4:
            precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
            if precision <= 38:
                target = pa.decimal128(precision, scale)
                # 'NaN' and infinities have no decimal form: they fail loudly instead of becoming NULL.
                try:
                    return plain.with_type(target), pc.cast(storage, target)
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    msg = f"a numeric({precision},{scale}) value has no decimal form (NaN or infinity?): {exc}"
                    raise DataError(msg, column=field.name,
                                    hint="cast the column to float8 or text in the source query") from exc
        return plain.with_type(pa.string()), storage
    if type_name in {"json", "jsonb"}:
        storage = array.storage if hasattr(array, "storage") else array
        return plain.with_type(pa.string()), storage
    return plain.with_type(array.type), array


def normalize(batch: pa.RecordBatch) -> pa.RecordBatch:
    fields, arrays = [], []
    for field, array in zip(batch.schema, batch.columns, strict=True):
        new_field, new_array = normalize_column(field, array)
        fields.append(new_field)
        arrays.append(new_array)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


_PG_NATIVE = {
    "boolean": pa.bool_(), "smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(),
    "real": pa.float32(), "double precision": pa.float64(), "text": pa.string(), "uuid": pa.string(),
    "json": pa.string(), "jsonb": pa.string(), "bytea": pa.binary(), "date": pa.date32(),
    "timestamp without time zone": pa.timestamp("us"), "timestamp with time zone": pa.timestamp("us", "UTC"),
    "time without time zone": pa.time64("us"),
}


def arrow_type_for_pg(native: str) -> pa.DataType | None:
    """The Arrow type conduit reads for a PostgreSQL column type (``format_type`` text); None if unknown."""
    name = native.strip().lower()
    if name in _PG_NATIVE:
        return _PG_NATIVE[name]
    if name.startswith(("character varying", "character(", "varchar", "char")):
        return pa.string()
    if name.startswith("numeric(") and name.endswith(")"):
        precision, _, scale = name[len("numeric("):-1].partition(",")
        if precision.strip().isdigit() and int(precision) <= 38:
            return pa.decimal128(int(precision), int(scale or 0))
    return None
