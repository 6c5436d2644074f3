"""Where integration tests find real servers.

Order: the env DSN (``CONDUIT_TEST_POSTGRES_DSN``, ``CONDUIT_TEST_MYSQL_DSN``),
then a testcontainers container when a Docker engine answers, else skip with
the reason — or fail when ``CONDUIT_REQUIRE_INTEGRATION=1`` (set by CI).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import pytest


def _docker_available() -> bool:
    with suppress(Exception):
        import docker

        docker.from_env(timeout=3).ping()
        return True
    return False


def _unavailable(what: str, env: str) -> None:
    reason = f"{what} not available: set {env}, or run where a Docker engine can start testcontainers"
    if os.environ.get("CONDUIT_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"{reason} (CONDUIT_REQUIRE_INTEGRATION=1 makes this a failure)")
    pytest.skip(reason)


def server_dsn(env: str, what: str, container: Callable[[], Any], to_dsn: Callable[[Any], str]) -> Iterator[str]:
    dsn = os.environ.get(env)
    if dsn:
        yield dsn
        return
    if _docker_available():
        with suppress(ImportError), container() as started:
            yield to_dsn(started)
            return
    _unavailable(what, env)
