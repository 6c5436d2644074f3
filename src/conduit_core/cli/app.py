"""The `conduit` command: thin commands over the library.

Heavy modules (pyarrow, DuckDB, connectors) are imported inside commands so
`conduit --help` answers quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conduit_core import __version__
from conduit_core.cli.output import err, handled, out, print_json

app = typer.Typer(
    name="conduit",
    help=("Declarative, Arrow-native data ingestion. Exit codes: 0 success, 1 run failed, 2 configuration error, "
          "3/4 schema-compare drift (compatible/breaking), 5 saved state needs a decision (a checkpoint to --resume, "
          "or another run holds the lock), 6 preflight failed (nothing ran)."),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

FileOpt = Annotated[Path, typer.Option("--file", "-f", help="Path to ingest.yml.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DEFAULT_FILE = Path("ingest.yml")


def _reads_data() -> None:
    """For commands that read or write data: pyarrow starts without pandas (see :mod:`.lazy_pandas`) and
    allocates with jemalloc (see :mod:`.memory_pool`)."""
    from conduit_core.cli.lazy_pandas import defer_pandas
    from conduit_core.cli.memory_pool import prefer_jemalloc

    defer_pandas()
    prefer_jemalloc()


def _version(value: bool) -> None:
    if value:
        out.print(f"conduit {__version__}")
        raise typer.Exit


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """conduit: dbt for the E and L."""


@app.command()
def run(
    resources: Annotated[list[str] | None, typer.Argument(help="Resources to run (default: all).")] = None,
    file: FileOpt = DEFAULT_FILE,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and open connections; write nothing.")] = False,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="Rows per batch.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Do not show progress.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue resources from their last checkpoint.")] = False,
    full_refresh: Annotated[bool, typer.Option(
        "--full-refresh", help="Ignore and reset checkpoints and high-water marks; replace the targets.")] = False,
    skip_preflight: Annotated[bool, typer.Option(
        "--skip-preflight", help="Do not check every resource before the first one runs.")] = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run resources from ingest.yml."""
    _reads_data()
    from conduit_core.cli.run_cmd import run_command
    from conduit_core.engine.runner import RunOptions

    with handled(debug):
        options = RunOptions(resources=tuple(resources or []), batch_size=batch_size, dry_run=dry_run, resume=resume,
                             full_refresh=full_refresh, skip_preflight=skip_preflight)
        run_command(file, options, progress=not no_progress and not json_output, json_output=json_output,
                    debug=debug)


@app.command()
def validate(
    file: FileOpt = DEFAULT_FILE,
    offline: Annotated[bool, typer.Option("--offline", help="Check the file only; open no connection.")] = False,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check ingest.yml (exit 2 if invalid), then run preflight on every resource (exit 6 on problems)."""
    from conduit_core.config.loader import load_config

    with handled(debug):
        config = load_config(file)
        summary: dict[str, object] = {"file": str(config.file), "valid": True, "sources": len(config.sources),
                                      "destinations": len(config.destinations),
                                      "resources": [r.name for r in config.resources]}
        report = None
        if not offline:
            from conduit_core.engine.preflight import PreflightError, probe

            _reads_data()

            report = probe(config, config.resources)
            summary["preflight"] = report.to_dict()
        if json_output:
            print_json(summary)
        else:
            out.print(f"{file} is valid: {len(config.sources)} source(s), {len(config.destinations)} "
                      f"destination(s), {len(config.resources)} resource(s).")
            if report is not None:
                from conduit_core.cli.tables import preflight_table

                out.print(preflight_table(report))
        if report is not None and report.problems:
            raise PreflightError(report.message(), hint="fix the problems above")


@app.command()
def connectors(json_output: JsonOpt = False) -> None:
    """List available source and destination types, built-in and from plugins."""
    from conduit_core.cli.tables import connectors_table
    from conduit_core.connectors.registry import list_connectors

    infos = list_connectors()
    if json_output:
        print_json([info.__dict__ for info in infos])
        return
    out.print(connectors_table(infos))
    for info in infos:
        if info.error:
            err.print(f"Warning: {info.kind} plugin {info.type!r} ({info.origin}) is unavailable: {info.error}",
                      markup=False)


@app.command()
def steps(json_output: JsonOpt = False) -> None:
    """List the transform steps: built-in, and Python steps registered by packages (conduit.transforms)."""
    from dataclasses import asdict

    from conduit_core.cli.tables import steps_table
    from conduit_core.stages.transforms import list_steps

    infos = list_steps()
    if json_output:
        print_json([asdict(info) for info in infos])
        return
    out.print(steps_table(infos))
    for info in infos:
        if info.error:
            err.print(f"Warning: step {info.name!r} ({info.origin}) is unavailable: {info.error}", markup=False)


@app.command()
def manifest(
    file: FileOpt = DEFAULT_FILE,
    status: Annotated[str | None, typer.Option(
        "--status", help="success, partial_success, failed, interrupted or running.")] = None,
    resource: Annotated[str | None, typer.Option("--resource", help="Only runs that included this resource.")] = None,
    last: Annotated[int, typer.Option("--last", min=1, help="Show at most N runs.")] = 10,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show the run history (newest first)."""
    from conduit_core.cli.tables import runs_table
    from conduit_core.config.loader import load_config
    from conduit_core.errors import ConfigError
    from conduit_core.state import open_store

    with handled(debug):
        valid = ("success", "partial_success", "failed", "interrupted", "running")
        if status is not None and status not in valid:
            msg = f"--status must be one of {', '.join(valid)} (got {status!r})"
            raise ConfigError(msg)
        config = load_config(file)
        runs = open_store(config).runs(status=status, resource=resource, last=last)
        if json_output:
            print_json(runs)
        elif not runs:
            out.print("No runs recorded" + (" matching the filter." if status or resource else " yet."))
        else:
            out.print(runs_table(runs))


state_app = typer.Typer(help="Checkpoints and high-water marks of resources.", no_args_is_help=True)
app.add_typer(state_app, name="state")


@state_app.command("show")
def state_show(
    resource: Annotated[str | None, typer.Argument(help="Only this resource.")] = None,
    file: FileOpt = DEFAULT_FILE,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show saved checkpoints and incremental high-water marks."""
    from conduit_core.cli.state_cmd import show_command

    with handled(debug):
        show_command(file, resource, json_output=json_output)


@state_app.command("reset")
def state_reset(
    resource: Annotated[str, typer.Argument(help="The resource whose state to discard.")],
    file: FileOpt = DEFAULT_FILE,
    debug: DebugOpt = False,
) -> None:
    """Discard a resource's checkpoint (and its staging data) and its high-water mark."""
    from conduit_core.cli.state_cmd import reset_command

    with handled(debug):
        reset_command(file, resource)


schema_app = typer.Typer(help="Inferred and recorded schemas of resources.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
ResourceArg = Annotated[str, typer.Argument(help="The resource.")]


@schema_app.command("infer")
def schema_infer(
    resource: ResourceArg,
    file: FileOpt = DEFAULT_FILE,
    rows: Annotated[int, typer.Option("--sample", min=1, help="Rows to sample.")] = 10_000,
    fmt: Annotated[str, typer.Option("--format", help="yaml (a `schema:` block to paste) or json.")] = "yaml",
    debug: DebugOpt = False,
) -> None:
    """Infer a resource's schema from a sample of its source."""
    _reads_data()
    from conduit_core.cli.schema_cmd import infer_command
    from conduit_core.errors import ConfigError

    with handled(debug):
        if fmt not in ("yaml", "json"):
            msg = f"--format must be yaml or json (got {fmt!r})"
            raise ConfigError(msg)
        infer_command(file, resource, rows=rows, fmt=fmt)


@schema_app.command("show")
def schema_show(
    resource: ResourceArg,
    file: FileOpt = DEFAULT_FILE,
    version: Annotated[int | None, typer.Option("--version", min=1, help="A stored version (default: latest).")]
    = None,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show a recorded schema version of a resource."""
    from conduit_core.cli.schema_cmd import show_command

    with handled(debug):
        show_command(file, resource, version=version, json_output=json_output)


@schema_app.command("history")
def schema_history(resource: ResourceArg, file: FileOpt = DEFAULT_FILE, json_output: JsonOpt = False,
                   debug: DebugOpt = False) -> None:
    """List a resource's recorded schema versions and what changed between them."""
    from conduit_core.cli.schema_cmd import history_command

    with handled(debug):
        history_command(file, resource, json_output=json_output)


@app.command("schema-compare")
def schema_compare(
    resource: ResourceArg,
    file: FileOpt = DEFAULT_FILE,
    against: Annotated[str, typer.Option("--against", help="latest, a version number, or destination.")]
    = "latest",
    rows: Annotated[int, typer.Option("--sample", min=1, help="Rows of the source to sample.")] = 10_000,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Compare the source's schema with a stored version or the live target. Exit 0 no drift,
    3 compatible drift only, 4 breaking drift."""
    _reads_data()
    from conduit_core.cli.schema_cmd import compare_command

    with handled(debug):
        code = compare_command(file, resource, against=against, rows=rows, json_output=json_output)
    raise typer.Exit(code)


dlq_app = typer.Typer(help="The dead-letter queue: rows rejected by coercion or quality checks.",
                      no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(file: FileOpt = DEFAULT_FILE, json_output: JsonOpt = False, debug: DebugOpt = False) -> None:
    """List dead-letter files: resource, run, rows, whether replayed."""
    from conduit_core.cli.dlq_cmd import list_command

    with handled(debug):
        list_command(file, json_output=json_output)


@dlq_app.command("show")
def dlq_show(
    resource: ResourceArg,
    file: FileOpt = DEFAULT_FILE,
    run_id: Annotated[str | None, typer.Option("--run", help="The run (default: the latest with rejects).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most N rows.")] = 50,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show a resource's rejected rows: the record, the check or coercion rule, column, value and reason."""
    from conduit_core.cli.dlq_cmd import show_command

    with handled(debug):
        show_command(file, resource, run_id=run_id, limit=limit, json_output=json_output)


@dlq_app.command("replay")
def dlq_replay(
    resource: ResourceArg,
    run_id: Annotated[str, typer.Option("--run", help="The run whose rejected rows to replay.")],
    file: FileOpt = DEFAULT_FILE,
    fixed: Annotated[Path | None, typer.Option("--file", help="Corrected records (JSON Lines) to send instead.")]
    = None,
    json_output: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Send rejected rows (or corrected ones) through the same checks and coercion into the destination.
    Exit 1 if some are rejected again."""
    _reads_data()
    from conduit_core.cli.dlq_cmd import replay_command
    from conduit_core.engine.cancel import in_worker, stopping_on_signals
    from conduit_core.errors import EXIT_OK, EXIT_RUN_FAILED

    with handled(debug), stopping_on_signals():
        rejected = in_worker(lambda: replay_command(file, resource, run_id=run_id, fixed=fixed,
                                                    json_output=json_output))
    raise typer.Exit(EXIT_RUN_FAILED if rejected else EXIT_OK)


def main() -> None:
    app()
