"""Delta Lake on Spark without the delta-spark jars: delta-rs for the log, Spark for the data.

Read
    :class:`DeltaRsDataSource` is a Spark 4 Python data source (format ``"deltars"``). On the
    driver it loads the Delta snapshot with ``deltalake`` (so time travel, removed files and
    partition values come from the transaction log, not from listing the folder) and plans
    one Spark partition per data file (small files are packed together up to a target
    size). Each executor task opens its files with pyarrow + fsspec (s3fs for ``s3://``) and
    yields Arrow record batches: only the requested columns are read, partition columns are
    filled from the add action's partition values, columns added to the table after a file
    was written come back as nulls. Filters on partition columns prune files.

Write (:mod:`~lakehouse.spark.delta_bridge.commit` explains the protocol)
    :func:`write_delta` makes the executors write parquet files straight into the table
    location (``mapInArrow``, pyarrow + fsspec), each task returning its files' path, size,
    partition values and statistics; the driver then commits all of them in ONE delta-rs
    transaction (``DeltaTable.create_write_transaction`` or, for a new table,
    ``deltalake.transaction.create_table_with_add_actions``). A job that fails or is killed
    before that commit leaves the table at its previous version: the files already written
    are not referenced by the log (invisible to every reader) and are deleted best-effort
    right away or by ``DeltaTable.vacuum``.

Limits: tables with deletion vectors or column mapping are refused (delta-rs writes
neither); append validates the DataFrame against the table schema (no schema evolution);
overwrite replaces the schema. Where the cluster has delta-spark, pass
``use_delta_spark_jars=True`` (or set it on the Spark resource) and ``format("delta")`` is
used instead.

Modules: :mod:`.common` (storage options, Arrow types), :mod:`.read` (the data source),
:mod:`.write` (executors write parquet), :mod:`.stats` (file statistics), :mod:`.commit`
(the write protocol, :func:`write_delta`).
"""

from lakehouse.spark.delta_bridge.commit import WriteResult, replace_where, write_delta
from lakehouse.spark.delta_bridge.common import (
    FORMAT_NAME,
    _filesystem,
    normalize_arrow_schema,
    normalize_arrow_type,
    normalize_table_uri,
    to_delta_storage_options,
    to_fsspec_storage_options,
)
from lakehouse.spark.delta_bridge.read import DeltaRsDataSource, read_delta, register

__all__ = [
    "FORMAT_NAME",
    "DeltaRsDataSource",
    "WriteResult",
    "_filesystem",
    "normalize_arrow_schema",
    "normalize_arrow_type",
    "normalize_table_uri",
    "read_delta",
    "register",
    "replace_where",
    "to_delta_storage_options",
    "to_fsspec_storage_options",
    "write_delta",
]
