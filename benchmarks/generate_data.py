"""Generate the standard benchmark data set as CSV (and optionally NDJSON).

Ten columns: int id, name, email, amount (2 decimals), bool, ISO date,
ISO timestamp, low-cardinality category, nullable int (~10% empty) and free
text up to 80 characters. Generation is vectorised and seeded, so two runs with
the same arguments produce byte-identical files.

    python benchmarks/generate_data.py --rows 1000000 --out /tmp/std_1m.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

_FIRST = np.array(["ada", "alan", "grace", "edsger", "barbara", "donald", "ken", "linus", "margaret", "tim"])
_LAST = np.array(["lovelace", "turing", "hopper", "dijkstra", "liskov", "knuth", "thompson", "torvalds", "hamilton"])
_CATEGORIES = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])
_WORDS = np.array(
    [
        "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit",
        "sed", "do", "eiusmod", "tempor", "incididunt", "ut", "labore",
    ]
)


def standard_table(rows: int, *, seed: int = 42, start_id: int = 1) -> pa.Table:
    """Build ``rows`` rows of the standard data set as an Arrow table."""
    rng = np.random.default_rng(seed)
    ids = np.arange(start_id, start_id + rows, dtype=np.int64)
    first = _FIRST[rng.integers(0, len(_FIRST), rows)]
    last = _LAST[rng.integers(0, len(_LAST), rows)]
    name = np.char.add(np.char.add(first, " "), last)
    email = np.char.add(np.char.add(np.char.add(first, "."), ids.astype(str)), "@example.com")
    amount = np.round(rng.uniform(-1000, 100000, rows), 2)
    active = rng.random(rows) < 0.5
    day = np.datetime64("2020-01-01") + rng.integers(0, 2000, rows).astype("timedelta64[D]")
    ts = np.datetime64("2020-01-01T00:00:00", "s") + rng.integers(0, 2000 * 86400, rows).astype("timedelta64[s]")
    category = _CATEGORIES[rng.integers(0, len(_CATEGORIES), rows)]
    score = rng.integers(0, 1000, rows)
    score_mask = rng.random(rows) < 0.1
    n_words = rng.integers(1, 12, rows)
    words = _WORDS[rng.integers(0, len(_WORDS), (rows, 11))]
    text = words[:, 0].astype(object)
    for i in range(1, words.shape[1]):
        text = np.where(n_words > i, text + " " + words[:, i], text)
    text_arr = pc.utf8_slice_codeunits(pa.array(text, pa.string()), 0, 80)
    return pa.table(
        {
            "id": pa.array(ids),
            "name": pa.array(name, pa.string()),
            "email": pa.array(email, pa.string()),
            "amount": pa.array(amount).cast(pa.decimal128(12, 2)),
            "active": pa.array(active),
            "signup_date": pa.array(day.astype("datetime64[D]"), pa.date32()),
            "updated_at": pa.array(ts, pa.timestamp("s")),
            "category": pa.array(category, pa.string()),
            "score": pa.array(score, mask=score_mask, type=pa.int64()),
            "comment": text_arr,
        }
    )


def write_csv(path: Path, rows: int, *, seed: int = 42, chunk: int = 250_000) -> None:
    """Write the data set to ``path`` in chunks so memory stays bounded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer: pacsv.CSVWriter | None = None
    try:
        for offset in range(0, rows, chunk):
            table = standard_table(min(chunk, rows - offset), seed=seed + offset, start_id=offset + 1)
            if writer is None:
                writer = pacsv.CSVWriter(str(path), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    write_csv(args.out, args.rows, seed=args.seed)
    print(f"wrote {args.rows} rows to {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
