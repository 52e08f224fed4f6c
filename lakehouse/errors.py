"""One clear line for the errors a user can act on (no backtrace): a full disk, a permission
problem, an unreachable endpoint, invalid configuration, a tampered artifact, too little data.

:func:`describe` returns that line, or ``None`` for anything else — a bug, which keeps its
backtrace. The command line prints the line and exits with status 2.
"""

from __future__ import annotations

import errno

_CONNECT = (
    "connection refused",
    "could not connect",
    "endpoint connection",
    "dns error",
    "name or service not known",
    "failed to resolve",
    "no route to host",
    "timed out",
)


class InsufficientData(ValueError):
    """Too little data for a step (batches, assays, failures, reference batches): a young plant
    is a state, not an error. The orchestration skips the step with this message as its reason;
    nothing is made up in its place."""


def describe(exc: BaseException) -> str | None:
    """A one-line message for an error the user can fix, else ``None``."""
    from lakehouse.delta_changes import VersionGoneError
    from lakehouse.identifiers import InvalidIdentifierError
    from lakehouse.ingest.maintenance import RetentionBelowFloorError
    from lakehouse.ingest.writer import DiskFullError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(
        exc, (DiskFullError, InsufficientData, InvalidIdentifierError, RetentionBelowFloorError, VersionGoneError)
    ):
        return text
    if type(exc).__name__ == "ModelIntegrityError":
        return text
    low = f"{type(exc).__name__}: {exc}".lower()
    if (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or "no space left on device" in low:
        return f"disk full: {text} — free space (or point LAKEHOUSE_ROOT elsewhere) and run again"
    if isinstance(exc, PermissionError) or "permission denied" in low:
        return f"permission denied: {text} — check the owner and mode of the lake root / files named"
    if "accessdenied" in low or "access denied" in low or "invalidaccesskeyid" in low or "signaturedoesnotmatch" in low:
        return f"access denied by the object store: {text} — check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
    if "nosuchbucket" in low:
        return f"bucket not found: {text} — create it or fix LAKEHOUSE_ROOT"
    if isinstance(exc, (ConnectionError, TimeoutError)) or any(s in low for s in _CONNECT):
        return f"cannot reach the endpoint: {text} — check AWS_ENDPOINT_URL / the server, and that it is running"
    if isinstance(exc, FileNotFoundError):
        return f"not found: {text}"
    return None
