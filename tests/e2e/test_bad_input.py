"""Bad input gets one clear message, a documented exit code, no traceback and no partial output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.conftest import CliRunner

BASE = """\
sources: [{name: s, type: csv, path: in.csv}]
destinations:
  - {name: lake, type: parquet, path: out/data.parquet}
  - {name: db, type: duckdb, path: out/db.duckdb}
resources:
  - {name: to_lake, source: s, destination: lake}
  - {name: to_db, source: s, destination: db, table: t, mode: full_refresh}
"""


def _good_csv(path: Path, rows: int = 5000) -> None:
    path.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, rows + 1)), encoding="utf-8")


def _assert_clean_failure(result: object, code: int, *needles: str) -> str:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == code, (result.stdout, stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in stderr + result.stdout, (needle, stderr)  # type: ignore[attr-defined]
    return str(stderr)


def test_malformed_yaml_exits_2_with_line(tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path]) -> None:
    write_config("sources:\n  - name: s\n    type: csv\n   path: x\n")
    _assert_clean_failure(cli("run"), 2, "YAML syntax error", "ingest.yml:4")
    _assert_clean_failure(cli("validate"), 2, "YAML syntax error")


def test_unknown_connector_type_exits_2(tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path]) -> None:
    write_config(BASE.replace("type: parquet", "type: parqet"))
    _assert_clean_failure(cli("run"), 2, "unknown destination type 'parqet'", "did you mean 'parquet'",
                          "destinations[0].type")


def test_debug_shows_the_traceback(tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path]) -> None:
    write_config(BASE.replace("type: parquet", "type: parqet"))
    result = cli("run", "--debug")
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_missing_input_file_fails_the_run(tmp_path: Path, cli: CliRunner,
                                          write_config: Callable[[str], Path]) -> None:
    write_config(BASE)
    result = cli("run", "--no-progress")
    # Preflight finds it before anything runs: exit 6, every problem listed, the run recorded as failed.
    _assert_clean_failure(result, 6, "in.csv does not exist", "preflight found 2 problem(s)", "to_lake", "to_db")
    assert not (tmp_path / "out" / "data.parquet").exists()
    failed = json.loads(cli("manifest", "--status", "failed", "--json").stdout)
    assert len(failed) == 1
    assert failed[0]["resources"] == []
    manifest = json.loads((tmp_path / ".conduit" / "runs" / failed[0]["run_id"] / "manifest.json").read_text())
    assert manifest["preflight"]["ok"] is False
    assert {c["check"] for c in manifest["preflight"]["checks"] if not c["ok"]} == {"source"}
    # Without preflight each resource fails on its own (exit 1).
    skipped = cli("run", "--no-progress", "--skip-preflight")
    _assert_clean_failure(skipped, 1, "in.csv does not exist")


def test_ragged_row_names_file_and_line_and_leaves_no_output(tmp_path: Path, cli: CliRunner,
                                                             write_config: Callable[[str], Path]) -> None:
    _good_csv(tmp_path / "in.csv")
    write_config(BASE)
    assert cli("run", "--no-progress").returncode == 0  # an earlier good load
    before = duckdb.connect(str(tmp_path / "out/db.duckdb")).execute("SELECT count(*) FROM t").fetchone()
    lines = (tmp_path / "in.csv").read_text().splitlines()
    lines.insert(4000, '4000,"quoted\nnewline"')  # a multi-line record before the bad one
    lines.insert(4500, "4499,too,many")
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "out" / "data.parquet").unlink()

    result = cli("run", "--no-progress", "--batch-size", "500")
    stderr = _assert_clean_failure(result, 6)  # preflight reads the first block, which holds the bad row
    # 4500 lines precede it, one record spans two lines: the bad record starts on line 4502, data row 4500.
    assert f"{tmp_path / 'in.csv'}:4502" in result.stdout + stderr
    assert "row has 3 fields, expected 2" in result.stdout + stderr
    assert not (tmp_path / "out" / "data.parquet").exists()
    assert not list((tmp_path / "out").glob(".*.tmp"))
    after = duckdb.connect(str(tmp_path / "out/db.duckdb")).execute("SELECT count(*) FROM t").fetchone()
    assert after == before == (5000,)


def test_wrong_encoding_is_reported_with_a_fix(tmp_path: Path, cli: CliRunner,
                                               write_config: Callable[[str], Path]) -> None:
    (tmp_path / "in.csv").write_bytes("id,city\n1,Málaga\n".encode("latin-1"))
    write_config(BASE.replace("path: in.csv}", "path: in.csv, encoding: utf-8}"))
    result = cli("run", "to_lake", "--no-progress")
    _assert_clean_failure(result, 6, "encoding")
    assert not (tmp_path / "out" / "data.parquet").exists()


def test_type_conflict_after_inference_names_row_and_column(tmp_path: Path, cli: CliRunner,
                                                            write_config: Callable[[str], Path]) -> None:
    rows = [f"{i},{i}" for i in range(1, 200_001)] + ["200001,oops"]
    (tmp_path / "in.csv").write_text("id,score\n" + "\n".join(rows) + "\n", encoding="utf-8")
    write_config(BASE)
    result = cli("run", "to_lake", "--no-progress", "--batch-size", "10000")
    _assert_clean_failure(result, 1, "'oops'", "column 'score'", "row 200001", "column_types")
    assert not (tmp_path / "out" / "data.parquet").exists()


def test_unknown_resource_name_is_a_config_error(tmp_path: Path, cli: CliRunner,
                                                 write_config: Callable[[str], Path]) -> None:
    _good_csv(tmp_path / "in.csv")
    write_config(BASE)
    _assert_clean_failure(cli("run", "to_lak"), 2, "unknown resource", "did you mean 'to_lake'")


def test_append_to_csv_with_a_different_header_is_refused(tmp_path: Path, cli: CliRunner,
                                                          write_config: Callable[[str], Path]) -> None:
    _good_csv(tmp_path / "in.csv", 10)
    (tmp_path / "out.csv").write_text("other,header\n1,2\n")
    write_config("""\
    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: f, type: csv, path: out.csv}]
    resources: [{name: r, source: s, destination: f, mode: append}]
    """)
    # The default (manual) stops at the drift; auto would still refuse to append another header.
    _assert_clean_failure(cli("run", "--no-progress"), 6, "drifted", "schema_evolution.mode is manual")
    assert (tmp_path / "out.csv").read_text() == "other,header\n1,2\n"
    write_config("""    sources: [{name: s, type: csv, path: in.csv}]
    destinations: [{name: f, type: csv, path: out.csv}]
    resources:
      - {name: r, source: s, destination: f, mode: append,
         schema_evolution: {mode: auto, on_column_removed: ignore}}
    """)
    _assert_clean_failure(cli("run", "--no-progress"), 1, "cannot append")
    assert (tmp_path / "out.csv").read_text() == "other,header\n1,2\n"


def test_dry_run_writes_nothing(tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path]) -> None:
    _good_csv(tmp_path / "in.csv")
    write_config(BASE)
    result = cli("run", "--dry-run", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "nothing was written" in result.stdout
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / ".conduit" / "runs").exists()


@pytest.mark.parametrize("status", ["success", "failed"])
def test_manifest_status_filter(tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path],
                                status: str) -> None:
    _good_csv(tmp_path / "in.csv", 10)
    write_config(BASE)
    assert cli("run", "--no-progress").returncode == 0
    (tmp_path / "in.csv").unlink()
    assert cli("run", "--no-progress").returncode == 6
    runs = json.loads(cli("manifest", "--status", status, "--json").stdout)
    assert [r["status"] for r in runs] == [status]
    table = cli("manifest", "--status", status)
    assert table.returncode == 0
    assert runs[0]["run_id"][:12] in table.stdout
    _assert_clean_failure(cli("manifest", "--status", "bogus"), 2, "--status must be one of")


def test_validate_and_connectors_and_version(tmp_path: Path, cli: CliRunner,
                                             write_config: Callable[[str], Path]) -> None:
    write_config(BASE)
    assert "is valid" in cli("validate").stdout
    listing = cli("connectors")
    assert listing.returncode == 0
    assert "parquet" in listing.stdout
    assert cli("--version").stdout.startswith("conduit ")


def test_an_undecodable_byte_is_located_by_line_row_and_column(tmp_path: Path, cli: CliRunner,
                                                                write_config: Callable[[str], Path]) -> None:
    rows = [f"{i},name{i}".encode() for i in range(1, 100_001)]
    rows[49_999] = b"50000,bad\xff\xfe here"
    (tmp_path / "in.csv").write_bytes(b"id,name\n" + b"\n".join(rows) + b"\n")
    write_config(BASE.replace("path: in.csv}", "path: in.csv, encoding: utf-8}"))
    for extra in ([], ["--batch-size", "10"], ["--skip-preflight"]):
        result = cli("run", "to_lake", "--no-progress", *extra)
        _assert_clean_failure(result, 1 if extra == ["--skip-preflight"] else 6,
                              "in.csv:50001, row 50000, column 'name': values are not valid utf-8 text",
                              "set `encoding:`")
    assert not (tmp_path / "out" / "data.parquet").exists()


def test_a_record_larger_than_a_block_names_the_option_that_fixes_it(tmp_path: Path, cli: CliRunner,
                                                                     write_config: Callable[[str], Path]) -> None:
    """The same message whatever --batch-size says; `block_size:` (now an option) makes the load work."""
    (tmp_path / "in.csv").write_text('id,text\n1,short\n2,"' + "x" * 5_000_000 + '"\n3,end\n', encoding="utf-8")
    write_config(BASE)
    for extra in ([], ["--batch-size", "10"]):  # past the first batch preflight reads: the load fails (exit 1)
        _assert_clean_failure(cli("run", "to_lake", "--no-progress", *extra), 1,
                              "in.csv:3, row 2: a record of about 5,000,003 bytes does not fit the 2,097,152-byte "
                              "blocks the file is parsed in", "set `block_size: 20971520` (or more) on the source")
    write_config(BASE.replace("path: in.csv}", "path: in.csv, block_size: 20971520}"))
    loaded = cli("run", "to_lake", "--no-progress")
    assert loaded.returncode == 0, loaded.stderr
    import pyarrow.parquet as pq

    texts = pq.read_table(tmp_path / "out" / "data.parquet").column("text").to_pylist()
    assert [len(t) for t in texts] == [5, 5_000_000, 3]
