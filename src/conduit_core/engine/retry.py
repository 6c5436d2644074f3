"""Retry a unit of work on transient errors, with exponential backoff and jitter."""

from __future__ import annotations

import logging

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from conduit_core.config.models import RetryConfig
from conduit_core.engine import cancel
from conduit_core.errors import ConnectionError as RetriableError

log = logging.getLogger("conduit")


def retrying(config: RetryConfig, resource: str) -> Retrying:
    """Attempts for ``resource``: only :class:`~conduit_core.errors.ConnectionError` is retried.

    When it gives up, the last error is raised as it was (never a RetryError),
    so the original cause reaches the user and the manifest.
    """

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("[%s] attempt %d of %d failed: %s; retrying in %.1fs", resource, state.attempt_number,
                    config.attempts, exc, wait)

    return Retrying(
        stop=stop_after_attempt(config.attempts),
        wait=wait_exponential_jitter(multiplier=config.initial_wait, max=config.max_wait),
        retry=retry_if_exception_type(RetriableError),
        before_sleep=before_sleep,
        sleep=cancel.TOKEN.sleep,  # a signal during the backoff stops the run at once
        reraise=True,
    )
