"""The exception hierarchy.

Everything conduit raises on purpose derives from :class:`ConduitError`. The
subclasses are grouped by what the caller should do next, and each carries the
process exit code the CLI uses for it (documented in ``docs/cli.md``).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_CONFIG = 2
#: The state store needs a decision first: a checkpoint to resume or reset, or a run lock held by another process.
EXIT_STATE = 5
#: ``conduit schema-compare``: compatible drift only / breaking drift.
EXIT_DRIFT = 3
EXIT_BREAKING_DRIFT = 4
#: Preflight found problems, so no resource ran.
EXIT_PREFLIGHT = 6


class ConduitError(Exception):
    """Root of every error conduit raises deliberately."""

    exit_code: int = EXIT_RUN_FAILED
    #: A one-line suggestion of how to fix the problem, printed after the message.
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a configuration file."""

    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None

    def render(self, file: str | None = None) -> str:
        where = file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
            if self.column is not None:
                where = f"{where}:{self.column}"
        parts = [p for p in (where, self.path) if p]
        prefix = " ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class ConfigError(ConduitError):
    """The configuration is invalid; nothing was run. Fix ingest.yml and retry."""

    exit_code = EXIT_CONFIG

    def __init__(self, message: str, *, issues: Sequence[ConfigIssue] = (), file: str | None = None,
                 hint: str | None = None) -> None:
        self.issues = tuple(issues)
        self.file = file
        if self.issues:
            count = len(self.issues)
            head = f"{message} ({count} problem{'s' if count != 1 else ''})"
            message = "\n".join([head, *(f"  - {i.render(file)}" for i in self.issues)])
        super().__init__(message, hint=hint)


class ConnectionError(ConduitError):
    """A peer could not be reached or dropped the connection; retrying may help."""


class DataError(ConduitError):
    """A row or value cannot be processed. Carries where it was found."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: str | None = None, row: int | None = None, hint: str | None = None) -> None:
        self.file, self.line, self.column, self.row = file, line, column, row
        where = []
        if file:
            where.append(file if line is None else f"{file}:{line}")
        elif line is not None:
            where.append(f"line {line}")
        if row is not None:
            where.append(f"row {row}")
        if column:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message, hint=hint)


class FatalError(ConduitError):
    """An unrecoverable problem: retrying the same run will fail the same way."""


class MissingDriverError(FatalError):
    """An optional driver package is not installed."""

    def __init__(self, package: str, extra: str, what: str) -> None:
        super().__init__(
            f"{what} needs the Python package {package!r}, which is not installed",
            hint=f"pip install 'conduit-core[{extra}]'",
        )


class RunFailedError(ConduitError):
    """At least one resource failed; details are in the run manifest."""


class InvariantError(FatalError):
    """Rows were unaccounted for: read != written + dlq + filtered."""


class StateError(ConduitError):
    """Saved state stops the run: a checkpoint waits for ``--resume``, or another run holds the lock."""

    exit_code = EXIT_STATE


class LockedError(StateError):
    """Another conduit process is running the same resource with the same state store."""


class EnvironmentProblemError(FatalError):
    """The machine, not conduit or the data: a full disk, a read-only or inaccessible directory."""


_NO_SPACE = re.compile(r"no space left on device|database or disk is full|disk quota exceeded", re.IGNORECASE)
_READ_ONLY = re.compile(r"read-only file system|readonly database|permission denied|unable to open database file",
                        re.IGNORECASE)
_FILE_LIBRARIES = ("sqlite3", "duckdb", "_duckdb", "pyarrow")
_QUOTED_PATH = re.compile(r"[\"'](/[^\"']+)[\"']")


def environment_problem(exc: BaseException | None) -> EnvironmentProblemError | None:
    """The full disk or unwritable directory behind ``exc`` (or its causes), as one plain message with the path
    and the fix; None when the error is something else. Drivers say it in their own words (OSError 28,
    SQLite's 'database or disk is full', DuckDB's 'IO Error: ... No space left on device')."""
    seen = 0
    while exc is not None and seen < 5:
        text = str(exc)
        code = exc.errno if isinstance(exc, OSError) else None
        path = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
        if path is None and (match := _QUOTED_PATH.search(text)):
            path = match.group(1)
        where = f" ({path})" if path else ""
        if code in (errno.ENOSPC, errno.EDQUOT) or _NO_SPACE.search(text):
            return EnvironmentProblemError(
                f"no space left on the device{where}: {text.strip().splitlines()[0][:300]}",
                hint="free disk space, or point the destination's `path:` or `settings.state_dir` at a larger disk, "
                     "then run again (with --resume if a checkpoint was committed)")
        # Read-only wording only from file-level libraries: a server's "permission denied" is about grants.
        local = isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _FILE_LIBRARIES
        if code in (errno.EROFS, errno.EACCES, errno.EPERM) or (local and _READ_ONLY.search(text)):
            return EnvironmentProblemError(
                f"cannot write{where}: the file system or directory is read-only or not accessible: "
                f"{text.strip().splitlines()[0][:300]}",
                hint="make the directory writable, or choose another destination `path:` or `settings.state_dir`")
        # Causes, and the error being handled only behind one that merely reports an aborted transaction
        # (DuckDB's answer to the statement after a full disk): another error raised while handling a full
        # disk is not itself about the disk.
        follow_on = "transaction is aborted" in text.lower() or "please rollback" in text.lower()
        exc, seen = exc.__cause__ or (exc.__context__ if follow_on else None), seen + 1
    return None
