"""Benchmark conduit's MySQL/MariaDB destination against a plain ``LOAD DATA LOCAL INFILE``.

For every size in ``--rows`` the standard CSV (see generate_data.py, cached
under ``--workdir`` and shared with bench_files.py) is loaded twice per repeat,
each in its own subprocess (peak RSS is that process's alone):

    load_data        pymysql: LOAD DATA LOCAL INFILE of the CSV into a pre-created table
    conduit_mysql    conduit run  csv -> mysql (mode: append into a table conduit creates)

The reference table has exactly the column types conduit creates for the file,
and its LOAD DATA converts the CSV's true/false and empty fields the way conduit
does (SET clauses), so both produce the same table. Both tables are dropped
before every repeat; every result is checked to hold exactly N rows. Target:
conduit's throughput >= 0.8x the reference, and conduit's peak RSS at the
largest size <= 1.3x the smallest. Exit status 1 when a target is missed.

    python benchmarks/bench_mysql.py                       # 1M and 5M rows, 2 repeats
    python benchmarks/bench_mysql.py --rows 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_files import child_env, code_version, ensure_csv, run_measured

TARGET = 0.8
RSS_TARGET = 1.3
TABLE_DDL = ("CREATE TABLE {t} (id BIGINT, name LONGTEXT, email LONGTEXT, amount DOUBLE, active BOOLEAN, "
             "signup_date DATE, updated_at DATETIME(6), category LONGTEXT, score BIGINT, comment LONGTEXT) "
             "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")

LOAD_DATA = """
import sys, pymysql
host, port, user, db, csv = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
con = pymysql.connect(host=host, port=port, user=user, database=db, local_infile=True, autocommit=False)
with con.cursor() as cur:
    cur.execute(
        "LOAD DATA LOCAL INFILE %s INTO TABLE ref CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' "
        "OPTIONALLY ENCLOSED BY '\\"' LINES TERMINATED BY '\\\\n' IGNORE 1 LINES "
        "(id, name, email, amount, @active, signup_date, updated_at, category, @score, comment) "
        "SET active = (@active = 'true'), score = NULLIF(@score, '')", (csv,))
con.commit()
"""

CONFIG = """\
settings: {{state_dir: {state}}}
sources: [{{name: csv, type: csv, path: {csv}}}]
destinations: [{{name: my, type: mysql, dsn: "{dsn}"}}]
resources: [{{name: load, source: csv, destination: my, table: conduit_t, mode: append}}]
"""


def _admin(dsn: str):  # type: ignore[no-untyped-def]
    import pymysql

    url = urlsplit(dsn)
    return pymysql.connect(host=url.hostname, port=url.port or 3306, user=url.username or "root",
                           password=url.password or "", database=url.path.lstrip("/"), autocommit=True)


def _count(dsn: str, table: str) -> int:
    con = _admin(dsn)
    with con.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        (found,) = cur.fetchone()
    con.close()
    return int(found)


def _reset(dsn: str) -> None:
    con = _admin(dsn)
    with con.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS ref")
        cur.execute("DROP TABLE IF EXISTS conduit_t")
        cur.execute(TABLE_DDL.format(t="ref"))
    con.close()


def bench(dsn: str, workdir: Path, rows: int, repeat: int) -> dict[str, dict[str, float]]:
    url = urlsplit(dsn)
    csv = ensure_csv(workdir, rows)
    run_dir = workdir / f"mysql_{rows}"
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "ingest.yml"
    config.write_text(CONFIG.format(state=run_dir / ".conduit", csv=csv, dsn=dsn))
    cases = {
        "load_data": ([sys.executable, "-c", LOAD_DATA, url.hostname or "127.0.0.1", str(url.port or 3306),
                       url.username or "root", url.path.lstrip("/"), str(csv)], "ref"),
        "conduit_mysql": ([sys.executable, "-m", "conduit_core", "run", "-f", str(config), "--no-progress"],
                          "conduit_t"),
    }
    env = child_env()
    out: dict[str, dict[str, float]] = {}
    for attempt in range(repeat):
        _reset(dsn)
        for name, (argv, table) in cases.items():
            wall, cpu, rss = run_measured(argv, env, run_dir / f"{name}.log")
            found = _count(dsn, table)
            if found != rows:
                msg = f"{name}: expected {rows} rows in {table}, found {found}"
                raise RuntimeError(msg)
            best = out.setdefault(name, {"best_s": wall, "cpu_s": cpu, "peak_rss_mb": rss})
            best["best_s"], best["cpu_s"] = min(best["best_s"], wall), min(best["cpu_s"], cpu)
            best["peak_rss_mb"] = max(best["peak_rss_mb"], rss)
            print(f"  {rows:>10,} rows  {name:<14} run {attempt + 1}/{repeat}: {wall:7.2f} s  cpu {cpu:6.2f} s  "
                  f"{rss:6.0f} MB", flush=True)
    _reset(dsn)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dsn", default="mysql://root@127.0.0.1:3306/test")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/conduit-bench"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"conduit {code_version()}", flush=True)
    results = {rows: bench(args.dsn, args.workdir, rows, args.repeat) for rows in args.rows}
    checks = []
    for rows, cases in results.items():
        ratio = cases["load_data"]["best_s"] / cases["conduit_mysql"]["best_s"]
        checks.append((f"conduit / LOAD DATA throughput @ {rows:,}", ratio, f">= {TARGET}", ratio >= TARGET))
    if len(results) > 1:
        small, large = min(results), max(results)
        growth = results[large]["conduit_mysql"]["peak_rss_mb"] / results[small]["conduit_mysql"]["peak_rss_mb"]
        checks.append((f"conduit peak RSS {large:,} / {small:,}", growth, f"<= {RSS_TARGET}", growth <= RSS_TARGET))
    print(f"\n{'case':<16}{'rows':>12}{'best s':>9}{'rows/s':>12}{'RSS MB':>9}")
    for rows, cases in results.items():
        for name, r in cases.items():
            print(f"{name:<16}{rows:>12,}{r['best_s']:>9.2f}{rows / r['best_s']:>12,.0f}{r['peak_rss_mb']:>9.0f}")
    print()
    for label, value, target, ok in checks:
        print(f"{label:<44}{value:>7.3f}  {target:<8}{'PASS' if ok else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps({"results": {str(k): v for k, v in results.items()},
                                         "checks": [(*c[:3], bool(c[3])) for c in checks]}, indent=2))
    return 0 if all(c[3] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
