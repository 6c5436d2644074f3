"""What transform steps cost: CSV -> Parquet with a rename, a filter and a derive, against the same load without
them, in one invocation.

Each repeat runs both cases in their own subprocesses (alternating), on the standard CSV (generate_data.py,
cached under ``--workdir``). The output of each case is checked: the plain load holds exactly N rows, the
transformed one exactly the rows DuckDB counts with the same filter over the CSV, with the renamed and derived
columns. Reported: best wall seconds per case and the ratio transformed / plain; the target is <= 1.25.

    python benchmarks/bench_transforms.py                    # 5M rows, 3 repeats
    python benchmarks/bench_transforms.py --rows 1000000 --repeat 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_files import child_env, code_version, ensure_csv, paired_config, run_measured

TARGET = 1.25
FILTER = "amount > 0 AND category <> 'zeta'"
TRANSFORMS = f"""\
    transforms:
      - rename: {{id: order_id, email: contact}}
      - filter: "{FILTER}"
      - derive: {{amount_eur: "round(amount * 0.92, 2)", name_upper: "upper(name)"}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/conduit-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    csv = ensure_csv(args.workdir, args.rows)
    run_dir = args.workdir / "transforms"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "ingest.yml").write_text(paired_config(run_dir, csv, "transformed", TRANSFORMS), encoding="utf-8")
    expected = duckdb.sql(f"SELECT count(*) FROM read_csv('{csv}') WHERE {FILTER}").fetchall()[0][0]
    env = child_env()
    print(f"conduit {code_version()}; {args.rows:,} rows, {expected:,} pass the filter")
    best: dict[str, float] = {}
    for attempt in range(1, args.repeat + 1):
        for case in ("plain", "transformed"):
            argv = [sys.executable, "-m", "conduit_core", "run", "-f", str(run_dir / "ingest.yml"), "--no-progress",
                    "--skip-preflight", case]
            wall, cpu, rss = run_measured(argv, env, run_dir / f"{case}.log")
            out = pq.ParquetFile(run_dir / f"{case}.parquet")
            rows = out.metadata.num_rows
            wanted = args.rows if case == "plain" else expected
            if rows != wanted:
                print(f"{case}: {rows:,} rows written, expected {wanted:,}")
                return 1
            if case == "transformed" and not {"order_id", "contact", "amount_eur", "name_upper"} <= set(
                    out.schema_arrow.names):
                print(f"{case}: the transformed columns are missing: {out.schema_arrow.names}")
                return 1
            best[case] = min(best.get(case, wall), wall)
            print(f"  run {attempt}/{args.repeat} {case:12s} {wall:6.2f} s  cpu {cpu:6.2f} s  {rss:6.0f} MB",
                  flush=True)
    ratio = best["transformed"] / best["plain"]
    print(f"best: plain {best['plain']:.2f} s, transformed {best['transformed']:.2f} s; "
          f"ratio {ratio:.3f} (target <= {TARGET}): {'PASS' if ratio <= TARGET else 'FAIL'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
