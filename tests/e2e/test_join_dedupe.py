"""join and dedupe steps through `conduit run`, read back in full from DuckDB and PostgreSQL: lookups with
unmatched rows in each policy, duplicates across batches with each winner rule, and a SIGKILL + `--resume`
through both."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import CliRunner
from tests.e2e.test_crash_resume import _committed, _conduit
from tests.e2e.test_interrupted_runs import _wait

ORDERS = 12_000
CUSTOMERS = 900  # order i belongs to customer i % 1000: customers 900..999 are not in the lookup


def _orders(path: Path, rows: int = ORDERS) -> None:
    lines = ["order_id,cust,amount"]
    lines += [f"{i},{i % 1000:04d},{i}.{i % 100:02d}" for i in range(1, rows + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _customers(path: Path) -> None:
    # Codes keep their leading zeros (text on both sides); limit is exact to the cent.
    lines = ["code,name,segment,limit"]
    lines += [f"{c:04d},cust {c},{'gold' if c % 3 == 0 else 'std'},{c * 10}.05" for c in range(CUSTOMERS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _destination(kind: str, request: pytest.FixtureRequest) -> tuple[str, Callable[[str], list[tuple[Any, ...]]]]:
    if kind == "duckdb":
        def read(sql: str) -> list[tuple[Any, ...]]:
            with duckdb.connect(str(request.getfixturevalue("tmp_path") / "out.duckdb"), read_only=True) as con:
                return con.sql(sql).fetchall()
        return "{name: d, type: duckdb, path: out.duckdb}", read
    pg, dsn = request.getfixturevalue("pg"), request.getfixturevalue("postgres_dsn")
    return (f'{{name: d, type: postgresql, dsn: "{dsn}", schema: {pg.schema}}}',
            lambda sql: [tuple(r) for r in pg.execute(sql).fetchall()])


def _run(cli: CliRunner, *args: str) -> dict[str, Any]:
    result = cli("run", "--no-progress", "--json", "--batch-size", "1000", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(result.stdout)["resources"][0])


def _dlq(tmp_path: Path, resource: str) -> list[dict[str, Any]]:
    return [json.loads(line) for path in (tmp_path / ".conduit" / "errors" / resource).glob("*.jsonl")
            for line in path.read_text().splitlines()]


def _join_config(write_config: Callable[[str], Path], destination: str, join: str) -> None:
    write_config(f"""\
    sources:
      - {{name: orders_csv, type: csv, path: orders.csv}}
      - {{name: customers, type: csv, path: customers.csv}}
    destinations: [{destination}]
    resources:
      - name: orders
        source: orders_csv
        destination: d
        transforms:
          - join: {join}
    """)


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
@pytest.mark.parametrize("policy", ["keep", "drop", "dlq", "inner"])
def test_join_adds_lookup_columns_and_treats_unmatched_rows_by_policy(
        tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path], kind: str, policy: str,
        request: pytest.FixtureRequest) -> None:
    _orders(tmp_path / "orders.csv")
    _customers(tmp_path / "customers.csv")
    destination, read = _destination(kind, request)
    how = "how: inner" if policy == "inner" else f"unmatched: {policy}"
    _join_config(write_config, destination, f"{{with: customers, on: {{cust: code}}, columns: [name, segment, limit], "
                                            f"{how}}}")
    report = _run(cli)
    unmatched = [i for i in range(1, ORDERS + 1) if i % 1000 >= CUSTOMERS]
    step = next(s for s in report["steps"] if s["step"] == "join #1")
    assert step["rows_unmatched"] == len(unmatched)
    kept = policy == "keep"
    assert report["rows_written"] == ORDERS - (0 if kept else len(unmatched))
    assert report["rows_filtered"] == (len(unmatched) if policy in ("drop", "inner") else 0)
    assert report["rows_dlq"] == (len(unmatched) if policy == "dlq" else 0)
    actual = read("SELECT order_id, cust, amount, name, segment, \"limit\" FROM orders ORDER BY order_id")
    expected = []
    for i in range(1, ORDERS + 1):
        c = i % 1000
        if c < CUSTOMERS:
            expected.append((i, f"{c:04d}", float(f"{i}.{i % 100:02d}"), f"cust {c}", "gold" if c % 3 == 0 else "std",
                             float(f"{c * 10}.05")))
        elif kept:
            expected.append((i, f"{c:04d}", float(f"{i}.{i % 100:02d}"), None, None, None))
    assert actual == expected
    rejected = _dlq(tmp_path, "orders")
    if policy == "dlq":
        assert sorted(e["row"] for e in rejected) == unmatched
        assert {e["check"] for e in rejected} == {"join #1: no match in customers"}
        assert rejected[0]["value"] == f"{unmatched[0] % 1000:04d}"
    else:
        assert rejected == []


def test_join_names_taken_columns_suffix_or_fail(tmp_path: Path, cli: CliRunner,
                                                 write_config: Callable[[str], Path]) -> None:
    _orders(tmp_path / "orders.csv", 50)
    _customers(tmp_path / "customers.csv")
    (tmp_path / "customers.csv").write_text((tmp_path / "customers.csv").read_text().replace("code,name,segment,limit",
                                                                                             "cust,name,amount,limit"))
    _join_config(write_config, "{name: d, type: duckdb, path: out.duckdb}", "{with: customers, on: [cust]}")
    failed = cli("run", "--no-progress")
    assert failed.returncode == 6, failed.stdout + failed.stderr
    assert "column 'amount' of lookup 'customers' is already in the data" in failed.stderr
    assert "suffix" in failed.stderr
    assert not (tmp_path / "out.duckdb").exists()

    _join_config(write_config, "{name: d, type: duckdb, path: out.duckdb}", "{with: customers, on: [cust], suffix: _c}")
    report = _run(cli)
    assert report["rows_written"] == 50
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        assert con.sql("SELECT amount, amount_c, name FROM orders WHERE order_id = 7").fetchall() == [
            (7.07, "std", "cust 7")]


def test_join_refuses_a_lookup_with_duplicate_keys_and_keys_of_other_types(
        tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path]) -> None:
    _orders(tmp_path / "orders.csv", 50)
    (tmp_path / "customers.csv").write_text("code,name\n0007,a\n0008,b\n0007,c\n", encoding="utf-8")
    _join_config(write_config, "{name: d, type: duckdb, path: out.duckdb}", "{with: customers, on: {cust: code}}")
    failed = cli("run", "--no-progress")
    assert failed.returncode != 0
    assert "lookup 'customers' has 2 rows where code = '0007'" in failed.stderr, failed.stderr
    assert not (tmp_path / "out.duckdb").exists()

    (tmp_path / "customers.csv").write_text("code,name\n7,a\n8,b\n", encoding="utf-8")
    failed = cli("run", "--no-progress")
    assert failed.returncode != 0
    assert "key 'cust' is string here but 'code' is int64 in lookup 'customers'" in failed.stderr, failed.stderr


def test_join_with_an_unknown_source_is_a_config_error_at_its_yaml_path(
        tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path]) -> None:
    _orders(tmp_path / "orders.csv", 5)
    _join_config(write_config, "{name: d, type: duckdb, path: out.duckdb}", "{with: custmers, on: [cust]}")
    (tmp_path / "customers.csv").write_text("cust,name\n1,a\n", encoding="utf-8")
    result = cli("validate", "--offline")
    assert result.returncode != 0
    assert "join with unknown source 'custmers' (did you mean 'customers'?)" in result.stderr, result.stderr
    assert "resources[0].transforms[0].join.with" in result.stderr


def _dupes(path: Path, rows: int) -> dict[int, list[tuple[int, str, str | None, str | None]]]:
    """Rows of 500 keys, each repeated across the file (so across batches); {key: [(row, updated, a, b)]}."""
    lines = ["id,updated,a,b"]
    by_key: dict[int, list[tuple[int, str, str | None, str | None]]] = {}
    for i in range(1, rows + 1):
        key = (i * 7919) % 500
        updated = f"2024-01-{1 + (i * 31) % 28:02d}"
        a = None if i % 3 == 0 else f"a{i}"
        b = None if i % 5 == 0 else f"b{i}"
        lines.append(f"{key},{updated},{a or ''},{b or ''}")
        by_key.setdefault(key, []).append((i, updated, a, b))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return by_key


def _winner(rows: list[tuple[int, str, str | None, str | None]], keep: str, order_by: str | None) -> tuple[Any, ...]:
    if keep == "first" and order_by is None:
        return rows[0]
    if keep == "first":
        return min(rows, key=lambda r: (r[1], r[0]))
    if keep == "non_null":
        return max(rows, key=lambda r: (sum(v is not None for v in r[2:]), r[0]))
    if order_by is None:
        return rows[-1]
    return max(rows, key=lambda r: (r[1], r[0]))


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
@pytest.mark.parametrize(("keep", "order_by"), [("first", None), ("first", "updated"), ("last", None),
                                                ("latest", "updated"), ("non_null", None)])
def test_dedupe_keeps_one_row_per_key_across_batches(tmp_path: Path, cli: CliRunner,
                                                     write_config: Callable[[str], Path], kind: str, keep: str,
                                                     order_by: str | None, request: pytest.FixtureRequest) -> None:
    rows = 6_000
    by_key = _dupes(tmp_path / "in.csv", rows)
    destination, read = _destination(kind, request)
    order = f", order_by: {order_by}" if order_by else ""
    write_config(f"""\
    sources: [{{name: s, type: csv, path: in.csv, column_types: {{a: string, b: string, updated: string}}}}]
    destinations: [{destination}]
    resources:
      - name: events
        source: s
        destination: d
        transforms: [{{dedupe: {{keys: [id], keep: {keep}{order}}}}}]
    """)
    report = _run(cli)
    assert (report["rows_read"], report["rows_written"], report["rows_filtered"]) == (rows, 500, rows - 500)
    step = next(s for s in report["steps"] if s["step"] == "dedupe #1")
    assert (step["rows_in"], step["rows_out"], step["rows_filtered"]) == (rows, 500, rows - 500)
    assert len(step["examples"]) == 10
    assert all(e["file"].endswith("in.csv") and 1 <= e["row"] <= rows for e in step["examples"])
    expected = sorted((key, *_winner(found, keep, order_by)[1:]) for key, found in by_key.items())
    actual = read("SELECT id, updated, a, b FROM events ORDER BY id")
    assert actual == expected
    assert not any((tmp_path / ".conduit" / "work").rglob("*.duckdb")), "a completed load keeps no dedupe state"
    shown = cli("manifest", "--json", "--last", "1")  # the history has the steps too, not only manifest.json
    listed = json.loads(shown.stdout)[0]["resources"][0]["steps"]
    assert [s["step"] for s in listed] == ["coerce", "dedupe #1", "evolve"]
    assert listed[1]["rows_filtered"] == rows - 500


@pytest.mark.parametrize("steps", ["[{dedupe: {keys: [id], keep: last}}]",
                                   # a second held step gets released rows: they keep their own file and row
                                   "[{dedupe: {keys: [id], keep: last}}, {dedupe: {keys: [id], keep: latest, "
                                   "order_by: updated}}]"])
def test_rows_a_dedupe_held_keep_their_file_and_row_in_the_dead_letter_queue(
        tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path], steps: str) -> None:
    by_key = _dupes(tmp_path / "in.csv", 3_000)
    write_config(f"""\
    sources: [{{name: s, type: csv, path: in.csv, column_types: {{a: string, b: string, updated: string}}}}]
    destinations: [{{name: d, type: duckdb, path: out.duckdb}}]
    resources:
      - name: events
        source: s
        destination: d
        transforms: {steps}
        quality_checks: [{{check: not_null, column: a, action: dlq}}]
    """)
    report = _run(cli)
    winners = {key: found[-1] for key, found in by_key.items()}
    nulls = sorted(w[0] + 1 for w in winners.values() if w[2] is None)  # line = row + 1 (the header)
    assert report["rows_dlq"] == len(nulls) > 0
    assert report["rows_written"] == 500 - len(nulls)
    rejected = _dlq(tmp_path, "events")
    assert sorted(e["row"] for e in rejected) == [n - 1 for n in nulls]
    assert all(e["source_file"].endswith("in.csv") for e in rejected)
    sample = next(e for e in rejected if e["row"] == nulls[0] - 1)
    assert sample["record"]["a"] is None
    assert str(sample["record"]["id"]) == str(next(k for k, w in winners.items() if w[0] == nulls[0] - 1))


def test_dedupe_and_join_survive_sigkill_and_resume(tmp_path: Path, cli: CliRunner,
                                                    write_config: Callable[[str], Path]) -> None:
    """Killed after a checkpoint, resumed: every key once, its first row, with the lookup's columns; the keys
    the killed run saw after its checkpoint do not hide their rows from the resumed run."""
    rows = 60_000
    lines = ["id,cust,seq"] + [f"{(i * 7919) % 20_000},{i % 1000:04d},{i}" for i in range(1, rows + 1)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _customers(tmp_path / "customers.csv")
    write_config("""\
    sources:
      - {name: s, type: csv, path: in.csv}
      - {name: customers, type: csv, path: customers.csv}
    destinations: [{name: d, type: duckdb, path: out.duckdb}]
    resources:
      - name: events
        source: s
        destination: d
        checkpoint: {every_rows: 2000}
        transforms:
          - dedupe: {keys: [id]}
          - join: {with: customers, on: {cust: code}, columns: [name], unmatched: drop}
    """)
    state_db = tmp_path / ".conduit" / "state.db"
    proc = _conduit(tmp_path, "--batch-size", "500")
    _wait(lambda: (_committed(state_db, "events") or 0) > 3000, proc, "a few checkpoints")
    proc.kill()
    proc.communicate()
    assert proc.returncode == -9
    committed = _committed(state_db, "events") or 0
    assert 0 < committed < 20_000, "killed mid-load"
    assert any((tmp_path / ".conduit" / "work" / "events").glob("dedupe-1.duckdb"))
    report = _run(cli, "--resume")
    assert report["resumed_from"] is not None
    first: dict[int, int] = {}
    for i in range(1, rows + 1):
        first.setdefault((i * 7919) % 20_000, i)
    expected = sorted((key, i, f"cust {i % 1000}") for key, i in first.items() if i % 1000 < CUSTOMERS)
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        actual = con.sql("SELECT id, seq, name FROM events ORDER BY id").fetchall()
    assert actual == expected
    with sqlite3.connect(state_db) as con:
        state = json.loads(con.execute("SELECT state FROM resource_state WHERE resource = 'events'").fetchone()[0])
    assert state["status"] == "complete"
    assert state["rows_read"] == rows
    assert state["rows_committed"] + state["rows_filtered"] == rows


def test_a_held_dedupe_after_a_step_that_empties_the_first_batches(tmp_path: Path, cli: CliRunner,
                                                                   write_config: Callable[[str], Path]) -> None:
    """The rows a filter leaves out of the first batches never reach the dedupe: its table starts with the
    first rows that do."""
    by_key = _dupes(tmp_path / "in.csv", 5_000)
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv, column_types: {a: string, b: string, updated: string}}]
    destinations: [{name: d, type: duckdb, path: out.duckdb}]
    resources:
      - name: events
        source: s
        destination: d
        transforms:
          - filter: "CAST(substr(a, 2) AS INTEGER) > 1000"   # no row of the first batch (1,000 rows)
          - dedupe: {keys: [id], keep: last}
    """)
    report = _run(cli)
    rows = [(key, r) for key, found in by_key.items() for r in found if r[2] is not None and int(r[2][1:]) > 1000]
    winners: dict[int, tuple[int, str, str | None, str | None]] = {}
    for key, r in sorted(rows, key=lambda kr: kr[1][0]):
        winners[key] = r
    assert report["rows_written"] == len(winners)
    assert report["rows_read"] == 5_000
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as con:
        actual = con.sql("SELECT id, updated, a, b FROM events ORDER BY id").fetchall()
    assert actual == sorted((key, *r[1:]) for key, r in winners.items())
