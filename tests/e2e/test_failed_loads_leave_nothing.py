"""A failed load leaves no trace in its target: no part directory beside a file, no empty table in MySQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliRunner


def _bad_csv(path: Path) -> None:
    # The type is fixed by the first block; the value far past it fails the load after rows were written.
    rows = [f"{i},{i}" for i in range(1, 300_001)] + ["300001,oops"]
    path.write_text("id,score\n" + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.mark.parametrize("kind", ["parquet", "csv", "ndjson"])
def test_a_failed_file_load_leaves_no_directory(tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path],
                                                kind: str) -> None:
    """Without checkpoints the load is one part: it used to leave `.out.parquet.conduit/state.json` behind."""
    _bad_csv(tmp_path / "in.csv")
    write_config(f"""\
    settings: {{checkpoint: {{every_seconds: null}}}}
    sources: [{{name: s, type: csv, path: in.csv}}]
    destinations: [{{name: d, type: {kind}, path: out.{kind}}}]
    resources: [{{name: r, source: s, destination: d}}]
    """)
    result = cli("run", "--no-progress")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "'oops' is not a number" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".conduit", "in.csv", "ingest.yml"]


def test_a_failed_first_mysql_load_leaves_no_table(tmp_path: Path, cli: CliRunner,
                                                   write_config: Callable[[str], Path], mysql: Any,
                                                   mysql_dsn: str) -> None:
    """MySQL commits CREATE TABLE at once; a first load that fails now drops the table it created."""
    _bad_csv(tmp_path / "in.csv")
    url = mysql_dsn.rsplit("/", 1)[0] + f"/{mysql.database}"
    write_config(f"""\
    settings: {{checkpoint: {{every_seconds: null}}}}
    sources: [{{name: s, type: csv, path: in.csv}}]
    destinations: [{{name: d, type: mysql, dsn: "{url}"}}]
    resources: [{{name: r, source: s, destination: d, table: scores}}, {{name: f, source: s, destination: d,
                 table: replaced, mode: full_refresh}}]
    """)
    result = cli("run", "--no-progress", "--skip-preflight")
    assert result.returncode == 1, result.stdout + result.stderr
    with mysql.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                    "AND table_name <> '_conduit_checkpoints'")
        assert cur.fetchall() == ()
