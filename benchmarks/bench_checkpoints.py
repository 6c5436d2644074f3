"""What checkpoints cost: the same load with and without them, in one invocation.

For the standard CSV (see generate_data.py, cached under ``--workdir``) each
destination is loaded twice per repeat, each in its own subprocess:

    <dest>_single       checkpoint: {every_seconds: null}         (one transaction / one file)
    <dest>_checkpoints  checkpoint: {every_rows: rows / --count}  (--count checkpoints, default 10)

Before each case the target is removed (DuckDB file, PostgreSQL schema) and
PostgreSQL runs CHECKPOINT, so every case starts from the same state.

Destinations: duckdb and parquet always, postgresql when ``--pg-dsn`` (or
CONDUIT_TEST_POSTGRES_DSN) is set. Every output is checked to hold exactly N
rows. Reported: the throughput ratio single / checkpoints (1.0 = free), the
cost of one checkpoint ((checkpoints s - single s) / --count), and that cost as
a share of the default interval (one checkpoint every 60 s), which is the
target: <= 2% for the table destinations. Parquet is reported without a
target: a checkpointed Parquet load re-encodes its parts into one file at the
end, a cost that grows with the data, not with the number of checkpoints
(documented in docs/resume-and-incremental.md).

    python benchmarks/bench_checkpoints.py                     # 5M rows, 2 repeats
    python benchmarks/bench_checkpoints.py --rows 1000000 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_files import child_env, code_version, ensure_csv, run_measured, save_json

DEFAULT_INTERVAL_S = 60.0
TARGET = 0.02  # the share of the default interval one checkpoint may cost


def config(run_dir: Path, csv: Path, every_rows: int, pg_dsn: str | None) -> str:
    destinations = [f"{{name: duckdb, type: duckdb, path: {run_dir / 'out.duckdb'}}}",
                    f"{{name: parquet, type: parquet, path: {run_dir}}}"]
    if pg_dsn:
        destinations.append(f'{{name: postgresql, type: postgresql, dsn: "{pg_dsn}", schema: conduit_bench_ck}}')
    resources = []
    for dest in ("duckdb", "parquet", "postgresql")[: len(destinations)]:
        for case, checkpoint in (("single", "{every_seconds: null}"),
                                 ("checkpoints", f"{{every_rows: {every_rows}, every_seconds: null}}")):
            resources.append(f"  - {{name: {dest}_{case}, source: csv, destination: {dest}, "
                             f"mode: full_refresh, checkpoint: {checkpoint}}}")
    return (f"settings: {{state_dir: {run_dir / '.conduit'}}}\n"
            f"sources: [{{name: csv, type: csv, path: {csv}}}]\n"
            f"destinations: [{', '.join(destinations)}]\nresources:\n" + "\n".join(resources) + "\n")


def count(run_dir: Path, resource: str, pg_dsn: str | None) -> int:
    if resource.startswith("parquet"):
        return int(pq.ParquetFile(run_dir / f"{resource}.parquet").metadata.num_rows)
    if resource.startswith("duckdb"):
        with duckdb.connect(str(run_dir / "out.duckdb"), read_only=True) as con:
            return int(con.sql(f"SELECT count(*) FROM {resource}").fetchall()[0][0])
    import psycopg

    with psycopg.connect(str(pg_dsn)) as con:
        return int(con.execute(f"SELECT count(*) FROM conduit_bench_ck.{resource}").fetchone()[0])  # type: ignore[index]


def reset(run_dir: Path, dest: str, pg_dsn: str | None) -> None:
    """Start every case from the same place: no target yet, and no dirty pages of the previous case
    still being flushed by the server (PostgreSQL's own checkpoint otherwise lands in a random case)."""
    if dest == "duckdb":
        for path in (run_dir / "out.duckdb", run_dir / "out.duckdb.wal"):
            path.unlink(missing_ok=True)
    elif dest == "postgresql":
        import psycopg

        with psycopg.connect(str(pg_dsn), autocommit=True) as con:
            con.execute("DROP SCHEMA IF EXISTS conduit_bench_ck CASCADE")
            con.execute("CHECKPOINT")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--count", type=int, default=10, help="checkpoints per load")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pg-dsn", default=os.environ.get("CONDUIT_TEST_POSTGRES_DSN"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/conduit-bench"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    version = code_version()
    print(f"conduit {version}", flush=True)
    csv = ensure_csv(args.workdir, args.rows)
    run_dir = args.workdir / f"checkpoints_{args.rows}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    (run_dir / "ingest.yml").write_text(config(run_dir, csv, max(args.rows // args.count, 1), args.pg_dsn))
    dests = ["duckdb", "parquet"] + (["postgresql"] if args.pg_dsn else [])
    env = child_env()
    best: dict[str, float] = {}
    for attempt in range(args.repeat):
        for dest in dests:
            for case in ("single", "checkpoints"):  # interleaved, so drift hits both alike
                resource = f"{dest}_{case}"
                reset(run_dir, dest, args.pg_dsn)
                argv = [sys.executable, "-m", "conduit_core", "run", "-f", str(run_dir / "ingest.yml"),
                        "--no-progress", resource]
                wall, _, rss = run_measured(argv, env, run_dir / f"{resource}.log")
                found = count(run_dir, resource, args.pg_dsn)
                if found != args.rows:
                    msg = f"{resource}: expected {args.rows} rows, found {found}"
                    raise RuntimeError(msg)
                best[resource] = min(best.get(resource, wall), wall)
                print(f"  {resource:<24} run {attempt + 1}/{args.repeat}: {wall:6.2f} s  {rss:5.0f} MB", flush=True)
    checks = []
    print(f"\n{'destination':<12}{'single s':>10}{'checkpoints s':>15}{'ratio':>8}{'s/checkpoint':>14}"
          f"{'at 60 s':>9}  target")
    for dest in dests:
        single, checkpointed = best[f"{dest}_single"], best[f"{dest}_checkpoints"]
        each = max(checkpointed - single, 0.0) / args.count
        share = each / DEFAULT_INTERVAL_S
        target = None if dest == "parquet" else TARGET
        checks.append({"destination": dest, "ratio": round(single / checkpointed, 3), "s_per_checkpoint":
                       round(each, 3), "share_of_default_interval": round(share, 4), "target": target,
                       "ok": target is None or share <= target})
        print(f"{dest:<12}{single:>10.2f}{checkpointed:>15.2f}{single / checkpointed:>8.3f}{each:>14.3f}"
              f"{share:>9.2%}  {'<= ' + format(target, '.0%') if target else '(reported)'}")
    if args.json:
        save_json(args.json, version, code_version()["src_sha256"], {}, rows=args.rows,
                  checkpoints=args.count, best_s=best, checks=checks)
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
