"""Which allocator Arrow uses in a `conduit` process.

pyarrow's default pool in its Linux wheels is mimalloc, which keeps much of what a long stream of batches frees:
5M rows CSV -> Parquet peaked at 400-425 MB of RSS with it, at 344 MB with jemalloc (flat from 1M to 5M rows),
at the same speed (benchmarks/bench_files.py). Only the CLI chooses: the process is conduit's own, and
``ARROW_DEFAULT_MEMORY_POOL`` (Arrow's own variable) still decides when it is set.
"""

from __future__ import annotations

import os


def prefer_jemalloc() -> None:
    import pyarrow as pa

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc keeps its default
        return
