"""The quality step: rows that fail a check go to the dead-letter queue (``action: dlq``), fail the load
(``fail``) or are logged (``warn``). See :mod:`conduit_core.quality.checks`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.config.models import ResourceConfig
from conduit_core.errors import DataError
from conduit_core.quality.checks import Checks
from conduit_core.stages.stage import Reason, Rows, StageOutput

log = logging.getLogger("conduit")

_MESSAGES = {"not_null": "NULL where a value is required", "unique": "duplicate of an earlier value",
             "regex": "does not match the pattern", "range": "outside the allowed range",
             "enum": "not one of the allowed values", "expression": "the expression is false"}


class QualityStage:
    """The resource's quality checks over every batch; ``failed`` counts the rows each check failed."""

    name = "quality"

    def __init__(self, resource: ResourceConfig) -> None:
        self.resource = resource
        self.checks = Checks(resource.quality_checks) if resource.quality_checks else None
        self.failed: dict[str, dict[str, Any]] = {
            c.label: {"check": c.check, "column": c.column, "action": c.action, "failed": 0}
            for c in resource.quality_checks}

    def apply(self, rows: Rows) -> StageOutput:
        if self.checks is None or not rows.num_rows:
            return StageOutput(rows)
        data = rows.data
        dropped = np.zeros(rows.num_rows, dtype=bool)
        rejected: list[tuple[int, Reason]] = []
        for check in self.resource.quality_checks:
            failed = self.checks.failed(data, check)
            count = int(pc.sum(failed).as_py() or 0)
            if not count:
                continue
            self.failed[check.label]["failed"] += count
            first = int(pc.index(failed, True).as_py())
            value = data.column(check.column)[first].as_py() if check.column else None
            given = self.checks.reasons.get(check.label)
            if check.action == "fail":
                why = f" ({given[first]})" if given and given[first] else ""
                msg = (f"quality check {check.label} failed for {count} row(s) (action: fail); first value "
                       f"{value!r}{why}")
                raise DataError(msg, file=rows.source.source_file, column=check.column, row=rows.row(first),
                                hint="fix the data, or set the check's action to dlq or warn")
            if check.action == "warn":
                log.warning("[%s] quality check %s: %d row(s) failed (action: warn), e.g. %r",
                            self.resource.name, check.label, count, value)
                continue
            new = np.asarray(failed.to_numpy(zero_copy_only=False), dtype=bool) & ~dropped
            dropped |= new
            column = data.column(check.column) if check.column else None
            for position in np.flatnonzero(new):
                rejected.append((int(rows.origin[position]), {
                    "error_type": "quality_check", "check": check.label, "column": check.column,
                    "value": column[int(position)].as_py() if column is not None else None,
                    "message": (given[position] if given else None) or _message(check.check, check.label)}))
        if not dropped.any():
            return StageOutput(rows, rejected)
        keep = ~dropped
        return StageOutput(rows.keep(keep, data.filter(pa.array(keep))), rejected)

    def close(self) -> None:
        if self.checks is not None:
            self.checks.close()


def _message(check: str, label: str) -> str:
    return _MESSAGES.get(check, f"failed the custom check {label}")
