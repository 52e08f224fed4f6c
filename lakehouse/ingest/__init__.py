"""Bronze ingestion library (no Dagster): landing files → bronze Delta, exactly once.

See docs/ingestion.md. Main entry points:

- :func:`ingest_landing` / :func:`ingest_files` — list, read, validate, quarantine, commit;
- :func:`list_landing`, :func:`read_log`, :func:`pending_files` — what is there / what is new;
- :func:`run_import_config` — a plant's own exports via a YAML import config;
- :func:`maintain` — compaction, checkpoints, vacuum;
- :class:`TagMap` / :func:`load_tagmap`, :class:`IngestContext`.
"""

from lakehouse.ingest.foreign import ImportConfigError, load_import_config, plan_import, run_import_config
from lakehouse.ingest.maintenance import maintain, maintain_table
from lakehouse.ingest.readers import KINDS, SYSTEM_TABLES, SYSTEMS, IngestContext, SourceFile
from lakehouse.ingest.schemas import BRONZE_SCHEMAS, QUARANTINE_SCHEMA, schema_of
from lakehouse.ingest.tagmap import TagMap, TagMapError, load_tagmap
from lakehouse.ingest.validation import TimePolicy
from lakehouse.ingest.writer import (
    HOOKS,
    IngestReport,
    ensure_table,
    ingest_files,
    ingest_landing,
    list_landing,
    pending_files,
    read_log,
    table_uri,
)

__all__ = [
    "BRONZE_SCHEMAS",
    "HOOKS",
    "KINDS",
    "QUARANTINE_SCHEMA",
    "SYSTEMS",
    "SYSTEM_TABLES",
    "ImportConfigError",
    "IngestContext",
    "IngestReport",
    "SourceFile",
    "TagMap",
    "TagMapError",
    "TimePolicy",
    "ensure_table",
    "ingest_files",
    "ingest_landing",
    "list_landing",
    "load_import_config",
    "load_tagmap",
    "maintain",
    "maintain_table",
    "pending_files",
    "plan_import",
    "read_log",
    "run_import_config",
    "schema_of",
    "table_uri",
]
