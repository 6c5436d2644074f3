from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conduit_core.config import load_config
from conduit_core.config.envsubst import substitute
from conduit_core.connectors.base import WriteMode
from conduit_core.errors import ConfigError

VALID = """\
sources:
  - name: src
    type: csv
    path: data/in.csv
    delimiter: ";"
destinations:
  - name: dst
    type: duckdb
    path: out/db.duckdb
resources:
  - name: users
    source: src
    destination: dst
    mode: merge
    primary_key: id
"""


def _error(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    return info.value


def test_valid_config_resolves_paths_and_defaults(write_config: Callable[[str], Path], tmp_path: Path) -> None:
    config = load_config(write_config(VALID), env={})
    resource = config.resource("users")
    assert resource.mode is WriteMode.MERGE
    assert resource.primary_key == ("id",)
    assert resource.target_table == "users"
    assert config.source("src").option("path") == tmp_path / "data/in.csv"
    assert config.source("src").option("delimiter") == ";"
    assert config.destination("dst").option("path") == tmp_path / "out/db.duckdb"
    assert config.settings.state_dir == tmp_path / ".conduit"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A:-fallback}", {}, "fallback"),
        ("${A:-}", {}, ""),
        ("pre-${A}-post", {"A": "mid"}, "pre-mid-post"),
        ("$HOME and $5 and $", {}, "$HOME and $5 and $"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("${A:-d} ${B}", {"B": "b"}, "d b"),
        ("${A:-d}", {"A": ""}, "d"),  # as in the shell, an empty value takes the default
        ("${A}", {"A": ""}, ""),
    ],
)
def test_substitution_touches_only_references(text: str, env: dict[str, str], expected: str) -> None:
    assert substitute(text, env) == (expected, [])


def test_unset_variable_names_variable_path_and_line(write_config: Callable[[str], Path]) -> None:
    path = write_config(VALID.replace("path: out/db.duckdb", "path: ${OUT_DIR}/db.duckdb"))
    error = _error(path)
    assert "OUT_DIR" in error.message
    assert "destinations[0].path" in error.message
    assert f"{path}:9" in error.message
    assert error.exit_code == 2


def test_dotenv_beside_the_file_is_used_and_environment_wins(write_config: Callable[[str], Path],
                                                             tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OUT_DIR=from_dotenv\nDELIM=|\n", encoding="utf-8")
    text = VALID.replace("path: out/db.duckdb", "path: ${OUT_DIR}/db.duckdb").replace('";"', '"${DELIM}"')
    config = load_config(write_config(text), env=None)
    assert config.destination("dst").option("path") == tmp_path / "from_dotenv/db.duckdb"
    assert config.source("src").option("delimiter") == "|"


def test_all_errors_reported_at_once_with_paths_lines_and_suggestions(
        write_config: Callable[[str], Path]) -> None:
    text = """\
    sources:
      - name: src
        type: csv
        path: in.csv
        delimter: ";"
      - name: other
        type: csvv
    destinations:
      - name: dst
        type: duckdb
        path: db.duckdb
    resources:
      - name: users
        source: srcc
        destination: dst
        mode: upsert
      - name: orders
        source: src
        destination: dst
        mode: merge
        primry_key: [id]
    extra_top: 1
    """
    error = _error(write_config(text))
    text_out = error.message
    assert len(error.issues) == 7, text_out
    assert "unknown key 'delimter' (did you mean 'delimiter'?)" in text_out
    assert "sources[0].delimter" in text_out
    assert "unknown source type 'csvv'; did you mean 'csv'?" in text_out
    assert "unknown source 'srcc' (did you mean 'src'?)" in text_out
    assert "resources[0].mode" in text_out
    assert "unknown key 'primry_key' (did you mean 'primary_key'?)" in text_out
    assert "unknown top-level key 'extra_top'" in text_out
    lines = {issue.path: issue.line for issue in error.issues}
    assert lines["sources[0].delimter"] == 5
    assert lines["resources[0].source"] == 14
    assert lines["resources[0].mode"] == 16


def test_merge_without_primary_key_is_an_error(write_config: Callable[[str], Path]) -> None:
    error = _error(write_config(VALID.replace("    primary_key: id\n", "")))
    assert "mode 'merge' needs primary_key" in error.message


def test_merge_into_a_file_destination_is_an_error(write_config: Callable[[str], Path]) -> None:
    error = _error(write_config(VALID.replace("type: duckdb", "type: parquet")))
    assert "does not support mode 'merge'" in error.message


def test_yaml_syntax_error_has_line_and_column(write_config: Callable[[str], Path]) -> None:
    path = write_config("sources:\n  - name: a\n    type: [csv\nresources: []\n")
    error = _error(path)
    assert "YAML syntax error" in error.message
    assert f"{path}:4" in error.message


def test_duplicate_keys_are_rejected(write_config: Callable[[str], Path]) -> None:
    error = _error(write_config(VALID + "resources: []\n"))
    assert "duplicate key 'resources'" in error.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    error = _error(tmp_path / "nope.yml")
    assert "not found" in error.message
    assert error.hint is not None


def test_secret_values_are_not_echoed(write_config: Callable[[str], Path]) -> None:
    """A wrongly typed secret-looking option must not appear in the error text."""
    text = VALID.replace('    delimiter: ";"\n', "    password: [hunter2-secret]\n")
    error = _error(write_config(text))
    assert "password" in error.message
    assert "hunter2" not in error.message


def test_invalid_names_and_empty_resources(write_config: Callable[[str], Path]) -> None:
    text = "sources: []\ndestinations: []\nresources: []\n"
    assert "resources must be a non-empty list" in _error(write_config(text)).message


def test_invalid_connector_name_is_a_located_config_error(write_config: Callable[[str], Path]) -> None:
    error = _error(write_config(VALID.replace("- name: src", '- name: "my source"')))
    assert "sources[0].name" in error.message
    assert "String should match pattern" in error.message


def test_alias_is_suggested_not_the_python_field_name(write_config: Callable[[str], Path]) -> None:
    error = _error(write_config(VALID.replace("path: out/db.duckdb", "path: out/db.duckdb\n    shema: x")))
    assert "did you mean 'schema'?" in error.message


def test_yaml_alias_bomb_is_refused_before_it_expands(write_config: Callable[[str], Path]) -> None:
    """A 'billion laughs' document (9 levels of 9 aliases: 387 million values) is refused at the limit,
    naming the key that expands, instead of exhausting memory."""
    levels = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    error = _error(write_config("\n".join([*levels, VALID])))
    assert "expands to more than 100,000 values" in error.message
    assert "anchors and aliases" in error.message
    assert error.issues[0].line == 6  # f: the first key whose expansion crosses the limit
    assert error.issues[0].path == "f"


def test_a_few_aliases_still_work(write_config: Callable[[str], Path]) -> None:
    text = "settings: {checkpoint: &every {every_rows: 10}}\n" + VALID.replace(
        "    primary_key: id\n", "    primary_key: id\n    checkpoint: *every\n")
    config = load_config(write_config(text), env={})
    assert config.resource("users").checkpoint == config.settings.checkpoint
    assert config.settings.checkpoint.every_rows == 10
