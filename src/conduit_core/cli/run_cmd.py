"""`conduit run`."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import typer
from rich.markup import escape

from conduit_core.cli.output import err, out, print_json
from conduit_core.cli.tables import result_table
from conduit_core.config.loader import load_config
from conduit_core.engine import cancel
from conduit_core.engine.results import RunResult, Status
from conduit_core.engine.runner import RunOptions, run
from conduit_core.errors import EXIT_OK, EXIT_PREFLIGHT, EXIT_RUN_FAILED
from conduit_core.observe.progress import make_progress


def run_command(file: Path, options: RunOptions, *, progress: bool, json_output: bool, debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="conduit: %(message)s")
    config = load_config(file)
    dry_run = options.dry_run
    sink = make_progress(progress)
    with cancel.stopping_on_signals():
        result = cancel.in_worker(lambda: run(config, options, progress=sink))
    if debug:
        for r in result.resources:
            if r.exception is not None:
                err.print("".join(traceback.format_exception(r.exception)), markup=False)
    if result.preflight is not None and not result.preflight["ok"] and result.status is not Status.INTERRUPTED:
        _preflight_failed(result, json_output=json_output)
    if json_output:
        print_json(result.to_dict())
    else:
        out.print(result_table(result))
        if dry_run and result.status is not Status.FAILED:
            out.print("Dry run: configuration valid and connections open; nothing was written.")
    if not json_output:
        _resume_notes(result)
    for r in result.resources:
        if r.status is Status.FAILED:
            err.print(f"[bold red]Error:[/] resource {escape(r.resource)} failed: {escape(r.error or 'unknown error')}")
    if result.status is Status.INTERRUPTED:
        err.print(f"Interrupted ({result.interrupted}): the run stopped; each load kept its last checkpoint. "
                  "Continue with `conduit run --resume`.", markup=False)
        raise typer.Exit(cancel.exit_code_for(result.interrupted))
    raise typer.Exit(EXIT_RUN_FAILED if result.status is Status.FAILED else EXIT_OK)


def _preflight_failed(result: RunResult, *, json_output: bool) -> None:
    """Nothing ran: show the checks (or the JSON result) and one error listing every problem; exit 6."""
    from conduit_core.cli.tables import preflight_table
    from conduit_core.engine.preflight import Check, PreflightReport

    assert result.preflight is not None
    report = PreflightReport([Check(**c) for c in result.preflight["checks"]], result.preflight["duration_s"])
    if json_output:
        print_json(result.to_dict())
    else:
        out.print(preflight_table(report))
    err.print(f"[bold red]Error:[/] {escape(report.message())}")
    err.print("[bold]Hint:[/] fix the problems above, or run with --skip-preflight to run the resources anyway")
    raise typer.Exit(EXIT_PREFLIGHT)


def _resume_notes(result: RunResult) -> None:
    """What --resume did: the run it continued, the resources skipped and the loads continued."""
    if result.resumes:
        out.print(f"Resumed run {result.resumes}.")
    for r in result.resources:
        if r.completed_in:
            out.print(f"{r.resource}: skipped, its load completed in run {r.completed_in}.")
        if r.resumed_from:
            out.print(f"{r.resource}: resumed the load of run {r.resumed_from}, which had committed "
                      f"{r.rows_before_resume:,} rows.")
