{#- Bronze tables of the contract (docs/contracts.md), columns and DuckDB types, lineage
    columns included. Used to stand in an empty relation for a bronze table that does not
    exist yet (a young lake: no chromatography run exported so far). The bronze schema is
    defined in lakehouse/ingest/schemas.py; this list must equal it (names, order, DuckDB
    types): tests/transform/test_bronze_schema_contract.py. -#}
{% macro bronze_columns() -%}
  {%- set lineage = [['_source_file', 'varchar'], ['_source_hash', 'varchar'], ['_run_id', 'varchar'], ['_ingested_at', 'timestamptz']] -%}
  {%- set tables = {
    'historian_readings': [['ts', 'timestamptz'], ['unit_id', 'varchar'], ['tag', 'varchar'], ['parameter', 'varchar'],
                           ['value', 'double'], ['eng_unit', 'varchar'], ['quality', 'smallint'], ['date', 'date']],
    'lims_results': [['sample_id', 'varchar'], ['batch_id', 'varchar'], ['sample_time', 'timestamptz'],
                     ['result_time', 'timestamptz'], ['analyte', 'varchar'], ['value', 'double'], ['unit', 'varchar'],
                     ['method', 'varchar']],
    'mes_batches': [['batch_id', 'varchar'], ['record_type', 'varchar'], ['product', 'varchar'], ['unit_id', 'varchar'],
                    ['recipe_id', 'varchar'], ['status', 'varchar'], ['start_ts', 'timestamptz'], ['end_ts', 'timestamptz'],
                    ['output_lot', 'varchar'], ['setpoints_json', 'varchar'], ['temperature_c', 'double'],
                    ['temp_shift_day', 'double'], ['temp_shift_c', 'double'], ['ph', 'double'], ['do_pct', 'double'],
                    ['feed_rate_pct_per_day', 'double'], ['seed_density_e6_per_ml', 'double'], ['working_volume_l', 'double']],
    'mes_phases': [['batch_id', 'varchar'], ['unit_procedure', 'varchar'], ['operation', 'varchar'], ['phase', 'varchar'],
                   ['phase_seq', 'integer'], ['start_ts', 'timestamptz'], ['end_ts', 'timestamptz']],
    'mes_materials': [['batch_id', 'varchar'], ['lot_id', 'varchar'], ['material', 'varchar'], ['role', 'varchar'],
                      ['quantity', 'double'], ['unit', 'varchar']],
    'mes_genealogy': [['batch_id', 'varchar'], ['input_lot', 'varchar'], ['output_lot', 'varchar'], ['record_type', 'varchar']],
    'mes_deviations': [['deviation_id', 'varchar'], ['batch_id', 'varchar'], ['onset_ts', 'timestamptz'], ['category', 'varchar'],
                       ['description', 'varchar'], ['opened_ts', 'timestamptz']],
    'chrom_runs': [['run_id', 'varchar'], ['skid_id', 'varchar'], ['column_id', 'varchar'], ['column_cycle', 'bigint'],
                   ['batch_id', 'varchar'], ['input_lot', 'varchar'], ['output_lot', 'varchar'], ['start', 'timestamptz'],
                   ['end', 'timestamptz'], ['load_volume_l', 'double'], ['load_titer_g_l', 'double'],
                   ['column_volume_l', 'double'], ['pool_volume_l', 'double'], ['pool_concentration_g_l', 'double'],
                   ['step_yield_pct', 'double'], ['max_pressure_bar', 'double'], ['result', 'varchar']],
    'chrom_curves': [['run_id', 'varchar'], ['skid_id', 'varchar'], ['volume_ml', 'double'], ['time_s', 'double'],
                     ['uv280_mau', 'double'], ['conductivity_ms_cm', 'double'], ['ph', 'double'],
                     ['pressure_bar', 'double'], ['phase', 'varchar']],
    'filtration_runs': [['run_id', 'varchar'], ['skid_id', 'varchar'], ['membrane_id', 'varchar'],
                        ['membrane_use', 'bigint'], ['input_lot', 'varchar'], ['output_lot', 'varchar'],
                        ['start', 'timestamptz'], ['end', 'timestamptz'], ['diavolumes', 'double'],
                        ['final_concentration_g_l', 'double'], ['step_yield_pct', 'double'],
                        ['mean_flux_lmh', 'double'], ['result', 'varchar']],
    'filtration_curves': [['run_id', 'varchar'], ['skid_id', 'varchar'], ['time_s', 'double'],
                          ['feed_pressure_bar', 'double'], ['retentate_pressure_bar', 'double'],
                          ['permeate_pressure_bar', 'double'], ['tmp_bar', 'double'], ['permeate_flux_lmh', 'double'],
                          ['conductivity_ms_cm', 'double'], ['retentate_volume_l', 'double'], ['phase', 'varchar']],
    'cmms_work_orders': [['work_order_id', 'varchar'], ['equipment_id', 'varchar'], ['equipment_type', 'varchar'],
                         ['work_type', 'varchar'], ['failure_mode', 'varchar'], ['priority', 'varchar'],
                         ['opened_at', 'timestamptz'], ['closed_at', 'timestamptz'], ['description', 'varchar']],
  } -%}
  {%- set out = {} -%}
  {%- for name, cols in tables.items() -%}{%- do out.update({name: cols + lineage}) -%}{%- endfor -%}
  {{ return(out) }}
{%- endmacro %}

{#- The bronze relation to select from: the Delta table through `source()` (delta_scan), or an
    empty, correctly typed relation when the table is listed in var('missing_bronze') or in the
    LAKEHOUSE_MISSING_BRONZE environment variable (comma-separated) — the Dagster asset passes
    the bronze tables that do not exist in the lake yet; `*` stands for every bronze table
    (sqlfluff lints without a lake). -#}
{% macro missing_bronze() -%}
  {%- set missing = var('missing_bronze', none) -%}
  {%- if missing is none -%}
    {%- set missing = env_var('LAKEHOUSE_MISSING_BRONZE', '').split(',') -%}
  {%- elif missing is string -%}
    {%- set missing = missing.split(',') -%}
  {%- endif -%}
  {%- if '*' in missing -%}
    {%- set missing = bronze_columns().keys() | list -%}
  {%- endif -%}
  {{ return(missing) }}
{%- endmacro %}

{% macro bronze(source_name, table_name) -%}
  {%- set relation = source(source_name, table_name) -%}
  {%- if table_name in missing_bronze() -%}
    (select {% for col in bronze_columns()[table_name] %}cast(null as {{ col[1] }}) as "{{ col[0] }}"{{ ', ' if not loop.last }}{% endfor %} where false)
  {%- else -%}
    {{ relation }}
  {%- endif -%}
{%- endmacro %}
