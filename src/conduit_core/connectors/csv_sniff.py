"""Detect a CSV file's encoding and delimiter from a sample of its first bytes.

The sample is peeked from the same buffered handle the reader then consumes,
so detection never re-reads or duplicates rows.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path

from conduit_core.errors import DataError

_DELIMITERS = (",", ";", "\t", "|")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True)
class Dialect:
    encoding: str
    delimiter: str


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 by BOM, otherwise latin-1.

    pyarrow drops a UTF-8 BOM itself, so both spellings of UTF-8 read as ``utf-8``
    and no column name ever starts with ``\\ufeff``.
    """
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    try:
        # A multi-byte character may be cut at the end of the sample.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _decode(sample: bytes, encoding: str) -> str:
    if encoding.replace("_", "-").lower() in {"utf-8", "utf8", "utf-8-sig"} and sample.startswith(codecs.BOM_UTF8):
        sample = sample[len(codecs.BOM_UTF8):]
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)


def detect_delimiter(text: str) -> str:
    """The candidate that splits the sample's complete lines into the most, equally sized fields."""
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line may be cut by the sample boundary
    lines = lines[:50]
    best, best_score = ",", 0.0
    for candidate in _DELIMITERS:
        rows = list(csv.reader(lines, delimiter=candidate))
        counts = [len(r) for r in rows if r]
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for c in counts if c == counts[0]) / len(counts)
        score = counts[0] * consistent if consistent >= 0.9 else 0.0
        if score > best_score:
            best, best_score = candidate, score
    return best


def sniff(sample: bytes, path: Path, *, encoding: str = "auto", delimiter: str | None = None) -> Dialect:
    """Resolve ``auto`` settings for one file."""
    if encoding == "auto":
        encoding = detect_encoding(sample)
    elif encoding.replace("_", "-").lower() == "utf-8-sig":
        encoding = "utf-8"
    if delimiter is None:
        try:
            delimiter = detect_delimiter(_decode(sample, encoding))
        except (UnicodeDecodeError, LookupError) as exc:
            msg = f"cannot decode the file as {encoding}: {exc}"
            raise DataError(msg, file=str(path), hint="set `encoding:` on the source") from None
    return Dialect(encoding=encoding, delimiter=delimiter)
