"""Bronze ingestion library (no Dagster): landing files → bronze Delta, exactly once.

See docs/ingestion.md. Main entry points:

- :func:`ingest_landing` / :func:`ingest_files` — list, read, validate, quarantine, commit;
- :func:`list_landing`, :func:`read_log`, :func:`pending_files` — what is there / what is new;
- :func:`run_import_config` — a plant's own exports via a YAML import config;
- :func:`maintain` — compaction, checkpoints, vacuum;
- :class:`TagMap` / :func:`load_tagmap`, :class:`IngestContext`.

The names are imported on first use (PEP 562): importing one submodule (e.g.
``lakehouse.ingest.schemas`` for the bronze schemas the warehouse needs) does not load the
readers and their validation stack (pandera, pandas), which the code location would otherwise
pay at every start.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BRONZE_SCHEMAS": "lakehouse.ingest.schemas",
    "HOOKS": "lakehouse.ingest.writer",
    "ImportConfigError": "lakehouse.ingest.foreign",
    "IngestContext": "lakehouse.ingest.readers",
    "IngestReport": "lakehouse.ingest.writer",
    "KINDS": "lakehouse.ingest.readers",
    "QUARANTINE_SCHEMA": "lakehouse.ingest.schemas",
    "SYSTEMS": "lakehouse.ingest.readers",
    "SYSTEM_TABLES": "lakehouse.ingest.readers",
    "SourceFile": "lakehouse.ingest.readers",
    "TagMap": "lakehouse.ingest.tagmap",
    "TagMapError": "lakehouse.ingest.tagmap",
    "TimePolicy": "lakehouse.ingest.validation",
    "ensure_table": "lakehouse.ingest.writer",
    "ingest_files": "lakehouse.ingest.writer",
    "ingest_landing": "lakehouse.ingest.writer",
    "list_landing": "lakehouse.ingest.writer",
    "load_import_config": "lakehouse.ingest.foreign",
    "load_tagmap": "lakehouse.ingest.tagmap",
    "maintain": "lakehouse.ingest.maintenance",
    "maintain_table": "lakehouse.ingest.maintenance",
    "pending_files": "lakehouse.ingest.writer",
    "plan_import": "lakehouse.ingest.foreign",
    "read_log": "lakehouse.ingest.writer",
    "run_import_config": "lakehouse.ingest.foreign",
    "schema_of": "lakehouse.ingest.schemas",
    "table_uri": "lakehouse.ingest.writer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name from its submodule on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lakehouse.ingest' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The exported names (for completion and ``help``)."""
    return sorted(set(globals()) | set(_EXPORTS))
