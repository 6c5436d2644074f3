"""Detect a CSV file's encoding and delimiter from a sample of its first bytes.

The sample is peeked from the same buffered handle the reader then consumes,
so detection never re-reads or duplicates rows.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conduit_core.errors import DataError

_DELIMITERS = (",", ";", "\t", "|")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True)
class Dialect:
    encoding: str
    delimiter: str


def detect_encoding(sample: bytes, path: Path | None = None) -> str:
    """UTF-8 (with or without BOM), UTF-16 by BOM; anything else only when it can be told apart.

    pyarrow drops a UTF-8 BOM itself, so both spellings of UTF-8 read as ``utf-8``
    and no column name ever starts with ``\\ufeff``. A sample that is not UTF-8 goes
    to :func:`_single_byte`, which refuses to guess between encodings that read it differently.
    """
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    try:
        # A multi-byte character may be cut at the end of the sample.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError as exc:
        return _single_byte(sample, path, exc.start)
    return "utf-8"


#: Within one reading of a sample, the encoding to name: cp1252 reads the bytes 0x80-0x9F that
#: latin-1 leaves as control characters (the euro sign, curly quotes, dashes).
_PREFERRED = ("cp1252", "iso8859_15", "latin_1")
#: How much more coherent (charset-normalizer's language score) the best reading must be than
#: any reading that differs, to be taken without asking.
_MARGIN = 0.1


def _single_byte(sample: bytes, path: Path | None, bad_at: int) -> str:
    """The encoding of a non-UTF-8 sample, when charset-normalizer's candidates agree or one reads
    clearly better; otherwise a :class:`DataError` that shows how each likely encoding reads it.

    Short samples of Western text are genuinely ambiguous (cp1252, cp1250 and cp775 all decode
    ``Caf\\xe9`` without complaint, as different letters), so a close call is never settled by a guess.
    """
    from charset_normalizer import from_bytes

    end = sample.rfind(b"\n") + 1 or len(sample)
    matches = list(from_bytes(sample[:end]))
    readings: dict[str, list[Any]] = {}
    for match in matches:
        readings.setdefault(str(match), []).append(match)
    ranked = sorted(readings.values(), key=lambda ms: (min(m.chaos for m in ms), -max(m.coherence for m in ms)))
    if ranked:
        best = ranked[0]
        runner_up = ranked[1] if len(ranked) > 1 else None
        clear = runner_up is None or _clearly_better(best, runner_up)
        if clear:
            names = [m.encoding for m in best]
            return next((n for n in _PREFERRED if n in names), names[0])
    line = sample.count(b"\n", 0, bad_at) + 1
    where = f"{path}" if path is not None else "the file"
    hint = ("set `encoding:` on the source to the one that reads right (a Python codec name; cp1252 for most "
            "Western European files written on Windows)")
    if not ranked:
        msg = f"{where} is not UTF-8 (line {line}) and reads as text in no encoding conduit can recognise"
        raise DataError(msg, file=str(path) if path else None, line=line, hint=hint)
    names = [ms[0].encoding for ms in ranked[:3]]
    number, raw_line = _telling_line(sample, bad_at, names)
    previews = "; ".join(f"{name}: {raw_line.decode(name, errors='replace')!r}" for name in names)
    msg = (f"cannot tell which encoding the file uses: it is not UTF-8 (from line {line}), and the likely "
           f"encodings read line {number} differently - {previews}")
    raise DataError(msg, file=str(path) if path else None, line=line, hint=hint)


def _clearly_better(best: list[Any], other: list[Any]) -> bool:
    """Whether one reading beats another by charset-normalizer's own measures, not by a hair: no more
    garbled (chaos) and no less like a language (coherence), and clearly ahead on one of them."""
    chaos, other_chaos = min(m.chaos for m in best), min(m.chaos for m in other)
    coherence, other_coherence = max(m.coherence for m in best), max(m.coherence for m in other)
    return bool(chaos <= other_chaos and coherence >= other_coherence
                and (coherence - other_coherence >= _MARGIN or other_chaos - chaos >= _MARGIN))


def _telling_line(sample: bytes, start: int, encodings: list[str]) -> tuple[int, bytes]:
    """The line (from byte ``start`` on) that the encodings read most differently, with its number."""
    first = sample.rfind(b"\n", 0, start) + 1
    number = sample.count(b"\n", 0, first) + 1
    best: tuple[int, int, bytes] = (0, number, sample[first:first + 160])
    for offset, raw in enumerate(sample[first:].split(b"\n")[:1000]):
        if raw.isascii():
            continue
        readings = len({raw[:160].decode(name, errors="replace") for name in encodings})
        if readings > best[0]:
            best = (readings, number + offset, raw[:160])
            if readings == len(encodings):
                break
    return best[1], best[2]


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
        encoding = detect_encoding(sample, path)
    elif encoding.replace("_", "-").lower() == "utf-8-sig":
        encoding = "utf-8"
    if delimiter is None:
        try:
            delimiter = detect_delimiter(_decode(sample, encoding))
        except (UnicodeDecodeError, LookupError) as exc:
            msg = f"cannot decode the file as {encoding}: {exc}"
            raise DataError(msg, file=str(path), hint="set `encoding:` on the source") from None
    return Dialect(encoding=encoding, delimiter=delimiter)
