"""Every performance target in one invocation: run each benchmark script in turn (never two at once), then
print one table of conduit against its reference on every pair, the memory figures and the fixed cost.

    python benchmarks/run_all.py                                  # 1M and 5M rows, 3 repeats (~45 min on 2 cores)
    python benchmarks/run_all.py --rows 200000 1000000 --repeat 1 # quick look (~5 min)
    python benchmarks/run_all.py --only files quality --json all.json

Sections (``--only`` picks some): ``fixed`` (1,000-row runs through the CLI, median of 5, and ``conduit
--help``), ``files`` (bench_files.py: CSV -> Parquet against DuckDB COPY, CSV -> DuckDB against CTAS),
``postgres`` (bench_postgres.py: CSV -> PostgreSQL against psql \\copy, PostgreSQL -> Parquet against DuckDB's
postgres scan), ``mysql`` (bench_mysql_source.py: MySQL -> Parquet against ``mysql --batch --quick``),
``quality`` (bench_quality.py: declared schema and two checks against the plain load, at the largest size).
Each script checks every output's row count before it reports a figure, and saves its own JSON under
``--workdir``; the exit status is 1 when a target is missed (or a script failed).

Ratios are reference time / conduit time from the same invocation (higher is better); absolute seconds on a
shared 2-core machine drift by +-20% between invocations, ratios much less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_files import child_env, code_version, ensure_csv  # noqa: E402

SECTIONS = ("fixed", "files", "postgres", "mysql", "quality")
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_MYSQL = "mysql://root@127.0.0.1:3306/test"

# (section, conduit case, reference case, {rows: target} (the largest key also covers larger sizes), label)
PAIRS: list[tuple[str, str, str, dict[int, float], str]] = [
    ("files", "conduit_parquet", "duckdb_copy", {0: 1.0}, "CSV -> Parquet vs DuckDB COPY"),
    ("files", "conduit_duckdb", "duckdb_ctas", {0: 0.9}, "CSV -> DuckDB vs CTAS"),
    ("postgres", "conduit_to_pg", "psql_copy_in", {0: 1.2, 5_000_000: 1.5}, "CSV -> PostgreSQL vs psql \\copy"),
    ("postgres", "conduit_pg_to_pq", "duckdb_pg_scan", {0: 1.0}, "PostgreSQL -> Parquet vs DuckDB scan"),
    ("mysql", "conduit_mysql_to_pq", "mysql_batch", {}, "MySQL -> Parquet vs mysql --batch"),
]
MYSQL_ROWS_PER_S = 200_000
RSS_RATIO, RSS_MB = 1.1, 400.0
FIXED_TARGETS = {"csv -> duckdb, 1,000 rows": 0.30, "csv -> postgresql, 1,000 rows": 0.40, "conduit --help": 0.15}
QUALITY_TARGET = 1.15


def target_for(targets: dict[int, float], rows: int) -> float | None:
    applicable = [size for size in targets if size <= rows]
    return targets[max(applicable)] if applicable else None


def run_script(name: str, args: list[str], log: Path) -> int:
    argv = [sys.executable, str(HERE / name), *args]
    print(f"\n== {' '.join(argv[1:])}", flush=True)
    with log.open("w") as sink:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sink.write(line)
            if "run " in line or "rows" in line or "FAIL" in line or "Error" in line:
                print("   " + line.rstrip(), flush=True)
        return proc.wait()


def fixed_cost(workdir: Path, dsn: str, env: dict[str, str], runs: int = 5) -> dict[str, float]:
    """Median wall time of a 1,000-row CSV load into DuckDB and into PostgreSQL through the CLI, and of
    ``conduit --help``: what every run pays before its rows."""
    csv = ensure_csv(workdir, 1_000)
    run_dir = workdir / "fixed"
    run_dir.mkdir(parents=True, exist_ok=True)
    schema = "bench_fixed"
    (run_dir / "ingest.yml").write_text(
        f"settings: {{state_dir: {run_dir / '.conduit'}}}\n"
        f"sources: [{{name: csv, type: csv, path: {csv}}}]\n"
        "destinations:\n"
        f"  - {{name: db, type: duckdb, path: {run_dir / 'fixed.duckdb'}}}\n"
        f"  - {{name: pg, type: postgresql, dsn: \"{dsn}\", schema: {schema}}}\n"
        "resources:\n"
        "  - {name: to_duckdb, source: csv, destination: db, mode: full_refresh}\n"
        "  - {name: to_pg, source: csv, destination: pg, mode: full_refresh}\n", encoding="utf-8")
    conduit = [sys.executable, "-m", "conduit_core"]
    probes = {
        "csv -> duckdb, 1,000 rows": [*conduit, "run", "-f", str(run_dir / "ingest.yml"), "--no-progress",
                                      "to_duckdb"],
        "csv -> postgresql, 1,000 rows": [*conduit, "run", "-f", str(run_dir / "ingest.yml"), "--no-progress",
                                          "to_pg"],
        "conduit --help": [*conduit, "--help"],
    }
    times: dict[str, list[float]] = {label: [] for label in probes}
    try:
        for attempt in range(runs + 1):  # the first round compiles bytecode and warms the caches: not counted
            for label, argv in probes.items():
                started = time.perf_counter()
                done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=run_dir)
                elapsed = time.perf_counter() - started
                if done.returncode != 0:
                    msg = f"{label} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
                    raise RuntimeError(msg)
                if attempt:
                    times[label].append(elapsed)
        _check_fixed_rows(run_dir, dsn, schema)
    finally:
        _drop_pg_schema(dsn, schema)
    return {label: statistics.median(values) for label, values in times.items()}


def _check_fixed_rows(run_dir: Path, dsn: str, schema: str) -> None:
    import duckdb
    import psycopg

    with duckdb.connect(str(run_dir / "fixed.duckdb"), read_only=True) as con:
        found = con.execute("SELECT count(*) FROM to_duckdb").fetchall()[0][0]
    with psycopg.connect(dsn) as pg:
        found_pg = pg.execute(f'SELECT count(*) FROM "{schema}".to_pg').fetchone()[0]  # type: ignore[index]
    if (found, found_pg) != (1_000, 1_000):
        msg = f"fixed-cost loads wrote {found} (DuckDB) and {found_pg} (PostgreSQL) rows, expected 1,000 each"
        raise RuntimeError(msg)


def _drop_pg_schema(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def results_of(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    data = json.loads(path.read_text())
    return {(r["case"], int(r["rows"])): r for r in data.get("results", [])}


def report(rows: list[int], results: dict[tuple[str, int], dict[str, Any]], fixed: dict[str, float] | None,
           quality: dict[str, Any] | None, sections: set[str]) -> list[bool]:
    verdicts: list[bool] = []

    def verdict(ok: bool | None) -> str:
        if ok is None:
            return ""
        verdicts.append(ok)
        return "PASS" if ok else "FAIL"

    print("\n" + "=" * 100)
    print(f"{'pair':<38} {'rows':>10} {'conduit s':>10} {'reference s':>12} {'ratio':>7}  {'target':<9} result")
    print("-" * 100)
    for section, conduit, reference, targets, label in PAIRS:
        if section not in sections:
            continue
        for size in rows:
            ours, theirs = results.get((conduit, size)), results.get((reference, size))
            if ours is None or theirs is None:
                print(f"{label:<38} {size:>10,} {'missing':>10}")
                verdicts.append(False)
                continue
            ratio = theirs["best_s"] / ours["best_s"]
            goal = target_for(targets, size)
            line = (f"{label:<38} {size:>10,} {ours['best_s']:>10.2f} {theirs['best_s']:>12.2f} {ratio:>7.3f}  "
                    f"{'>= ' + str(goal) if goal else '':<9} {verdict(ratio >= goal if goal else None)}")
            if section == "mysql":
                rate = size / ours["best_s"]
                line += (f"  {rate:,.0f} rows/s (target >= {MYSQL_ROWS_PER_S:,}: "
                         f"{verdict(rate >= MYSQL_ROWS_PER_S)})")
            print(line)
    if quality is not None:
        best = quality["best_s"]
        print(f"{'declared schema + 2 checks vs plain':<38} {quality['rows']:>10,} {best['checked']:>10.2f} "
              f"{best['plain']:>12.2f} {quality['ratio']:>7.3f}  {'<= ' + str(QUALITY_TARGET):<9} "
              f"{verdict(quality['ratio'] <= QUALITY_TARGET)}   (ratio = checked / plain)")
    if len(rows) >= 2:
        small, large = rows[0], rows[-1]
        print(f"\n{'memory (peak RSS)':<38} {f'{small:,} MB':>12} {f'{large:,} MB':>12} {'growth':>7}  targets")
        print("-" * 100)
        for section, conduit, _, _, _ in PAIRS:
            a, b = results.get((conduit, small)), results.get((conduit, large))
            if section not in sections or a is None or b is None:
                continue
            growth = b["peak_rss_mb"] / a["peak_rss_mb"]
            ok = growth <= RSS_RATIO and b["peak_rss_mb"] <= RSS_MB
            print(f"{conduit:<38} {a['peak_rss_mb']:>12.0f} {b['peak_rss_mb']:>12.0f} {growth:>7.3f}  "
                  f"<= {RSS_RATIO}, <= {RSS_MB:.0f} MB  {verdict(ok)}")
    if fixed is not None:
        print(f"\n{'fixed cost (median of 5)':<38} {'seconds':>10}  target")
        print("-" * 100)
        for label, seconds in fixed.items():
            goal = FIXED_TARGETS[label]
            print(f"{label:<38} {seconds:>10.3f}  <= {goal}  {verdict(seconds <= goal)}")
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best wall time is kept")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--dsn", default=os.environ.get("CONDUIT_TEST_POSTGRES_DSN", DEFAULT_DSN))
    parser.add_argument("--mysql-dsn", default=os.environ.get("CONDUIT_TEST_MYSQL_DSN", DEFAULT_MYSQL))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/conduit-bench"))
    parser.add_argument("--json", type=Path, help="also save everything as JSON")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    rows = sorted(set(args.rows))
    sections = set(args.only)
    common = ["--repeat", str(args.repeat), "--workdir", str(workdir)]
    version = code_version()
    print(f"conduit at {version['commit'][:10]} (src/ {version['src_sha256']}), {os.cpu_count()} cpus, rows {rows}")
    failures: list[str] = []
    results: dict[tuple[str, int], dict[str, Any]] = {}
    fixed = quality = None
    if "fixed" in sections:
        print("\n== fixed cost", flush=True)
        fixed = fixed_cost(workdir, args.dsn, child_env())
    scripts = {"files": ("bench_files.py", ["--rows", *map(str, rows)]),
               "postgres": ("bench_postgres.py", ["--rows", *map(str, rows), "--dsn", args.dsn]),
               "mysql": ("bench_mysql_source.py", ["--rows", *map(str, rows), "--dsn", args.mysql_dsn])}
    for section, (script, extra) in scripts.items():
        if section not in sections:
            continue
        out = workdir / f"run_all_{section}.json"
        out.unlink(missing_ok=True)
        code = run_script(script, [*extra, *common, "--json", str(out)], workdir / f"run_all_{section}.log")
        if not out.exists():
            failures.append(f"{script} exited {code} without results (see {workdir / f'run_all_{section}.log'})")
            continue
        results.update(results_of(out))
    if "quality" in sections:
        out = workdir / "run_all_quality.json"
        out.unlink(missing_ok=True)
        run_script("bench_quality.py", ["--rows", str(rows[-1]), *common, "--json", str(out)],
                   workdir / "run_all_quality.log")
        if out.exists():
            quality = json.loads(out.read_text())
        else:
            failures.append("bench_quality.py produced no results")
    verdicts = report(rows, results, fixed, quality, sections)
    after = code_version()["src_sha256"]
    if after != version["src_sha256"]:
        print(f"WARNING: src/ changed during the run ({version['src_sha256']} -> {after})")
    for failure in failures:
        print(f"ERROR: {failure}")
    if args.json:
        args.json.write_text(json.dumps({"conduit": version, "rows": rows, "repeat": args.repeat, "fixed_s": fixed,
                                         "quality": quality, "results": list(results.values()),
                                         "failures": failures}, indent=2) + "\n")
    return 0 if verdicts and all(verdicts) and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
