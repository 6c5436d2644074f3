from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from conduit_core.connectors.csv_sniff import detect_delimiter, detect_encoding, sniff


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (b"a,b\n1,2\n", "utf-8"),
        (codecs.BOM_UTF8 + b"a,b\n1,2\n", "utf-8"),
        ("name\nZoë\n".encode(), "utf-8"),
        ("name\nZoë\n".encode("latin-1"), "latin-1"),
        # a multi-byte character cut by the sample boundary is still UTF-8
        ("x,é".encode()[:-1], "utf-8"),
        (codecs.BOM_UTF16_LE + "a,b".encode("utf-16-le"), "utf-16"),
    ],
)
def test_detect_encoding(sample: bytes, expected: str) -> None:
    assert detect_encoding(sample) == expected


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_detect_delimiter(delimiter: str) -> None:
    rows = [["id", "name", "note"], ["1", "a", "x, y; z"], ["2", "b", "c"]]
    text = "\n".join(delimiter.join(f'"{v}"' if ("," in v or ";" in v) else v for v in row) for row in rows) + "\n"
    assert detect_delimiter(text) == delimiter


def test_single_column_defaults_to_comma() -> None:
    assert detect_delimiter("value\n1\n2\n") == ","


def test_explicit_settings_win(tmp_path: Path) -> None:
    dialect = sniff(b"a;b\n", tmp_path / "f.csv", encoding="utf-8-sig", delimiter="|")
    assert (dialect.encoding, dialect.delimiter) == ("utf-8", "|")
