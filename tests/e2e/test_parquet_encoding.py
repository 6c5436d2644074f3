"""Parquet output: which columns are dictionary-encoded is decided from the first row group; the values
never depend on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import CliRunner


def _encodings(path: Path) -> dict[str, set[str]]:
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(0)
    return {group.column(i).path_in_schema: set(group.column(i).encodings) for i in range(group.num_columns)}


def test_unique_text_is_written_plain_and_repeated_text_as_a_dictionary(
        tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path]) -> None:
    rows = 5_000
    lines = ["id,email,category,note"]
    lines += [f"{i},user{i}@example.com,{('a', 'b', 'c')[i % 3]},{'' if i % 4 else 'x'}" for i in range(rows)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: d, type: parquet, path: out.parquet, row_group_size: 1000}]
    resources:
      - {name: once, source: s, destination: d, mode: full_refresh}
      - {name: twice, source: s, destination: d, path: twice.parquet, mode: append}
    """)
    for _ in range(2):
        result = cli("run", "--no-progress", "--batch-size", "700")
        assert result.returncode == 0, result.stdout + result.stderr
    encodings = _encodings(tmp_path / "out.parquet")
    assert "RLE_DICTIONARY" not in encodings["email"]
    assert "RLE_DICTIONARY" not in encodings["id"]
    assert "RLE_DICTIONARY" in encodings["category"]
    assert "RLE_DICTIONARY" in encodings["note"]
    expected = [(i, f"user{i}@example.com", ("a", "b", "c")[i % 3], None if i % 4 else "x") for i in range(rows)]
    table = pq.read_table(tmp_path / "out.parquet")
    assert list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True)) == expected
    # An append copies the existing row groups first: the same choice, and every row once per run.
    appended = pq.read_table(tmp_path / "twice.parquet")
    assert appended.num_rows == 2 * rows
    assert sorted(appended.column("id").to_pylist()) == sorted(2 * list(range(rows)))
    assert "RLE_DICTIONARY" not in _encodings(tmp_path / "twice.parquet")["email"]
