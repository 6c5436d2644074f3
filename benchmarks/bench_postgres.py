"""Benchmark conduit's PostgreSQL connector against psql's ``\\copy`` doing the same job.

For every size in ``--rows`` the standard data set (see generate_data.py) is
written as CSV once (cached under ``--workdir``, shared with bench_files.py),
then five cases run, each in its own subprocess so that the peak RSS reported
is that process's alone:

    psql_copy_in        psql -c "\\copy t FROM 'f.csv' csv header"  into a pre-created table
    conduit_to_pg       conduit run  csv -> postgresql  (mode: full_refresh, conduit creates the table)
    conduit_refresh     the same run again, replacing the N rows conduit_to_pg left in the table
    psql_copy_out       psql -c "\\copy (SELECT * FROM src) TO 'f.csv' csv"
    duckdb_pg_scan      DuckDB  COPY (SELECT * FROM pg.src) TO 'f.parquet'  (postgres extension, ATTACH)
    conduit_pg_to_pq    conduit run  postgresql -> parquet  (mode: full_refresh)

psql's table is created with exactly the column types conduit creates for the
CSV (bigint, text, text, double precision, boolean, date, timestamp, text,
bigint, text); both tables are checked to have those types after every run.
Both load targets are dropped (and psql's re-created) before every repeat, so
conduit_to_pg measures a load into a table the load creates; conduit_refresh
then measures replacing the rows of an existing table, which the destination
does differently (through a staging table, so that readers keep the old rows
until COMMIT). A CHECKPOINT runs before every case, outside the timing, so that
no case pays for the previous one's dirty buffers. The two export cases read the same
source table, loaded once per size with ``\\copy`` and then ``VACUUM (FREEZE,
ANALYZE)``-ed so that no reader pays for setting hint bits.

Timing, repeats, peak RSS and CPU follow bench_files.py (best wall time of
``--repeat`` interleaved runs, ``ru_maxrss`` of the child from ``os.wait4``).
The child's CPU excludes the server's work, so the CPU time of the whole
machine during each run (from /proc/stat) is printed as well. A child's
``ru_maxrss`` cannot be lower than this process's own peak (Linux carries the
high-water mark across fork and exec), so psql's RSS is only that floor (its
own is about 10 MB); the floor is printed. Every output is
checked to hold exactly N rows (and 10 columns) before any figure is
reported. Everything is done in a dedicated schema (``--schema``, default
``bench``), dropped at the end. The exit status is 1 when a target is missed.

    python benchmarks/bench_postgres.py                        # 1M and 5M rows, 3 repeats
    python benchmarks/bench_postgres.py --rows 200000 --repeat 1
    python benchmarks/bench_postgres.py --dsn postgresql://postgres@127.0.0.1:5432/test --json pg.json
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_files import (  # the benchmarks directory is on sys.path (above)
    COLUMNS,
    FIXED_ROWS,
    RSS_GROWTH_TARGET,
    Case,
    Result,
    child_env,
    code_version,
    ensure_csv,
    print_report,
    remove,
    run_measured,
    save_json,
    verify,
)

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"

# Targets: conduit rows/s / reference rows/s (higher is better). Loads against psql's \copy, per size
# (the largest size has its own target); conduit_refresh (replacing an existing table's rows) is compared with
# psql_copy_in too, without a target. The export against DuckDB's postgres scan.
LOAD_TARGETS = {1_000_000: 1.2, 5_000_000: 1.5}
EXPORT_TARGET = 1.0

# DuckDB's postgres extension comes from duckdb.org, which this machine cannot reach; PyPI has it packaged for
# DuckDB 1.4.4 only, so the reference runs in a virtualenv of its own (created on first use).
DUCKDB_REF_PACKAGES = ["duckdb==1.4.4", "duckdb-ext-postgres==1.4.4.20260205"]
DUCKDB_PG_SCAN = """
import glob, sys, duckdb
dsn, table, out = sys.argv[1], sys.argv[2], sys.argv[3]
ext = glob.glob(sys.prefix + "/lib/python*/site-packages/duckdb_ext/extensions/*/*/postgres_scanner.duckdb_extension")
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute("SET enable_progress_bar = false")
con.execute(f"LOAD '{ext[0]}'")
con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
con.execute(f"COPY (SELECT * FROM pg.{table}) TO '{out}' (FORMAT parquet)")
"""


def duckdb_reference(workdir: Path) -> Path:
    """The Python of a virtualenv with DuckDB and its postgres extension (created under ``workdir``)."""
    venv = workdir / "duckdb-ref-venv"
    python = venv / "bin" / "python"
    marker = venv / "packages.txt"
    if not python.exists() or marker.read_text() != "\n".join(DUCKDB_REF_PACKAGES):
        print(f"creating the DuckDB postgres-scan reference in {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *DUCKDB_REF_PACKAGES], check=True)
        marker.write_text("\n".join(DUCKDB_REF_PACKAGES))
    return python


def load_target(rows: int) -> float:
    return LOAD_TARGETS.get(rows, LOAD_TARGETS[max(LOAD_TARGETS)] if rows > max(LOAD_TARGETS) else
                            LOAD_TARGETS[min(LOAD_TARGETS)])

# The columns and types conduit creates for the standard CSV; psql's table gets the same.
STD_COLUMNS = [
    ("id", "bigint"), ("name", "text"), ("email", "text"), ("amount", "double precision"), ("active", "boolean"),
    ("signup_date", "date"), ("updated_at", "timestamp"), ("category", "text"), ("score", "bigint"),
    ("comment", "text"),
]
# The same, spelled as information_schema.columns.data_type reports them.
STD_DATA_TYPES = ["timestamp without time zone" if t == "timestamp" else t for _, t in STD_COLUMNS]

INGEST_YML = """\
# Generated by benchmarks/bench_postgres.py
settings:
  state_dir: {state}
sources:
  - name: bench_csv
    type: csv
    path: {csv}
  - name: pg_src
    type: postgresql
    dsn: "{dsn}"
    schema: {schema}
    table: {source_table}
destinations:
  - name: pg
    type: postgresql
    dsn: "{dsn}"
    schema: {schema}
  - name: lake
    type: parquet
    path: {parquet}
resources:
  - name: to_pg
    source: bench_csv
    destination: pg
    table: {load_table}
    mode: full_refresh
  - name: to_parquet
    source: pg_src
    destination: lake
    mode: full_refresh
"""


@dataclass
class PgCase(Case):
    """A bench_files.Case whose output may be a table: ``kind`` is "table", "parquet" or "csv".

    ``prepare`` runs before every repeat, outside the timing; for a table case
    ``output`` is just the run directory.
    """

    table: str = ""
    log: Path = Path()
    prepare: Callable[[], None] = field(default=lambda: None, repr=False)
    machine_cpu: list[float] = field(default_factory=list)


@dataclass
class PgResult(Result):
    machine_cpu_s: float = 0.0  # user + system CPU of the whole machine (client and server), min over repeats


class Bench:
    """One admin connection to the server, the schema, and the cases built on them."""

    def __init__(self, dsn: str, schema: str, workdir: Path) -> None:
        self.dsn, self.schema, self.workdir = dsn, schema, workdir
        self.con = psycopg.connect(dsn, autocommit=True)
        self.duckdb_python = duckdb_reference(workdir)

    def sql(self, query: str, *idents: str, params: tuple[object, ...] | None = None) -> list[tuple[object, ...]]:
        """Run ``query`` with ``{}`` placeholders filled by quoted, schema-qualified identifiers."""
        composed = sql.SQL(query).format(*(sql.Identifier(self.schema, name) for name in idents))  # type: ignore[arg-type]
        cur = self.con.execute(composed, params)
        return cur.fetchall() if cur.description else []

    def reset_schema(self) -> None:
        self.con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))
        self.con.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))

    def drop_schema(self) -> None:
        self.con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))

    def create_std(self, table: str, columns_and_types: list[tuple[str, str]] = STD_COLUMNS) -> None:
        columns = ", ".join(f"{name} {pg_type}" for name, pg_type in columns_and_types)
        self.sql("DROP TABLE IF EXISTS {}", table)
        self.sql(f"CREATE TABLE {{}} ({columns})", table)

    def checkpoint(self) -> None:
        self.con.execute("CHECKPOINT")

    def psql(self, command: str) -> list[str]:
        return ["psql", self.dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command]

    def qualified(self, table: str) -> str:
        return sql.Identifier(self.schema, table).as_string(self.con)

    def load_source(self, table: str, csv: Path) -> None:
        """The table both export cases read: loaded once, frozen and analysed."""
        self.create_std(table)
        subprocess.run(self.psql(f"\\copy {self.qualified(table)} FROM '{csv}' csv header"), check=True)
        self.sql("VACUUM (FREEZE, ANALYZE) {}", table)

    def settings(self) -> dict[str, str]:
        names = ["server_version", "shared_buffers", "max_wal_size", "wal_level", "synchronous_commit", "fsync"]
        return {name: str(self.con.execute(f"SHOW {name}").fetchone()[0]) for name in names}  # type: ignore[index]

    def make_cases(self, rows: int, csv: Path) -> list[PgCase]:
        run_dir = self.workdir / f"pg_run_{rows}"
        run_dir.mkdir(parents=True, exist_ok=True)
        source, psql_table, conduit_table = f"src_{rows}", f"psql_in_{rows}", f"conduit_in_{rows}"
        parquet, exported = run_dir / "conduit.parquet", run_dir / "psql.csv"
        scanned = run_dir / "duckdb.parquet"
        config = run_dir / "ingest.yml"
        config.write_text(INGEST_YML.format(state=run_dir / ".conduit", csv=csv, dsn=self.dsn, schema=self.schema,
                                            source_table=source, parquet=parquet, load_table=conduit_table))
        conduit = [sys.executable, "-m", "conduit_core", "run", "-f", str(config), "--no-progress"]
        self.load_source(source, csv)

        def fresh_table(name: str, *, create: bool) -> Callable[[], None]:
            def prepare() -> None:
                if create:
                    self.create_std(name)
                else:
                    self.sql("DROP TABLE IF EXISTS {}", name)
                self.checkpoint()
            return prepare

        def fresh_file(path: Path) -> Callable[[], None]:
            def prepare() -> None:
                remove(path)
                self.checkpoint()
            return prepare

        cases = [
            PgCase("psql_copy_in", self.psql(f"\\copy {self.qualified(psql_table)} FROM '{csv}' csv header"),
                   run_dir, "table", table=psql_table, prepare=fresh_table(psql_table, create=True)),
            PgCase("conduit_to_pg", [*conduit, "to_pg"], run_dir, "table", table=conduit_table,
                   prepare=fresh_table(conduit_table, create=False)),
            PgCase("conduit_refresh", [*conduit, "to_pg"], run_dir, "table", table=conduit_table,
                   prepare=self.checkpoint),
            PgCase("psql_copy_out", self.psql(f"\\copy (SELECT * FROM {self.qualified(source)}) TO '{exported}' csv"),
                   exported, "csv", prepare=fresh_file(exported)),
            PgCase("duckdb_pg_scan", [str(self.duckdb_python), "-c", DUCKDB_PG_SCAN, self.dsn,
                                      self.qualified(source), str(scanned)], scanned, "parquet",
                   prepare=fresh_file(scanned)),
            PgCase("conduit_pg_to_pq", [*conduit, "to_parquet"], parquet, "parquet", prepare=fresh_file(parquet)),
        ]
        for case in cases:
            case.log = run_dir / f"{case.name}.log"
        return cases

    def drop_size(self, rows: int) -> None:
        """Free the disk a size used (5M rows are about 1 GB per table)."""
        for table in (f"src_{rows}", f"psql_in_{rows}", f"conduit_in_{rows}"):
            self.sql("DROP TABLE IF EXISTS {}", table)
        shutil.rmtree(self.workdir / f"pg_run_{rows}", ignore_errors=True)

    def verify(self, case: PgCase, rows: int) -> None:
        """A benchmark of a wrong result is worthless: the output must hold exactly ``rows`` rows."""
        if case.kind == "parquet":
            verify(case, rows)
            return
        if case.kind == "csv":
            found, cols = count_lines(case.output), COLUMNS  # \copy ... csv writes no header
        else:
            found = self.sql("SELECT count(*) FROM {}", case.table)[0][0]
            types = [r[0] for r in self.con.execute(
                "SELECT data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "ORDER BY ordinal_position", (self.schema, case.table)).fetchall()]
            cols = len(types)
            if types != STD_DATA_TYPES:
                msg = f"{case.name}: table {case.table} has types {types}, expected {STD_DATA_TYPES}"
                raise RuntimeError(msg)
        if found != rows or cols != COLUMNS:
            msg = f"{case.name}: expected {rows} rows x {COLUMNS} columns in {case.table or case.output}, " \
                  f"found {found} x {cols}"
            raise RuntimeError(msg)

    def bench_size(self, rows: int, repeat: int, env: dict[str, str], *, quiet: bool = False) -> list[PgResult]:
        csv = ensure_csv(self.workdir, rows)
        cases = self.make_cases(rows, csv)
        for attempt in range(repeat):
            for case in cases:  # interleaved, so drift on the machine hits every case alike
                case.prepare()
                before = machine_cpu()
                wall, cpu, rss = run_measured(case.argv, env, case.log)
                total = machine_cpu() - before
                self.verify(case, rows)
                case.times.append(wall)
                case.cpu.append(cpu)
                case.rss_mb.append(rss)
                case.machine_cpu.append(total)
                if not quiet:
                    print(f"  {rows:>10,} rows  {case.name:<18} run {attempt + 1}/{repeat}: {wall:7.2f} s  "
                          f"cpu {cpu:6.2f} s  machine cpu {total:6.2f} s  {rss:6.0f} MB  "
                          f"(load {os.getloadavg()[0]:.1f})", flush=True)
        results = [PgResult(c.name, rows, min(c.times), rows / min(c.times), max(c.rss_mb), min(c.cpu), c.times,
                            min(c.machine_cpu)) for c in cases]
        self.drop_size(rows)
        return results

    def startup(self, env: dict[str, str], repeat: int) -> dict[str, float]:
        """Best wall time of ``conduit --version`` and of every case on a tiny file: the fixed cost in every figure."""
        best: dict[str, float] = {}
        for _ in range(max(repeat, 3)):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "conduit_core", "--version"], env=env, capture_output=True,
                           check=True)
            best["conduit --version"] = min(best.get("conduit --version", 1e9), time.perf_counter() - started)
        for r in self.bench_size(FIXED_ROWS, max(repeat, 3), env, quiet=True):
            best[f"{r.case} on {FIXED_ROWS:,} rows"] = r.best_s
        return best


def count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(16 * 1024 * 1024):
            lines += chunk.count(b"\n")
    return lines


def machine_cpu() -> float:
    """CPU seconds (user + nice + system + irq + softirq + steal) spent by the whole machine since boot."""
    with Path("/proc/stat").open() as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def ratios(results: list[PgResult]) -> list[dict[str, object]]:
    by = {(r.case, r.rows): r for r in results}
    sizes = sorted({r.rows for r in results})
    checks: list[dict[str, object]] = []
    for rows in sizes:
        for conduit, ref, target in (("conduit_to_pg", "psql_copy_in", load_target(rows)),
                                     ("conduit_refresh", "psql_copy_in", None),
                                     ("conduit_pg_to_pq", "psql_copy_out", None),
                                     ("conduit_pg_to_pq", "duckdb_pg_scan", EXPORT_TARGET)):
            value = by[(conduit, rows)].rows_per_s / by[(ref, rows)].rows_per_s
            checks.append({"check": f"{conduit} / {ref} rows/s", "rows": rows, "value": value,
                           "target": f">= {target}" if target else "(no target)",
                           "pass": value >= target if target else None})
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for case in ("conduit_to_pg", "conduit_refresh", "conduit_pg_to_pq", "psql_copy_in", "psql_copy_out",
                     "duckdb_pg_scan"):
            value = by[(case, large)].peak_rss_mb / by[(case, small)].peak_rss_mb
            is_conduit = case.startswith("conduit")
            checks.append({"check": f"{case} peak RSS {large:,} / {small:,} rows", "rows": large, "value": value,
                           "target": f"<= {RSS_GROWTH_TARGET}" if is_conduit else "(reference)",
                           "pass": value <= RSS_GROWTH_TARGET if is_conduit else None})
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000],
                        help="data set sizes (default: 1000000 5000000); two or more also check RSS growth")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best wall time is kept")
    parser.add_argument("--dsn", default=DEFAULT_DSN, help=f"the server to load (default: {DEFAULT_DSN})")
    parser.add_argument("--schema", default="bench", help="dedicated schema, dropped at start and end (default: bench)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/conduit-bench"),
                        help="cached CSVs, configs and outputs (default: /tmp/conduit-bench)")
    parser.add_argument("--json", type=Path, help="also save the results as JSON")
    args = parser.parse_args()
    if shutil.which("psql") is None:
        parser.error("psql is not on PATH")

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = child_env()
    version = code_version()
    bench = Bench(args.dsn, args.schema, workdir)
    settings = bench.settings()
    print(f"python {platform.python_version()}, PostgreSQL {settings['server_version']}, {os.cpu_count()} cpus, "
          f"workdir {workdir}", flush=True)
    print("server: " + ", ".join(f"{k} {v}" for k, v in settings.items() if k != "server_version"), flush=True)
    print(f"conduit at commit {version['commit'][:10]}, src/ sha256 {version['src_sha256']}", flush=True)
    bench.reset_schema()
    try:
        starts = bench.startup(env, args.repeat)
        results: list[PgResult] = []
        for rows in sorted(set(args.rows)):
            results.extend(bench.bench_size(rows, args.repeat, env))
    finally:
        bench.drop_schema()
        bench.con.close()
    checks = ratios(results)
    print_report(results, checks, starts)  # type: ignore[arg-type]
    print()
    print(f"{'case':<20} {'rows':>11} {'machine cpu s':>14}  (client + server, min over repeats)")
    for r in results:
        print(f"{r.case:<20} {r.rows:>11,} {r.machine_cpu_s:>14.2f}")
    # A child's ru_maxrss starts from its parent's peak RSS (Linux keeps the high-water mark across
    # fork and exec), so no case can report less than this: psql's own peak is far smaller.
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RSS floor: this benchmark process peaked at {floor:.0f} MB; no child can report less")
    after = code_version()["src_sha256"]
    if after != version["src_sha256"]:
        print(f"WARNING: src/ changed during the run ({version['src_sha256']} -> {after}); "
              "the figures may mix two versions of conduit")
    if args.json:
        save_json(args.json, version, after, {}, server=settings, repeat=args.repeat, startup_s=starts,
                  rss_floor_mb=floor, results=[asdict(r) for r in results], checks=checks)
    return 0 if all(c["pass"] is not False for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
