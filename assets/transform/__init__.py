"""Transform domain: the dbt process data model (dagster-dbt) and its gold publication.

Asset keys:
* dbt models by model name (``["stg_historian__readings"]`` … ``["fct_process_readings"]``),
  group ``dbt``; dbt sources are the bronze assets ``["bronze", table]``; dbt data tests are
  asset checks of their model.
* ``["gold", mart]`` for the ten marts, group ``gold``: Delta tables under ``gold/<mart>``
  with row count, column schema and a markdown preview as metadata, and an asset check
  ``delta_matches_warehouse`` (Delta and DuckDB agree on rows and columns).

Resources required (bound in ``orchestration/definitions.py``): ``lake``
(``LakeResource``) and ``dbt`` (``DbtCliResource``, see :func:`dbt_cli_resource`).

:func:`build_defs` builds the definitions (the dbt assets need the prepared manifest, see
``dbt_models.py``); nothing is read at import. Library code: ``lakehouse/warehouse.py``,
``lakehouse/gold.py``.
"""

import dagster as dg

from assets.resources import LakeResource
from assets.transform.dbt_models import build_dbt_assets, dbt_cli_resource, dbt_project
from lakehouse.gold import (
    column_descriptions,
    connect_warehouse,
    markdown_preview,
    mart_description,
    publish_mart,
    read_back_with_polars,
)
from lakehouse.warehouse import GOLD_MARTS

CHECK_NAME = "delta_matches_warehouse"


def table_schema(schema, descriptions: dict[str, str]) -> dg.TableSchema:
    """``dagster/column_schema`` metadata of an Arrow schema with the dbt column descriptions."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=f.name, type=str(f.type), description=descriptions.get(f.name) or None) for f in schema
        ]
    )


def build_gold_marts() -> dg.AssetsDefinition:
    """The ``gold/<mart>`` multi-asset (descriptions from the prepared dbt manifest)."""
    return dg.multi_asset(
        name="gold_marts",
        specs=[
            dg.AssetSpec(
                key=dg.AssetKey(["gold", mart]),
                deps=[dg.AssetKey([mart])],
                group_name="gold",
                description=mart_description(mart),
                kinds={"delta", "duckdb"},
                metadata={
                    "lakehouse/layer": "gold",
                    "lakehouse/path": f"gold/{mart}",
                    "lakehouse/duckdb_table": f"marts.{mart}",
                },
            )
            for mart in GOLD_MARTS
        ],
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_NAME,
                asset=dg.AssetKey(["gold", mart]),
                description="The gold Delta table has the rows and columns of the DuckDB mart.",
            )
            for mart in GOLD_MARTS
        ],
        can_subset=True,
    )(gold_marts)


def _descriptions(mart: str, lake: LakeResource) -> dict[str, str]:
    """dbt's column descriptions; the signal columns of ``fct_process_readings`` (the plant's catalog,
    not the dbt YAML) are described from the catalog: description, unit and kind."""
    out = dict(column_descriptions(mart))
    if mart == "fct_process_readings":
        for sig in lake.get_plant().catalog.signals:
            text = sig.description or sig.name
            out.setdefault(sig.name, f"{text} [{sig.unit}], {sig.kind.replace('_', ' ')}; on the batch grid")
    return out


def gold_marts(context: dg.AssetExecutionContext, lake: LakeResource):
    """Publish the selected marts from the DuckDB warehouse to ``gold/<mart>`` (Delta)."""
    the_lake = lake.get_lake()
    selected_checks = set(context.selected_asset_check_keys)
    con = connect_warehouse(lake.get_warehouse_path(), read_only=True)
    try:
        for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
            mart = key.path[-1]
            res = publish_mart(con, the_lake, mart)
            context.log.info(
                f"gold/{mart}: {res.mode}, {res.rows} rows, version {res.version}"
                + (f", replaced {len(res.replaced_keys)} batches" if res.replaced_keys else "")
            )
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "dagster/row_count": res.rows,
                    "dagster/column_schema": table_schema(res.schema, _descriptions(mart, lake)),
                    "dagster/uri": res.uri,
                    "preview": dg.MetadataValue.md(markdown_preview(res.preview)),
                    "delta_version": res.version,
                    "publish_mode": res.mode,
                    "replaced_batches": len(res.replaced_keys),
                    "duckdb_table": f"marts.{mart}",
                },
            )
            check_key = dg.AssetCheckKey(key, CHECK_NAME)
            if check_key in selected_checks:
                yield dg.AssetCheckResult(
                    asset_key=key,
                    check_name=CHECK_NAME,
                    passed=res.rows == res.warehouse_rows and res.delta_columns == list(res.schema.names),
                    metadata={
                        "delta_rows": res.rows,
                        "duckdb_rows": res.warehouse_rows,
                        "delta_columns": len(res.delta_columns),
                        "duckdb_columns": len(res.schema.names),
                    },
                )
    finally:
        con.close()


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            "readable_by_polars",
            asset=dg.AssetKey(["gold", mart]),
            description="Polars (an independent Delta reader) sees the mart's rows and columns.",
        )
        for mart in GOLD_MARTS
    ],
    can_subset=True,
    name="gold_readable_by_polars",
)
def gold_readable_by_polars(context: dg.AssetCheckExecutionContext, lake: LakeResource):
    the_lake = lake.get_lake()
    con = connect_warehouse(lake.get_warehouse_path(), read_only=True)
    try:
        for check_key in context.selected_asset_check_keys:
            mart = check_key.asset_key.path[-1]
            expected_rows = int(con.execute(f"select count(*) from marts.{mart}").fetchone()[0])
            expected_cols = [d[0] for d in con.execute(f"select * from marts.{mart} limit 0").description]
            rows, cols = read_back_with_polars(the_lake, mart)
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=check_key.name,
                passed=rows == expected_rows and cols == expected_cols,
                metadata={"polars_rows": rows, "duckdb_rows": expected_rows},
            )
    finally:
        con.close()


def build_defs() -> dg.Definitions:
    """dbt models, gold marts and their checks (prepares the dbt manifest on first call)."""
    process_model, aligned_readings = build_dbt_assets()
    return dg.Definitions(
        assets=[process_model, aligned_readings, build_gold_marts()],
        asset_checks=[gold_readable_by_polars],
    )


__all__ = ["GOLD_MARTS", "build_dbt_assets", "build_defs", "dbt_cli_resource", "dbt_project"]
