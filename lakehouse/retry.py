"""Riding out short outages: retries with exponential backoff for commits and object-store I/O.

A scheduled ingestion or a live collector must survive an S3 endpoint that restarts, a
network blip or a concurrent writer winning a commit race — and must still fail, with one
clear line, when the problem is not transient (a wrong key, a full disk, a missing bucket).
Every commit path of the lake goes through :func:`retrying`; the caller keeps its own
exactly-once check inside the retried function (a commit that succeeded on the server but
whose answer was lost is recognised on the next attempt and not repeated).

The policy comes from the caller (the Dagster resource reads ``LAKEHOUSE_RETRY_SECONDS`` with
``dg.EnvVar``); nothing here reads the environment.
"""

from __future__ import annotations

import errno
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

# fragments of the messages delta-rs/object_store, botocore/s3fs and the OS give for faults
# that go away by themselves (server restarting, connection dropped, throttling, 5xx)
_TRANSIENT = (
    "connection refused",
    "connection reset",
    "connection aborted",
    "broken pipe",
    "timed out",
    "timeout",
    "error sending request",
    "dns error",
    "temporarily unavailable",
    "service unavailable",
    "slow down",
    "slowdown",
    "internal error",
    "internalerror",
    "bad gateway",
    "gateway timeout",
    "503",
    "502",
    "500 internal",
    "could not connect",
    "endpoint connection",
    "connection closed",
    "incomplete message",
    "unexpected eof",
    "hyper",
    "io error: connection",
)
_FATAL_ERRNO = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying.

    Parameters
    ----------
    max_seconds : float
        Give up when the next attempt would start later than this after the first one.
    initial_delay : float
        First back-off (seconds); doubled per attempt up to ``max_delay``, with jitter.
    max_delay : float
        Longest single back-off.
    """

    max_seconds: float = 120.0
    initial_delay: float = 0.2
    max_delay: float = 8.0


DEFAULT_POLICY = RetryPolicy()


def is_commit_conflict(exc: BaseException) -> bool:
    """A concurrent writer committed first (delta-rs ``CommitFailedError``)."""
    return type(exc).__name__ == "CommitFailedError"


def is_transient(exc: BaseException) -> bool:
    """A fault that is expected to go away: connection refused/reset, timeouts, 5xx, throttling."""
    if isinstance(exc, OSError) and exc.errno in _FATAL_ERRNO:
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    text = f"{type(exc).__name__}: {exc}".lower()
    if (
        "no space left" in text
        or "permission denied" in text
        or "access denied" in text
        or "accessdenied" in text
        or "nosuchbucket" in text
        or "invalidaccesskeyid" in text
    ):
        return False
    return any(fragment in text for fragment in _TRANSIENT)


def retrying(
    fn: Callable[[], T],
    what: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    retry_if: Callable[[BaseException], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, retrying commit conflicts and transient faults.

    Parameters
    ----------
    fn : callable
        The attempt. It must be safe to repeat (check what is already committed first).
    what : str
        What is being done, for the log lines (``"commit to bronze/lims_results"``).
    policy : RetryPolicy
        Time budget and back-off.
    retry_if : callable, optional
        Which exceptions to retry; default: commit conflicts and :func:`is_transient`.

    Returns
    -------
    The result of the first successful attempt. The last exception is raised when the budget
    is spent or the fault is not retryable.
    """
    retry_if = retry_if or (lambda e: is_commit_conflict(e) or is_transient(e))
    start = time.monotonic()
    delay = policy.initial_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            elapsed = time.monotonic() - start
            if not retry_if(exc) or elapsed + delay > policy.max_seconds:
                raise
            log.warning(
                "%s: attempt %d failed (%s: %s); retrying in %.1f s",
                what,
                attempt,
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
                delay,
            )
            sleep(delay * (0.75 + 0.5 * random.random()))
            delay = min(delay * 2, policy.max_delay)
