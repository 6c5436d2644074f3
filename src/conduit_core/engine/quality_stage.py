"""The quality step of a load: rows that fail coercion or a check go to the DLQ, fail the load, or are logged."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conduit_core.batch import Batch
from conduit_core.config.models import ResourceConfig
from conduit_core.engine.results import ResourceResult
from conduit_core.errors import DataError
from conduit_core.quality.checks import Checks
from conduit_core.quality.dlq import DeadLetterQueue

log = logging.getLogger("conduit")


class QualityStage:
    def __init__(self, resource: ResourceConfig, result: ResourceResult, dlq: DeadLetterQueue) -> None:
        self.resource, self.result, self.dlq = resource, result, dlq
        self.checks = Checks(resource.quality_checks) if resource.quality_checks else None
        for check in resource.quality_checks:
            result.quality.setdefault(check.label, {"check": check.check, "column": check.column,
                                                    "action": check.action, "failed": 0})

    def apply(self, raw: Batch, batch: Batch, raw_index: np.ndarray | None,
              rejects: dict[int, dict[str, Any]]) -> Batch:
        """``batch`` without its rejected rows; ``raw_index[i]`` is the row of ``raw`` that row i came from."""
        positions: list[int] = list(rejects)
        reasons: list[dict[str, Any]] = list(rejects.values())
        if rejects:
            counted = self.result.quality.setdefault("coercion", {"check": "coercion", "column": None,
                                                                  "action": "dlq", "failed": 0})
            counted["failed"] += len(rejects)
        if self.checks is not None and batch.num_rows:
            dropped = np.zeros(batch.num_rows, dtype=bool)
            for check in self.resource.quality_checks:
                failed = self.checks.failed(batch.data, check)
                count = int(pc.sum(failed).as_py() or 0)
                if not count:
                    continue
                self.result.quality[check.label]["failed"] += count
                first = int(pc.index(failed, True).as_py())
                value = batch.data.column(check.column)[first].as_py() if check.column else None
                given = self.checks.reasons.get(check.label)
                if check.action == "fail":
                    row = batch.first_row + int(raw_index[first] if raw_index is not None else first)
                    why = f" ({given[first]})" if given and given[first] else ""
                    msg = (f"quality check {check.label} failed for {count} row(s) (action: fail); first value "
                           f"{value!r}{why}")
                    raise DataError(msg, file=batch.source_file, column=check.column, row=row,
                                    hint="fix the data, or set the check's action to dlq or warn")
                if check.action == "warn":
                    log.warning("[%s] quality check %s: %d row(s) failed (action: warn), e.g. %r",
                                self.resource.name, check.label, count, value)
                    continue
                new = np.asarray(failed.to_numpy(zero_copy_only=False), dtype=bool) & ~dropped
                dropped |= new
                column = batch.data.column(check.column) if check.column else None
                for position in np.flatnonzero(new):
                    positions.append(int(raw_index[position]) if raw_index is not None else int(position))
                    reasons.append({"error_type": "quality_check", "check": check.label, "column": check.column,
                                    "value": column[int(position)].as_py() if column is not None else None,
                                    "message": (given[position] if given else None)
                                    or _message(check.check, check.label)})
            if dropped.any():
                batch = Batch(batch.data.filter(pa.array(~dropped)), position=batch.position,
                              source_file=batch.source_file, first_row=batch.first_row, extras=batch.extras)
        if positions:
            self.dlq.write(raw.data, positions, reasons, source_file=raw.source_file, first_row=raw.first_row)
            self.result.rows_dlq += len(positions)
        return batch

    def gate(self) -> None:
        """Fail the resource when more of the rows read than ``quality_gate.max_dlq_ratio`` were rejected."""
        gate = self.resource.quality_gate
        if gate is None or not self.result.rows_read:
            return
        ratio = self.result.rows_dlq / self.result.rows_read
        if ratio > gate.max_dlq_ratio:
            msg = (f"quality gate: {self.result.rows_dlq} of {self.result.rows_read} rows ({ratio:.2%}) went to the "
                   f"dead-letter queue, above max_dlq_ratio {gate.max_dlq_ratio:.2%}")
            raise DataError(msg, hint=f"inspect them with `conduit dlq show {self.resource.name}`")

    def close(self) -> None:
        if self.checks is not None:
            self.checks.close()
        self.dlq.close()


def _message(check: str, label: str) -> str:
    return {"not_null": "NULL where a value is required", "unique": "duplicate of an earlier value",
            "regex": "does not match the pattern", "range": "outside the allowed range",
            "enum": "not one of the allowed values", "expression": "the expression is false"}.get(
        check, f"failed the custom check {label}")
