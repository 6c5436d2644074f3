from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from conduit_core.connectors.csv_sniff import detect_delimiter, detect_encoding, sniff
from conduit_core.errors import DataError


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (b"a,b\n1,2\n", "utf-8"),
        (codecs.BOM_UTF8 + b"a,b\n1,2\n", "utf-8"),
        ("name\nZoë\n".encode(), "utf-8"),
        # not UTF-8, but only one reading is clearly text: Russian in cp1251, Japanese in Shift-JIS
        ("".join(f"{i},Привет мир, Москва улица Ленина дом {i}\n" for i in range(500)).encode("cp1251"), "cp1251"),
        ("".join(f"{i},山田太郎,東京都新宿区西新宿{i}丁目\n" for i in range(100)).encode("shift_jis"), "cp932"),
        # a multi-byte character cut by the sample boundary is still UTF-8
        ("x,é".encode()[:-1], "utf-8"),
        (codecs.BOM_UTF16_LE + "a,b".encode("utf-16-le"), "utf-16"),
    ],
)
def test_detect_encoding(sample: bytes, expected: str) -> None:
    assert detect_encoding(sample) == expected


@pytest.mark.parametrize(("text", "codec"), [
    ("id,name,price\n1,Café “quoted”,5 €\n2,naïve \u2013 dash,3\n", "cp1252"),
    ("id,city\n1,Málaga\n2,Besançon\n", "latin-1"),
    ("id,city\n1,Łódź\n2,Dvořák Černý\n", "cp1250"),
])
def test_an_ambiguous_encoding_is_never_guessed(text: str, codec: str) -> None:
    """cp1252, latin-1, cp1250 and other single-byte encodings all decode these bytes without an error,
    as different letters: the error shows how the likely encodings read the line, and asks."""
    with pytest.raises(DataError) as info:
        detect_encoding(text.encode(codec), Path("in.csv"))
    error = info.value
    assert "cannot tell which encoding the file uses: it is not UTF-8 (from line 2)" in error.message
    assert error.line == 2
    assert "set `encoding:`" in (error.hint or "")
    readings = error.message.split(" differently - ", 1)[1]
    assert len(readings.split("; ")) >= 2


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
