"""Drift between two schemas: what changed, whether a load can absorb it, and what ``auto`` would do."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pyarrow as pa

from conduit_core.schema.model import Column, TableSchema
from conduit_core.schema.types import Relation, relate, type_name, widened


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    TYPE = "type_changed"
    NULLABILITY = "nullability_changed"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    column: str
    old: str | None = None
    new: str | None = None
    #: Compatible: a load can take it without losing values (possibly after ``auto`` alters the target).
    compatible: bool = True
    #: What ``auto`` does about it, in words (``None``: nothing to do, or nothing it may do).
    action: str | None = None
    #: For ADDED and TYPE changes ``auto`` applies: the column as it should become.
    target: Column | None = None
    relation: Relation | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "column": self.column, "old": self.old, "new": self.new,
                "compatible": self.compatible, "auto_action": self.action}


@dataclass(frozen=True)
class SchemaDiff:
    changes: tuple[Change, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.changes)

    @property
    def breaking(self) -> bool:
        return any(not c.compatible for c in self.changes)

    def of(self, kind: ChangeKind) -> list[Change]:
        return [c for c in self.changes if c.kind is kind]

    def to_dict(self) -> dict[str, Any]:
        return {"drift": bool(self), "breaking": self.breaking, "changes": [c.to_dict() for c in self.changes]}

    def summary(self) -> str:
        return "; ".join(f"{c.column}: {c.kind.replace('_', ' ')}"
                         + (f" {c.old} -> {c.new}" if c.kind in (ChangeKind.TYPE, ChangeKind.NULLABILITY) else "")
                         for c in self.changes)


_BOUNDED_TEXT = re.compile(r"^(?:character varying|varchar|character|char)\s*\(\s*\d+\s*\)", re.IGNORECASE)


def _bounded_text(column: Column) -> bool:
    """A text column with a length limit (``varchar(20)``) in the target."""
    return column.type is not None and pa.types.is_string(column.type) and bool(
        column.native and _BOUNDED_TEXT.match(column.native))


def _null(nullable: bool) -> str:
    return "NULL" if nullable else "NOT NULL"


def diff(old: TableSchema, new: TableSchema, *, nullability_for: frozenset[str] | None = None,
         exempt: frozenset[str] = frozenset()) -> SchemaDiff:
    """Changes from ``old`` (the target, or the last version) to ``new`` (what the source now sends).

    Removed columns are breaking (values that used to arrive no longer do); added
    columns, and type changes the target can absorb or widen to, are compatible.
    A column becoming nullable is compatible when the target can drop NOT NULL.
    Nullability is compared for the columns in ``nullability_for`` (all when
    None): most sources call every column nullable, so against a live table only
    columns whose nullability was declared say anything. ``exempt`` columns
    (primary keys) are never checked for it.
    """
    changes: list[Change] = []
    for column in new:
        before = old.get(column.name)
        if before is None:
            changes.append(Change(ChangeKind.ADDED, column.name, None, column.type_label, True,
                                  f"ADD COLUMN {column.name} {column.type_label}", column))
            continue
        if column.declared and _bounded_text(before) and column.type is not None and pa.types.is_string(column.type):
            # Declared as text, arriving into varchar(n): widen to unbounded text (never a lossy change).
            changes.append(Change(ChangeKind.TYPE, column.name, before.native, "text", True,
                                  f"widen {column.name} to text", Column(column.name, pa.string(), before.nullable),
                                  Relation.WIDER))
        elif before.type is not None and column.type is not None:
            relation = relate(before.type, column.type)
            if relation is Relation.WIDER:
                to = widened(before.type, column.type)
                target = Column(column.name, to, before.nullable) if to is not None else None
                action = f"widen {column.name} to {type_name(to)}" if to is not None else None
                changes.append(Change(ChangeKind.TYPE, column.name, before.type_label, column.type_label,
                                      to is not None, action, target, relation))
            elif relation is Relation.FITS:
                changes.append(Change(ChangeKind.TYPE, column.name, before.type_label, column.type_label, True,
                                      None, None, relation))
            elif relation is Relation.INCOMPATIBLE:
                changes.append(Change(ChangeKind.TYPE, column.name, before.type_label, column.type_label, False,
                                      None, None, relation))
        compare = nullability_for is None or column.name in nullability_for
        if compare and column.name not in exempt and before.nullable != column.nullable:
            relaxing = column.nullable and not before.nullable
            changes.append(Change(ChangeKind.NULLABILITY, column.name, _null(before.nullable), _null(column.nullable),
                                  True, f"DROP NOT NULL on {column.name}" if relaxing else None,
                                  Column(column.name, before.type, True) if relaxing else None))
    for column in old:
        if new.get(column.name) is None:
            changes.append(Change(ChangeKind.REMOVED, column.name, column.type_label, None, False, None))
    return SchemaDiff(tuple(changes))
