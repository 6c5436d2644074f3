"""Shared fixtures. The folder a test lives in is its marker (unit, integration, e2e)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.servers import server_dsn

_MARKERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for marker in _MARKERS:
            if marker in parts:
                item.add_marker(getattr(pytest.mark, marker))


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    """Run the real `conduit` CLI in a subprocess (cwd: tmp_path unless given)."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "conduit_core", *args],
            cwd=cwd or tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout, check=False,
        )

    return run


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write an ingest.yml (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "ingest.yml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write



def _pg_container() -> Any:
    from testcontainers.postgres import PostgresContainer

    return PostgresContainer("postgres:16-alpine")


def _mysql_container() -> Any:
    from testcontainers.mysql import MySqlContainer

    return MySqlContainer("mariadb:11")


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    yield from server_dsn("CONDUIT_TEST_POSTGRES_DSN", "PostgreSQL", _pg_container,
                          lambda c: c.get_connection_url().replace("+psycopg2", ""))


@pytest.fixture(scope="session")
def mysql_dsn() -> Iterator[str]:
    yield from server_dsn("CONDUIT_TEST_MYSQL_DSN", "MySQL/MariaDB", _mysql_container,
                          lambda c: c.get_connection_url().replace("+pymysql", ""))


@pytest.fixture
def pg(postgres_dsn: str) -> Iterator[Any]:
    """An autocommit psycopg connection whose search_path is a fresh schema (dropped after the test)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    con = psycopg.connect(postgres_dsn, autocommit=True)
    con.execute(f'CREATE SCHEMA "{schema}"')
    con.execute(f'SET search_path TO "{schema}"')
    con.schema = schema  # type: ignore[attr-defined]
    try:
        yield con
    finally:
        con.execute(f'DROP SCHEMA "{schema}" CASCADE')
        con.close()


def mysql_params(dsn: str) -> dict[str, Any]:
    parts = urlsplit(dsn)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306, "user": parts.username or "root",
            "password": parts.password or "", "database": parts.path.lstrip("/") or None}


@pytest.fixture
def mysql(mysql_dsn: str) -> Iterator[Any]:
    """A pymysql connection to a fresh database (dropped after the test); ``.database`` names it."""
    import pymysql

    params = mysql_params(mysql_dsn)
    database = f"t_{uuid.uuid4().hex[:12]}"
    admin = pymysql.connect(**{**params, "database": None}, autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    con = pymysql.connect(**{**params, "database": database}, autocommit=True, local_infile=True)
    con.database = database  # type: ignore[attr-defined]
    try:
        yield con
    finally:
        con.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE `{database}`")
        admin.close()
