from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conduit_core.connectors import registry
from conduit_core.connectors.base import BaseDestination, BaseSource, ReadRequest
from conduit_core.errors import ConfigError
from conduit_core.observe.redact import redact


def test_builtins_are_listed_without_errors() -> None:
    infos = registry.list_connectors()
    types = {(i.kind, i.type) for i in infos if i.origin == "built-in"}
    for name in ("csv", "json", "ndjson", "parquet", "duckdb", "sqlite"):
        assert ("source", name) in types
    for name in ("csv", "ndjson", "parquet", "duckdb", "sqlite"):
        assert ("destination", name) in types
    assert not [i for i in infos if i.origin == "built-in" and i.error]


def test_unknown_type_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'parquet'"):
        registry.source_class("parquett")


def test_connector_must_implement_one_side_of_the_contract() -> None:
    with pytest.raises(TypeError, match="must override read"):
        type("Nothing", (BaseSource,), {})
    with pytest.raises(TypeError, match="must override write"):
        type("Nowhere", (BaseDestination,), {})


def test_dict_contract_source_is_adapted_to_batches() -> None:
    class Ten(BaseSource):
        def read(self, query: str | None = None) -> Iterator[dict[str, Any]]:
            for i in range(self.config.get("count", 10)):
                yield {"i": i}

    batches = list(Ten({"count": 25}).read_batches(ReadRequest(batch_size=10)))
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert [b.first_row for b in batches] == [1, 11, 21]
    assert batches[-1].position is None  # a generic read() cannot resume part-way


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("could not connect to postgresql://app:s3cr3t@db:5432/x", "s3cr3t"),
        ("host=db password=s3cr3t user=app", "s3cr3t"),
        ("token='abc123' ok", "abc123"),
    ],
)
def test_redact_hides_secrets(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redact_hides_known_values() -> None:
    assert redact("auth failed for hunter2", ["hunter2"]) == "auth failed for ***"


def test_plugin_path_options_resolve_against_the_config_directory(tmp_path: Path) -> None:
    from conduit_core.connectors.base import PluginOptions

    options = PluginOptions.model_validate(
        {"path": "out.jsonl", "cache_dir": "c", "url": "s3://b/k", "abs_path": "/x", "name": "path-like"},
        context={"base_dir": tmp_path},
    )
    extra = options.model_extra or {}
    assert extra["path"] == str(tmp_path / "out.jsonl")
    assert extra["cache_dir"] == str(tmp_path / "c")
    assert (extra["url"], extra["abs_path"], extra["name"]) == ("s3://b/k", "/x", "path-like")
