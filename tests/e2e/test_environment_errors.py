"""A full disk or a read-only directory is the user's environment, not a bug: one plain message with the path
and the fix, exit 1, no traceback, and nothing half-written. The disks are real: small tmpfs mounts."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliRunner


def _mount(point: Path, *options: str) -> None:
    point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(point)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system."""
    point = tmp_path / "small"
    _mount(point, "size=1m")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "ro"
    _mount(point, "size=1m")
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _csv(path: Path, rows: int) -> None:
    path.write_text("id,text\n" + "".join(f"{i},some text for row {i}\n" for i in range(rows)), encoding="utf-8")


def _assert_environment(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    assert "bug in conduit" not in text
    assert "unexpected" not in text
    for needle in needles:
        assert needle in text, (needle, text)


@pytest.mark.parametrize("kind", ["parquet", "csv", "duckdb", "sqlite"])
def test_a_full_disk_is_reported_with_its_path(tmp_path: Path, cli: CliRunner, write_config: Callable[[str], Path],
                                               small_disk: Path, kind: str) -> None:
    _csv(tmp_path / "in.csv", 200_000)  # about 6 MB: five times the disk
    target = small_disk / f"out.{kind}"
    write_config(f"""\
    sources: [{{name: s, type: csv, path: in.csv}}]
    destinations: [{{name: d, type: {kind}, path: "{target}"}}]
    resources: [{{name: r, source: s, destination: d, table: t}}]
    """)
    result = cli("run", "--no-progress")
    _assert_environment(result, "no space left on the device", "free disk space")
    assert not target.exists() or kind in ("duckdb", "sqlite")  # a file destination publishes nothing
    assert not [p for p in small_disk.rglob("*") if p.is_file() and p.suffix in (".tmp", ".parquet", ".csv")]


def test_a_read_only_state_directory_is_reported(tmp_path: Path, cli: CliRunner,
                                                 write_config: Callable[[str], Path], read_only_dir: Path) -> None:
    _csv(tmp_path / "in.csv", 10)
    write_config(f"""\
    settings: {{state_dir: "{read_only_dir}"}}
    sources: [{{name: s, type: csv, path: in.csv}}]
    destinations: [{{name: d, type: parquet, path: out.parquet}}]
    resources: [{{name: r, source: s, destination: d}}]
    """)
    result = cli("run", "--no-progress")
    _assert_environment(result, "cannot write", str(read_only_dir), "read-only")
    assert not (tmp_path / "out.parquet").exists()


def test_a_read_only_output_directory_is_a_preflight_problem(tmp_path: Path, cli: CliRunner,
                                                             write_config: Callable[[str], Path],
                                                             read_only_dir: Path) -> None:
    _csv(tmp_path / "in.csv", 10)
    write_config(f"""\
    sources: [{{name: s, type: csv, path: in.csv}}]
    destinations: [{{name: d, type: parquet, path: "{read_only_dir / 'out.parquet'}"}}]
    resources: [{{name: r, source: s, destination: d}}]
    """)
    result = cli("run", "--no-progress")
    assert result.returncode == 6, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"directory {read_only_dir} is not writable" in result.stderr
