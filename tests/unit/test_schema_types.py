"""Type names, how types relate, inference across batches, and diffs."""

from __future__ import annotations

import pyarrow as pa
import pytest

from conduit_core.schema.diff import ChangeKind, diff
from conduit_core.schema.model import Column, TableSchema
from conduit_core.schema.types import Relation, parse_type, relate, type_name, unify


@pytest.mark.parametrize(("text", "expected"), [
    ("bigint", pa.int64()), ("INTEGER", pa.int32()), ("double precision", pa.float64()),
    ("decimal(12, 2)", pa.decimal128(12, 2)), ("varchar(20)", pa.string()), ("timestamptz", pa.timestamp("us", "UTC")),
    ("timestamp[ms]", pa.timestamp("ms")), ("date", pa.date32()), ("bool", pa.bool_()),
])
def test_parse_type(text: str, expected: pa.DataType) -> None:
    assert parse_type(text) == expected
    assert parse_type(type_name(expected)) == expected or pa.types.is_timestamp(expected)


def test_unknown_type_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown type 'bigin'; valid types: .*bigint"):
        parse_type("bigin")
    with pytest.raises(ValueError, match="precision"):
        parse_type("decimal(40,2)")


@pytest.mark.parametrize(("old", "new", "relation"), [
    (pa.int32(), pa.int64(), Relation.WIDER), (pa.int64(), pa.int32(), Relation.FITS),
    (pa.int64(), pa.float64(), Relation.WIDER), (pa.float64(), pa.int64(), Relation.FITS),
    (pa.float32(), pa.float64(), Relation.WIDER), (pa.date32(), pa.timestamp("us"), Relation.WIDER),
    (pa.timestamp("us"), pa.timestamp("s"), Relation.SAME), (pa.timestamp("us"), pa.timestamp("us", "UTC"),
                                                              Relation.INCOMPATIBLE),
    (pa.string(), pa.int64(), Relation.INCOMPATIBLE), (pa.int64(), pa.string(), Relation.INCOMPATIBLE),
    (pa.decimal128(10, 2), pa.decimal128(12, 2), Relation.WIDER), (pa.string(), pa.large_string(), Relation.SAME),
])
def test_relate(old: pa.DataType, new: pa.DataType, relation: Relation) -> None:
    assert relate(old, new) is relation


def test_unify_widens_int_to_bigint_to_double_to_string() -> None:
    assert unify(pa.int32(), pa.int64()) == pa.int64()
    assert unify(pa.int64(), pa.float64()) == pa.float64()
    assert unify(pa.float64(), pa.string()) == pa.string()
    assert unify(pa.null(), pa.date32()) == pa.date32()
    assert unify(pa.decimal128(10, 2), pa.decimal128(8, 4)) == pa.decimal128(12, 4)


def test_diff_classifies_changes() -> None:
    old = TableSchema((Column("id", pa.int64(), False), Column("name", pa.string()), Column("n", pa.int32()),
                       Column("blob", None, native="geometry")))
    new = TableSchema((Column("id", pa.int64()), Column("n", pa.float64()), Column("extra", pa.string()),
                       Column("blob", pa.int64())))
    drift = diff(old, new, nullability_for=frozenset({"id"}))
    kinds = {(c.kind, c.column): c for c in drift.changes}
    assert set(kinds) == {(ChangeKind.NULLABILITY, "id"), (ChangeKind.TYPE, "n"), (ChangeKind.ADDED, "extra"),
                          (ChangeKind.REMOVED, "name")}  # an unknown target type is never drift
    assert kinds[ChangeKind.TYPE, "n"].action == "widen n to double"
    assert kinds[ChangeKind.NULLABILITY, "id"].action == "DROP NOT NULL on id"
    assert drift.breaking  # the removed column
    assert not diff(old, new, nullability_for=frozenset(), exempt=frozenset({"id"})).of(ChangeKind.NULLABILITY)
