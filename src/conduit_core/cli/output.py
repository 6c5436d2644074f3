"""How the CLI reports errors and results."""

from __future__ import annotations

import json
import shutil
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from conduit_core.engine.cancel import Cancelled
from conduit_core.errors import EXIT_RUN_FAILED, ConduitError, environment_problem
from conduit_core.observe.redact import redact

# Off a terminal Rich assumes 80 columns, which folds every table cell; logs and
# CI have room for more.
_WIDTH = None if sys.stdout.isatty() else max(shutil.get_terminal_size((160, 24)).columns, 160)
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(exc: ConduitError, *, debug: bool) -> None:
    """Print ``exc`` as one readable message (traceback only with --debug) and exit."""
    if debug:
        err.print("".join(traceback.format_exception(exc)), markup=False)
    err.print(f"[bold red]Error:[/] {escape(redact(exc.message))}")
    if exc.hint:
        err.print(f"[bold]Hint:[/] {escape(exc.hint)}")
    raise typer.Exit(exc.exit_code)


@contextmanager
def handled(debug: bool) -> Iterator[None]:
    """Turn conduit errors into messages and exit codes; anything else is a bug report."""
    try:
        yield
    except ConduitError as exc:
        fail(exc, debug=debug)
    except KeyboardInterrupt:
        err.print("Interrupted.", markup=False)
        raise typer.Exit(130) from None
    except Cancelled as exc:
        err.print(f"Interrupted ({exc.name}); nothing after the last commit was kept.", markup=False)
        raise typer.Exit(exc.exit_code) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        problem = environment_problem(exc)
        if problem is not None:
            problem.__cause__ = exc  # for --debug
            fail(problem, debug=debug)
        if debug:
            raise
        err.print(f"Error: unexpected {type(exc).__name__}: {redact(str(exc))}", markup=False)
        err.print("Hint: this is a bug in conduit or a plugin; rerun with --debug for the traceback and report it",
                  markup=False)
        raise typer.Exit(EXIT_RUN_FAILED) from None
