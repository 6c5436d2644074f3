"""Which Python driver loads Arrow data into PostgreSQL fastest, and exactly? (Backs the connector's use of ADBC.)

The standard data set (see generate_data.py; ``--rows``, default 1M) is read
once from the cached CSV with pyarrow into memory, outside the timing, then
loaded into an identical, freshly created table by three drivers:

    adbc        ADBC PostgreSQL: cursor.adbc_ingest(table, arrow_table, mode="append")  (binary COPY)
    psycopg3    psycopg 3 binary COPY: cursor.copy("COPY t FROM STDIN (FORMAT BINARY)"),
                copy.set_types([...]) and copy.write_row() per row (Arrow -> Python rows inside the timing)
    psycopg2    psycopg2 copy_expert("COPY t FROM STDIN CSV") from an in-memory CSV buffer written by
                pyarrow (writing the CSV is inside the timing)

Every load runs in one transaction on a connection opened beforehand; the time
covers the driver's work and the COMMIT. The table is dropped and re-created,
and a CHECKPOINT runs, before every load (outside the timing). Drivers are
interleaved over ``--repeat`` rounds and the best wall time is kept; the
process's own CPU (client, all threads) and the whole machine's CPU (client +
server, from /proc/stat) are reported too. Every load is checked to hold
exactly N rows.

The table has the column types conduit creates for the standard CSV, except
``amount``, read as decimal128(12,2) (the generator's own type) into
numeric(12,2), so that decimals are part of the type-fidelity check. That
check reads rows back with psycopg 3 and compares them, value by value, with
the Arrow source: sampled rows of the big load (including NULL scores), and a
small table of edge cases loaded the same way (empty strings vs NULL, all-NULL
rows, decimal extremes, microsecond and pre-2000/pre-1970 timestamps, booleans
with NULL, int64 extremes, quotes, tabs, newlines, backslashes, "\\N", "NULL",
non-ASCII text).

    python benchmarks/bench_postgres_drivers.py                   # 1M rows, 3 repeats
    python benchmarks/bench_postgres_drivers.py --rows 200000 --repeat 1 --json drivers.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

import adbc_driver_postgresql
import psycopg
import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from adbc_driver_postgresql import dbapi as adbc_dbapi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_files import ensure_csv  # the benchmarks directory is on sys.path (above)
from bench_postgres import DEFAULT_DSN, STD_COLUMNS, Bench, machine_cpu

# The standard columns, with amount exact (see the module docstring).
COLUMNS = [(name, "numeric(12,2)" if name == "amount" else pg_type) for name, pg_type in STD_COLUMNS]
BINARY_TYPES = ["int8", "text", "text", "numeric", "bool", "date", "timestamp", "text", "int8", "text"]
SAMPLE_IDS = [1, 2, 3, 499_999]  # plus the last row and the first rows whose score is NULL


def read_source(csv: Path) -> pa.Table:
    options = pacsv.ConvertOptions(column_types={"amount": pa.decimal128(12, 2)})
    return pacsv.read_csv(csv, convert_options=options)


def edge_cases() -> pa.Table:
    """A few rows that trip loaders which go through text: NULL vs empty, extremes, escapes."""
    big, small = 2**63 - 1, -(2**63)
    rows = [
        (1, "", None, Decimal("0.01"), True, dt.date(1999, 12, 31), dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
         "", None, 'quote " and, comma'),
        (2, None, "", Decimal("-0.01"), False, dt.date(2000, 1, 1), dt.datetime(2000, 1, 1), None, 0,
         "tab\tnew\nline back\\slash"),
        (3, "zoë ☃ 𝄞", "a@b", Decimal("9999999999.99"), None, dt.date(1970, 1, 1),
         dt.datetime(1969, 12, 31, 23, 59, 59, 500000), "x", big, ""),
        (4, None, None, None, None, None, None, None, None, None),
        (5, "\\N", "NULL", Decimal("-9999999999.99"), True, dt.date(9999, 12, 31),
         dt.datetime(9999, 12, 31, 23, 59, 59, 999999), " ", small, "NULL"),
        (6, "  padded  ", "cr\r\nlf", Decimal("0.00"), False, dt.date(1, 1, 1), dt.datetime(1, 1, 1, 0, 0, 0, 1),
         '""', -1, "\\."),
    ]
    types = [pa.int64(), pa.string(), pa.string(), pa.decimal128(12, 2), pa.bool_(), pa.date32(),
             pa.timestamp("us"), pa.string(), pa.int64(), pa.string()]
    names = [name for name, _ in COLUMNS]
    return pa.table({n: pa.array([r[i] for r in rows], t) for i, (n, t) in enumerate(zip(names, types, strict=True))})


class Drivers:
    """One open connection per driver; ``load_<driver>(table name, arrow table)`` loads and commits."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.schema = schema
        self.adbc = adbc_dbapi.connect(dsn)
        self.pg3 = psycopg.connect(dsn)
        self.pg2 = psycopg2.connect(dsn)

    def close(self) -> None:
        for con in (self.adbc, self.pg3, self.pg2):
            con.close()

    def qualified(self, table: str) -> str:
        return f'"{self.schema}"."{table}"'

    def load_adbc(self, table: str, data: pa.Table) -> None:
        with self.adbc.cursor() as cur:
            cur.adbc_ingest(table, data, mode="append", db_schema_name=self.schema)
        self.adbc.commit()

    def load_psycopg3(self, table: str, data: pa.Table) -> None:
        with self.pg3.cursor() as cur, cur.copy(f"COPY {self.qualified(table)} FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(BINARY_TYPES)
            for batch in data.to_batches(max_chunksize=65_536):
                for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                    copy.write_row(row)
        self.pg3.commit()

    def load_psycopg2(self, table: str, data: pa.Table) -> None:
        buffer = io.BytesIO()
        pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False))
        buffer.seek(0)
        with self.pg2.cursor() as cur:
            cur.copy_expert(f"COPY {self.qualified(table)} FROM STDIN (FORMAT csv)", buffer)
        self.pg2.commit()

    def loaders(self) -> dict[str, Callable[[str, pa.Table], None]]:
        return {"adbc": self.load_adbc, "psycopg3": self.load_psycopg3, "psycopg2": self.load_psycopg2}


@dataclass
class DriverResult:
    driver: str
    rows: int
    times_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    machine_cpu_s: list[float] = field(default_factory=list)
    fidelity: list[str] = field(default_factory=list)  # mismatches; empty when every value came back equal

    @property
    def best_s(self) -> float:
        return min(self.times_s)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.best_s


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def compare(bench: Bench, table: str, source: pa.Table, ids: list[int], label: str) -> list[str]:
    """Rows ``ids`` of ``table`` read back with psycopg 3, compared value by value with ``source``."""
    by_id = {row["id"]: row for row in source.filter(pc.is_in(source["id"], pa.array(ids))).to_pylist()}
    got = bench.sql("SELECT * FROM {} WHERE id = ANY(%s) ORDER BY id", table, params=(ids,))
    names = source.column_names
    problems = []
    if len(got) != len(by_id):
        problems.append(f"{label}: {len(got)} rows read back, expected {len(by_id)}")
    for values in got:
        want = by_id.get(values[0], {})
        for name, value in zip(names, values, strict=True):
            expected = want.get(name)
            if value != expected or type(value) is not type(expected):
                problems.append(f"{label} id {values[0]} {name}: loaded {expected!r}, read back {value!r}")
    return problems


def fidelity(bench: Bench, drivers: Drivers, name: str, loaded: str, source: pa.Table) -> list[str]:
    """Sampled rows of the big load, then the edge cases loaded by the same driver."""
    nulls = source.filter(pc.is_null(source["score"])).slice(0, 3)["id"].to_pylist()
    problems = compare(bench, loaded, source, [*SAMPLE_IDS, source.num_rows, *nulls], "sample")
    edges = edge_cases()
    table = f"edge_{name}"
    bench.create_std(table, COLUMNS)
    drivers.loaders()[name](table, edges)
    problems += compare(bench, table, edges, edges["id"].to_pylist(), "edge")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="data set size (default: 1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="loads per driver; the best wall time is kept")
    parser.add_argument("--dsn", default=DEFAULT_DSN, help=f"the server to load (default: {DEFAULT_DSN})")
    parser.add_argument("--schema", default="bench_drivers",
                        help="dedicated schema, dropped at start and end (default: bench_drivers)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/conduit-bench"),
                        help="cached CSVs (default: /tmp/conduit-bench)")
    parser.add_argument("--json", type=Path, help="also save the results as JSON")
    args = parser.parse_args()

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    source = read_source(ensure_csv(workdir, args.rows))
    print(f"read {source.num_rows:,} rows ({source.nbytes / 2**20:.0f} MB in Arrow) in "
          f"{time.perf_counter() - started:.2f} s (not timed)", flush=True)
    bench = Bench(args.dsn, args.schema, workdir)
    versions = {"adbc_driver_postgresql": adbc_driver_postgresql.__version__, "psycopg": psycopg.__version__,
                "psycopg2": psycopg2.__version__.split()[0], "pyarrow": pa.__version__}
    print(f"python {platform.python_version()}, PostgreSQL {bench.settings()['server_version']}, "
          f"{os.cpu_count()} cpus, " + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    bench.reset_schema()
    drivers = Drivers(args.dsn, args.schema)
    results = {name: DriverResult(name, source.num_rows) for name in drivers.loaders()}
    try:
        for attempt in range(args.repeat):
            for name, load in drivers.loaders().items():  # interleaved, so drift hits every driver alike
                table = f"load_{name}"
                bench.create_std(table, COLUMNS)
                bench.checkpoint()
                cpu, machine, began = process_cpu(), machine_cpu(), time.perf_counter()
                load(table, source)
                wall = time.perf_counter() - began
                cpu, machine = process_cpu() - cpu, machine_cpu() - machine
                found = bench.sql("SELECT count(*) FROM {}", table)[0][0]
                if found != source.num_rows:
                    msg = f"{name}: expected {source.num_rows} rows in {table}, found {found}"
                    raise RuntimeError(msg)
                result = results[name]
                result.times_s.append(wall)
                result.cpu_s.append(cpu)
                result.machine_cpu_s.append(machine)
                print(f"  {name:<9} run {attempt + 1}/{args.repeat}: {wall:6.2f} s  {source.num_rows / wall:>10,.0f} "
                      f"rows/s  cpu {cpu:5.2f} s  machine cpu {machine:5.2f} s  (load {os.getloadavg()[0]:.1f})",
                      flush=True)
        for name, result in results.items():
            result.fidelity = fidelity(bench, drivers, name, f"load_{name}", source)
    finally:
        drivers.close()
        bench.drop_schema()
        bench.con.close()

    adbc = results["adbc"]
    print()
    print(f"{'driver':<9} {'best s':>7} {'rows/s':>10} {'cpu s':>6} {'machine cpu s':>14} {'s / adbc':>9}  fidelity")
    print("-" * 74)
    for r in results.values():
        print(f"{r.driver:<9} {r.best_s:>7.2f} {r.rows_per_s:>10,.0f} {min(r.cpu_s):>6.2f} "
              f"{min(r.machine_cpu_s):>14.2f} {r.best_s / adbc.best_s:>8.1f}x  "
              f"{'exact' if not r.fidelity else f'{len(r.fidelity)} mismatch(es)'}")
    for r in results.values():
        for problem in r.fidelity:
            print(f"  {r.driver}: {problem}")
    others = [r for r in results.values() if r is not adbc]
    fastest = max(results.values(), key=lambda r: r.rows_per_s)
    speedups = " and ".join(f"{r.best_s / adbc.best_s:.1f}x as fast as {r.driver}" for r in others)
    print()
    print(f"conclusion: ADBC loads {source.num_rows:,} rows at {adbc.rows_per_s:,.0f} rows/s ({speedups}) "
          f"{'with every value exact' if not adbc.fidelity else 'BUT with type mismatches'}; "
          f"{'it is the fastest driver' if fastest is adbc else f'{fastest.driver} is faster'}.")
    if args.json:
        payload = {
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_end": os.getloadavg(),
                        "python": platform.python_version()},
            "versions": versions,
            "repeat": args.repeat,
            "results": [{**asdict(r), "best_s": r.best_s, "rows_per_s": r.rows_per_s} for r in results.values()],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"saved {args.json}")
    return 0 if all(not r.fidelity for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
