"""Column names every destination can take: one deterministic renaming, decided at the first batch.

A CSV header may repeat a name (``id,name,name``) or leave one empty, and a query may select the same
name twice. Parquet would write two ``name`` columns that readers then refuse, DuckDB and PostgreSQL
fail with unrelated errors. Destinations whose identifiers ignore case (DuckDB, SQLite, MySQL) also
cannot hold ``p95`` beside ``P95``. So, in column order:

- an empty name becomes ``column_<position>``;
- a repeated name (exactly, or ignoring case where the destination does) gets the next free suffix:
  ``name_2``, ``name_3``, ...

The same renaming applies to every batch of the load, to preflight and to ``conduit schema``; it is
logged as a warning and recorded in the manifest (``renamed_columns``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from conduit_core.batch import Batch
from conduit_core.connectors.base import BaseDestination, Capabilities

log = logging.getLogger("conduit")


@dataclass(frozen=True)
class Rename:
    #: 1-based position of the column in the source.
    position: int
    original: str
    name: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_names(names: Sequence[str], *, case_insensitive: bool) -> list[Rename]:
    """The renames that make ``names`` unique (ignoring case when ``case_insensitive``)."""

    def key(name: str) -> str:
        return name.casefold() if case_insensitive else name

    taken = {key(n) for n in names if n}
    seen: set[str] = set()
    renames: list[Rename] = []
    for position, name in enumerate(names, start=1):
        if not name:
            new, why = f"column_{position}", "the source gives this column no name"
        elif key(name) in seen:
            same = next(n for n in names[:position - 1] if key(n) == key(name))
            new = name
            why = (f"repeats the name of an earlier column ({same!r})" if same == name else
                   f"differs from an earlier column ({same!r}) only by case, which the destination ignores")
        else:
            seen.add(key(name))
            continue
        candidate, suffix = new, 2
        while key(candidate) in taken or key(candidate) in seen:
            candidate, suffix = f"{new}_{suffix}", suffix + 1
        seen.add(key(candidate))
        taken.add(key(candidate))
        renames.append(Rename(position, name, candidate, why))
    return renames


class ColumnNames:
    """Renames the columns of every batch of one load the same way, decided at its first batch."""

    def __init__(self, resource: str, *, case_insensitive: bool) -> None:
        self.resource = resource
        self.case_insensitive = case_insensitive
        self.renames: list[Rename] = []
        self._names: list[str] | None = None
        self._source: list[str] | None = None

    def apply(self, batch: Batch) -> Batch:
        names = batch.schema.names
        if self._names is None:
            self._source = names
            self.renames = plan_names(names, case_insensitive=self.case_insensitive)
            renamed = list(names)
            for r in self.renames:
                renamed[r.position - 1] = r.name
            self._names = renamed
            if self.renames:
                log.warning("[%s] renamed column(s) so every name is unique: %s", self.resource,
                            "; ".join(f"{r.original!r} (column {r.position}) -> {r.name!r}: {r.why}"
                                      for r in self.renames))
        if not self.renames or names != self._source:
            return batch
        return replace(batch, data=batch.data.rename_columns(self._names))


def kind_of(destination: type[BaseDestination]) -> str:
    """How messages name a destination class (``PostgresDestination`` -> ``Postgres``)."""
    return destination.__name__.removesuffix("Destination")


NAMES_HINT = ("shorten the names in the source (CSV `column_names:`, or aliases in `query:`), or load fewer "
              "columns per table")


def name_problems(names: Sequence[str], table: str | None, capabilities: Capabilities, kind: str) -> list[str]:
    """What a destination of ``kind`` could not take as it is: names longer than its identifiers (which it
    would cut, so that two columns may collide or a later statement names a column that is not there),
    or more columns than a table holds."""
    problems = []
    by_bytes, by_chars = capabilities.max_identifier_bytes, capabilities.max_identifier_chars
    for what, name in ([("table", table)] if table else []) + [("column", n) for n in names]:
        size = len(name.encode()) if by_bytes else len(name)
        limit = by_bytes or by_chars
        if limit is not None and size > limit:
            unit = "bytes" if by_bytes else "characters"
            problems.append(f"{what} name {name[:40]!r}... is {size} {unit}; {kind} identifiers hold at most "
                            f"{limit}, and a longer one would be cut")
    if capabilities.max_columns is not None and len(names) > capabilities.max_columns:
        problems.append(f"the source has {len(names)} columns; a {kind} table holds at most "
                        f"{capabilities.max_columns}")
    return problems
