"""Benchmark conduit's MySQL/MariaDB source: ``conduit run`` of a table into Parquet, beside the ``mysql`` client.

For every size in ``--rows`` the standard CSV (see generate_data.py, cached
under ``--workdir`` and shared with bench_files.py) is loaded once into table
``t`` of a database of its own (``--database``, dropped at the end unless
``--keep``), with bench_mysql.py's column types (TABLE_DDL) and its LOAD DATA
conversions of true/false and empty fields. Then, per repeat, each case in its
own subprocess (peak RSS is that process's alone):

    mysql_batch      mysql --batch --quick -e 'SELECT * FROM t' > t.tsv   (the reference: the server's C client
                     streaming the same result to a text file)
    conduit_mysql_to_pq  conduit run  mysql (table: t) -> parquet (mode: full_refresh)

Every result is checked: the TSV holds exactly N rows after its header, the
Parquet file N rows and 10 columns. The best wall time of the repeats is kept.
Target: conduit reads at least 200,000 rows/s (exit status 1 when missed); the
ratio to the reference is printed beside it.

    python benchmarks/bench_mysql_source.py                          # 1M rows, 2 repeats
    python benchmarks/bench_mysql_source.py --rows 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_files import child_env, code_version, ensure_csv, run_measured
from bench_mysql import TABLE_DDL

TARGET_ROWS_PER_S = 200_000
COLUMNS = 10

LOAD_DATA = ("LOAD DATA LOCAL INFILE %s INTO TABLE t CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' "
             "OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' IGNORE 1 LINES "
             "(id, name, email, amount, @active, signup_date, updated_at, category, @score, comment) "
             "SET active = (@active = 'true'), score = NULLIF(@score, '')")

CONFIG = """\
settings: {{state_dir: {state}}}
sources: [{{name: my, type: mysql, dsn: "{dsn}", table: t}}]
destinations: [{{name: lake, type: parquet, path: {parquet}}}]
resources: [{{name: to_parquet, source: my, destination: lake, mode: full_refresh}}]
"""


def _connect(dsn: str, database: str | None, **extra: object):  # type: ignore[no-untyped-def]
    import pymysql

    url = urlsplit(dsn)
    return pymysql.connect(host=url.hostname, port=url.port or 3306, user=url.username or "root",
                           password=url.password or "", database=database, autocommit=True, **extra)


def _with_database(dsn: str, database: str) -> str:
    url = urlsplit(dsn)
    return url._replace(path=f"/{database}").geturl()


def prepare(dsn: str, database: str, csv: Path, rows: int) -> None:
    """Table ``t`` of ``database`` holding the ``rows`` rows of ``csv`` (kept when it already does)."""
    admin = _connect(dsn, None)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4")
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = 't'",
                    (database,))
        exists = cur.fetchone()[0]
        if exists:
            cur.execute(f"SELECT count(*) FROM `{database}`.t")
            if cur.fetchone()[0] == rows:
                admin.close()
                return
            cur.execute(f"DROP TABLE `{database}`.t")
    admin.close()
    print(f"loading {rows:,} rows into {database}.t", flush=True)
    con = _connect(dsn, database, local_infile=True)
    with con.cursor() as cur:
        cur.execute(TABLE_DDL.format(t="t"))
        cur.execute("START TRANSACTION")
        cur.execute(LOAD_DATA, (str(csv),))
        cur.execute("COMMIT")
        cur.execute("SELECT count(*) FROM t")
        found = cur.fetchone()[0]
    con.close()
    if found != rows:
        msg = f"loaded {found} rows into {database}.t, expected {rows}"
        raise RuntimeError(msg)


def drop(dsn: str, database: str) -> None:
    admin = _connect(dsn, None)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
    admin.close()


def mysql_client() -> str:
    for name in ("mysql", "mariadb"):
        found = shutil.which(name)
        if found:
            return found
    msg = "neither `mysql` nor `mariadb` (the command-line client) is on PATH: it is the reference"
    raise RuntimeError(msg)


def verify_tsv(path: Path, rows: int) -> None:
    with path.open("rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    if lines != rows + 1:  # a header line, then one line per row (--batch escapes newlines in values)
        msg = f"mysql_batch: expected {rows} rows in {path}, found {lines - 1}"
        raise RuntimeError(msg)


def verify_parquet(path: Path, rows: int) -> None:
    meta = pq.ParquetFile(path).metadata
    if (meta.num_rows, meta.num_columns) != (rows, COLUMNS):
        msg = f"conduit_mysql_to_pq: expected {rows} rows x {COLUMNS} columns in {path}, found " \
              f"{meta.num_rows} x {meta.num_columns}"
        raise RuntimeError(msg)


def bench(dsn: str, database: str, workdir: Path, rows: int, repeat: int) -> dict[str, dict[str, float]]:
    url = urlsplit(dsn)
    prepare(dsn, database, ensure_csv(workdir, rows), rows)
    run_dir = workdir / f"mysql_source_{rows}"
    run_dir.mkdir(parents=True, exist_ok=True)
    parquet, tsv = run_dir / "conduit.parquet", run_dir / "t.tsv"
    config = run_dir / "ingest.yml"
    config.write_text(CONFIG.format(state=run_dir / ".conduit", dsn=_with_database(dsn, database), parquet=parquet))
    env = child_env()
    if url.password:
        env["MYSQL_PWD"] = url.password  # not on the command line
    client = [mysql_client(), f"--host={url.hostname or '127.0.0.1'}", f"--port={url.port or 3306}",
              f"--user={url.username or 'root'}", "--batch", "--quick", "--default-character-set=utf8mb4",
              f"--database={database}", "-e", "SELECT * FROM t"]
    # The client writes to stdout: a shell redirects it to the file, as a person would run it.
    cases = {
        "mysql_batch": (["sh", "-c", 'exec "$@" > "$0"', str(tsv), *client], lambda: verify_tsv(tsv, rows)),
        "conduit_mysql_to_pq": ([sys.executable, "-m", "conduit_core", "run", "-f", str(config), "--no-progress"],
                            lambda: verify_parquet(parquet, rows)),
    }
    out: dict[str, dict[str, float]] = {}
    for attempt in range(repeat):
        for name, (argv, verify) in cases.items():  # interleaved, so drift on the machine hits both alike
            for stale in (parquet, tsv):
                stale.unlink(missing_ok=True)
            wall, cpu, rss = run_measured(argv, env, run_dir / f"{name}.log")
            verify()
            best = out.setdefault(name, {"best_s": wall, "cpu_s": cpu, "peak_rss_mb": rss})
            best["best_s"], best["cpu_s"] = min(best["best_s"], wall), min(best["cpu_s"], cpu)
            best["peak_rss_mb"] = max(best["peak_rss_mb"], rss)
            print(f"  {rows:>10,} rows  {name:<16} run {attempt + 1}/{repeat}: {wall:7.2f} s  cpu {cpu:6.2f} s  "
                  f"{rss:6.0f} MB  (load {os.getloadavg()[0]:.1f})", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dsn", default="mysql://root@127.0.0.1:3306/test",
                        help="the server (its database part is ignored: the table lives in --database)")
    parser.add_argument("--database", default="bench_mysql_src")
    parser.add_argument("--keep", action="store_true", help="keep --database (and its table) for the next run")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/conduit-bench"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    version = code_version()
    print(f"conduit at commit {version['commit'][:10]}, src/ sha256 {version['src_sha256']}", flush=True)
    try:
        results = {rows: bench(args.dsn, args.database, args.workdir, rows, args.repeat) for rows in args.rows}
    finally:
        if not args.keep:
            drop(args.dsn, args.database)
    print(f"\n{'case':<21}{'rows':>12}{'best s':>9}{'rows/s':>12}{'cpu s':>8}{'RSS MB':>9}")
    for rows, cases in results.items():
        for name, r in cases.items():
            print(f"{name:<21}{rows:>12,}{r['best_s']:>9.2f}{rows / r['best_s']:>12,.0f}{r['cpu_s']:>8.2f}"
                  f"{r['peak_rss_mb']:>9.0f}")
    print()
    checks = []
    for rows, cases in results.items():
        speed = rows / cases["conduit_mysql_to_pq"]["best_s"]
        reference = rows / cases["mysql_batch"]["best_s"]
        checks.append({"rows": rows, "conduit_rows_per_s": speed, "target_rows_per_s": TARGET_ROWS_PER_S,
                       "ratio_to_target": speed / TARGET_ROWS_PER_S, "mysql_cli_rows_per_s": reference,
                       "ratio_to_mysql_cli": speed / reference, "pass": speed >= TARGET_ROWS_PER_S})
        print(f"conduit rows/s @ {rows:,}: {speed:,.0f} = {speed / TARGET_ROWS_PER_S:.2f}x the target "
              f"{TARGET_ROWS_PER_S:,}  {'PASS' if speed >= TARGET_ROWS_PER_S else 'FAIL'}")
        print(f"conduit / mysql --batch --quick @ {rows:,}: {speed / reference:.3f} "
              f"(reference {reference:,.0f} rows/s)")
    after = code_version()["src_sha256"]
    if after != version["src_sha256"]:
        print(f"WARNING: src/ changed during the run ({version['src_sha256']} -> {after})")
    if args.json:
        flat = [{"case": name, "rows": rows, **figures} for rows, cases in results.items()
                for name, figures in cases.items()]
        args.json.write_text(json.dumps({"conduit": version, "results": flat, "checks": checks}, indent=2))
    return 0 if all(c["pass"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
