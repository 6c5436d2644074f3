"""A table's schema as conduit compares and stores it: ordered columns with an Arrow type and nullability.

A destination's live table maps its SQL types back to Arrow types; a type it
cannot map is ``None`` (unknown), and unknown types are never reported as drift.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from conduit_core.schema.types import type_name
from conduit_core.state.values import decode_schema, encode_schema


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType | None
    nullable: bool = True
    #: The destination's own type name (``character varying(20)``), when read from a table.
    native: str | None = None
    #: Declared in the resource's ``schema:`` (rather than reported by the source).
    declared: bool = False

    @property
    def type_label(self) -> str:
        if self.type is None:
            return self.native or "unknown"
        return type_name(self.type)


@dataclass(frozen=True)
class TableSchema:
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @classmethod
    def from_arrow(cls, schema: pa.Schema) -> TableSchema:
        return cls(tuple(Column(f.name, f.type, f.nullable, declared=bool((f.metadata or {}).get(b"conduit.declared")))
                         for f in schema))

    def to_arrow(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type or pa.string(), c.nullable) for c in self.columns])

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def get(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: readable columns plus the exact Arrow schema (when every type is known)."""
        known = all(c.type is not None for c in self.columns)
        return {
            "columns": [{"name": c.name, "type": c.type_label, "nullable": c.nullable,
                         **({"native": c.native} if c.native else {})} for c in self.columns],
            "arrow": encode_schema(self.to_arrow()) if known else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSchema:
        if data.get("arrow"):
            schema = decode_schema(str(data["arrow"]))
            natives = {c["name"]: c.get("native") for c in data.get("columns", [])}
            return cls(tuple(Column(f.name, f.type, f.nullable, natives.get(f.name)) for f in schema))
        from conduit_core.schema.types import parse_type

        columns = []
        for c in data.get("columns", []):
            try:
                data_type: pa.DataType | None = parse_type(str(c["type"]))
            except ValueError:
                data_type = None
            columns.append(Column(str(c["name"]), data_type, bool(c.get("nullable", True)), c.get("native")))
        return cls(tuple(columns))

    def fingerprint(self) -> str:
        """A hash of names, types and nullability (not of native type names)."""
        text = json.dumps([[c.name, str(c.type), c.nullable] for c in self.columns])
        return hashlib.sha256(text.encode()).hexdigest()[:16]
