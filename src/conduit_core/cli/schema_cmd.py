"""`conduit schema infer|show|history` and `conduit schema-compare`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from conduit_core.cli.output import out, print_json
from conduit_core.config.loader import load_config
from conduit_core.engine.runner import RunOptions, build_destination, select_resources, write_target
from conduit_core.engine.sample import sample
from conduit_core.errors import EXIT_BREAKING_DRIFT, EXIT_DRIFT, EXIT_OK, ConfigError
from conduit_core.schema.diff import SchemaDiff, diff
from conduit_core.schema.model import TableSchema
from conduit_core.schema.types import type_name
from conduit_core.state import open_store


def infer_command(file: Path, resource: str, *, rows: int, fmt: str) -> None:
    config = load_config(file)
    (selected,) = select_resources(config, [resource])
    schema, table = sample(config, selected, rows)
    columns: dict[str, Any] = {}
    for field in schema:
        nulls = table.column(field.name).null_count if table.num_rows else 0
        columns[field.name] = {"type": type_name(field.type), "nulls_in_sample": nulls}
    if fmt == "json":
        print_json({"resource": resource, "rows_sampled": table.num_rows,
                    "schema": {n: {"type": c["type"], "nullable": True} for n, c in columns.items()},
                    "nulls_in_sample": {n: c["nulls_in_sample"] for n, c in columns.items()}})
        return
    lines = [f"# inferred from {table.num_rows:,} sampled rows of {resource}; paste under the resource",
             "schema:"]
    for name, column in columns.items():
        key = json.dumps(name) if not name.replace("_", "").isalnum() else name
        note = "  # no NULLs in the sample" if column["nulls_in_sample"] == 0 and table.num_rows else ""
        lines.append(f"  {key}: {column['type']}{note}")
    out.print("\n".join(lines), markup=False, highlight=False)


def _versions(file: Path, resource: str) -> list[dict[str, Any]]:
    config = load_config(file)
    select_resources(config, [resource])
    return open_store(config).schema_versions(resource)


def show_command(file: Path, resource: str, *, version: int | None, json_output: bool) -> None:
    versions = _versions(file, resource)
    if not versions:
        out.print(f"No schema recorded for {resource!r} yet: it is recorded by each successful load.")
        return
    chosen = versions[-1] if version is None else next((v for v in versions if v["version"] == version), None)
    if chosen is None:
        msg = f"{resource!r} has no schema version {version}; versions: {[v['version'] for v in versions]}"
        raise ConfigError(msg)
    if json_output:
        print_json(chosen)
        return
    table = Table(title=f"{resource}: schema version {chosen['version']} (run {str(chosen['run_id'])[:12]}, "
                        f"{chosen['created_at'][:19]}, {chosen['fingerprint']})")
    for name in ("column", "type", "nullable"):
        table.add_column(name)
    for column in chosen["schema"]["columns"]:
        table.add_row(escape(column["name"]), column["type"], "yes" if column["nullable"] else "no")
    out.print(table)


def history_command(file: Path, resource: str, *, json_output: bool) -> None:
    versions = _versions(file, resource)
    if json_output:
        print_json(versions)
        return
    if not versions:
        out.print(f"No schema recorded for {resource!r} yet.")
        return
    table = Table(title=f"{resource}: schema history")
    for name in ("version", "created", "run", "columns", "changes from the previous version"):
        table.add_column(name, overflow="fold")
    for v in versions:
        changes = v["diff"]["changes"] if v["diff"] else []
        summary = "; ".join(f"{c['column']} {c['kind'].replace('_', ' ')}"
                            + (f" {c['old']} -> {c['new']}" if c["old"] and c["new"] else "") for c in changes)
        table.add_row(str(v["version"]), v["created_at"][:19], str(v["run_id"])[:12],
                      str(len(v["schema"]["columns"])), escape(summary or ("first version" if v["version"] == 1
                                                                           else "-")))
    out.print(table)


def compare_command(file: Path, resource: str, *, against: str, rows: int, json_output: bool) -> int:
    """Print the drift; return the exit code (0 none, 3 compatible only, 4 breaking)."""
    config = load_config(file)
    (selected,) = select_resources(config, [resource])
    incoming, _ = sample(config, selected, rows, written=True)  # the target holds the rows after the steps
    arriving = TableSchema.from_arrow(incoming)
    baseline, label = _baseline(config, selected, against)
    if baseline is None:
        result: dict[str, Any] = {"resource": resource, "against": label, "baseline": None, "drift": False,
                                  "breaking": False, "changes": []}
        if json_output:
            print_json(result)
        else:
            out.print(f"{resource}: nothing to compare against ({label} does not exist yet).")
        return EXIT_OK
    if against == "destination":
        declared = frozenset(f.name for f in incoming if (f.metadata or {}).get(b"conduit.declared"))
        keys = frozenset(selected.primary_key) if selected.mode.value == "merge" else frozenset()
        drift = diff(baseline, arriving, nullability_for=declared, exempt=keys)
    else:
        drift = diff(baseline, arriving)
    code = EXIT_BREAKING_DRIFT if drift.breaking else (EXIT_DRIFT if drift else EXIT_OK)
    if json_output:
        print_json({"resource": resource, "against": label, **drift.to_dict(), "exit_code": code})
    else:
        _print_drift(resource, label, drift)
    return code


def _baseline(config: Any, resource: Any, against: str) -> tuple[TableSchema | None, str]:
    if against == "destination":
        destination = build_destination(config, resource)
        try:
            target = write_target(resource, RunOptions())
            return destination.table_schema(target), f"the destination ({target.table or target.path})"
        finally:
            destination.close()
    versions = open_store(config).schema_versions(resource.name)
    if against == "latest":
        chosen = versions[-1] if versions else None
        return (TableSchema.from_dict(chosen["schema"]) if chosen else None,
                f"stored version {chosen['version']}" if chosen else "a stored schema version")
    if not against.isdigit():
        msg = f"--against must be latest, destination or a version number (got {against!r})"
        raise ConfigError(msg)
    chosen = next((v for v in versions if v["version"] == int(against)), None)
    if chosen is None:
        msg = f"{resource.name!r} has no schema version {against}; versions: {[v['version'] for v in versions]}"
        raise ConfigError(msg)
    return TableSchema.from_dict(chosen["schema"]), f"stored version {against}"


def _print_drift(resource: str, label: str, drift: SchemaDiff) -> None:
    if not drift:
        out.print(f"{resource}: no drift against {label}.")
        return
    table = Table(title=f"{resource}: source vs {label}")
    for name in ("column", "change", "before", "now", "", "auto would"):
        table.add_column(name)
    for c in drift.changes:
        verdict = "[green]compatible[/]" if c.compatible else "[red]breaking[/]"
        table.add_row(escape(c.column), c.kind.replace("_", " "), escape(c.old or "-"), escape(c.new or "-"),
                      verdict, escape(c.action or "-"))
    out.print(table)
    out.print("Breaking drift (exit 4)." if drift.breaking else "Compatible drift only (exit 3).")


__all__ = ["compare_command", "history_command", "infer_command", "show_command"]
