"""Live collection from OPC UA into bronze, exactly once (no Dagster).

:class:`LiveCollector` subscribes to a server's tags, fills gaps with HistoryRead and commits
micro-batches to ``historian_readings`` with a cursor per tag committed atomically with the
rows; :func:`collect` runs one until interrupted (``python -m lakehouse.live``);
:func:`read_status` reads the status JSON it keeps in the lake. :mod:`lakehouse.live.context`
holds the batch context it records, :mod:`lakehouse.live.running` aligns the running batches
incrementally, :mod:`lakehouse.live.alerts` holds the live score tables and the alerts table.
See ``docs/live.md``.
"""

from lakehouse.live.collector import (
    HOOKS,
    STATUS_PATH,
    CollectorConfig,
    CollectorStatus,
    LiveCollector,
    app_id,
    collect,
    read_status,
)

__all__ = [
    "HOOKS",
    "STATUS_PATH",
    "CollectorConfig",
    "CollectorStatus",
    "LiveCollector",
    "app_id",
    "collect",
    "read_status",
]
