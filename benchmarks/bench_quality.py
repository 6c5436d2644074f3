"""What a declared schema and two quality checks cost: CSV -> Parquet with them, against the same load without
them, in one invocation.

The checked resource declares every column's type (amount as decimal(12,2), so coercion does real work) and
runs two checks (``not_null`` on id, ``range`` on amount); the standard data passes them all, so both outputs
hold exactly N rows (checked). Each repeat runs both cases in their own subprocesses (alternating). Reported:
best wall seconds per case and the ratio checked / plain; the target is <= 1.15.

    python benchmarks/bench_quality.py                    # 5M rows, 3 repeats
    python benchmarks/bench_quality.py --rows 1000000 --repeat 1 --json quality.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_files import child_env, code_version, ensure_csv, paired_config, run_measured

TARGET = 1.15
CHECKED = """\
    schema:
      id: int64
      name: string
      email: string
      amount: decimal(12,2)
      active: boolean
      signup_date: date
      updated_at: timestamp
      category: string
      score: int64
      comment: string
    quality_checks:
      - {column: id, check: not_null}
      - {column: amount, check: range, min_value: -1000000000, max_value: 1000000000}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/conduit-bench"))
    parser.add_argument("--json", type=Path, help="also save the results as JSON")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    csv = ensure_csv(args.workdir, args.rows)
    run_dir = args.workdir / "quality"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "ingest.yml").write_text(paired_config(run_dir, csv, "checked", CHECKED), encoding="utf-8")
    env = child_env()
    version = code_version()
    print(f"conduit {version}; {args.rows:,} rows")
    best: dict[str, float] = {}
    rss: dict[str, float] = {}
    for attempt in range(1, args.repeat + 1):
        for case in ("plain", "checked"):
            argv = [sys.executable, "-m", "conduit_core", "run", "-f", str(run_dir / "ingest.yml"), "--no-progress",
                    "--skip-preflight", case]
            wall, cpu, peak = run_measured(argv, env, run_dir / f"{case}.log")
            out = pq.ParquetFile(run_dir / f"{case}.parquet")
            if out.metadata.num_rows != args.rows:
                print(f"{case}: {out.metadata.num_rows:,} rows written, expected {args.rows:,}")
                return 1
            if case == "checked" and out.schema_arrow.field("amount").type != pa.decimal128(12, 2):
                print(f"{case}: amount is {out.schema_arrow.field('amount').type}, expected decimal(12,2)")
                return 1
            best[case] = min(best.get(case, wall), wall)
            rss[case] = max(rss.get(case, 0.0), peak)
            print(f"  run {attempt}/{args.repeat} {case:8s} {wall:6.2f} s  cpu {cpu:6.2f} s  {peak:6.0f} MB",
                  flush=True)
    ratio = best["checked"] / best["plain"]
    passed = ratio <= TARGET
    print(f"best: plain {best['plain']:.2f} s, checked {best['checked']:.2f} s; "
          f"ratio {ratio:.3f} (target <= {TARGET}): {'PASS' if passed else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps({"conduit": version, "rows": args.rows, "repeat": args.repeat,
                                         "best_s": best, "peak_rss_mb": rss, "ratio": ratio, "target": TARGET,
                                         "pass": passed}, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
