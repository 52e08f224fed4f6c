{#- Shared building blocks of the process data model. -#}

{#- The 19 canonical historian parameters, in contract order (one wide column each). -#}
{% macro process_parameters() -%}
  {{ return(['temperature', 'temperature_sp', 'ph', 'dissolved_oxygen', 'agitation', 'air_flow',
             'o2_flow', 'co2_flow', 'offgas_o2', 'offgas_co2', 'capacitance', 'base_total',
             'feed_flow_sp', 'feed_flow', 'feed_total', 'weight', 'pressure', 'vibration',
             'motor_current']) }}
{%- endmacro %}

{#- Offline analytes carried on the grid by the as-of join (daily in-process assays). -#}
{% macro asof_analytes() -%}
  {{ return(['vcd', 'viability', 'glucose', 'lactate', 'glutamine', 'ammonia', 'osmolality',
             'ph_offline', 'po2_offline', 'titer']) }}
{%- endmacro %}

{#- The alignment grid step as a DuckDB interval (var grid_minutes, default 1). -#}
{% macro grid_interval() -%}
  to_minutes(cast({{ var('grid_minutes', 1) }} as bigint))
{%- endmacro %}

{#- Hours between two timestamps, fractional (microsecond precision). -#}
{% macro hours_between(start_ts, end_ts) -%}
  (date_diff('microsecond', {{ start_ts }}, {{ end_ts }}) / 3600000000.0)
{%- endmacro %}

{#- Unit normalisation: (lower-cased source unit) -> (canonical unit, conversion of x), from
    var('unit_conversions') in dbt_project.yml (shared with the Spark alignment). -#}
{% macro _unit_conversions() -%}
  {{ return(var('unit_conversions', {})) }}
{%- endmacro %}

{% macro canonical_value(value, unit) -%}
  case lower(trim({{ unit }}))
  {%- for src, conv in _unit_conversions().items() %}
    when '{{ src }}' then {{ conv[1] | replace('x', '(' ~ value ~ ')') }}
  {%- endfor %}
    else {{ value }}
  end
{%- endmacro %}

{% macro canonical_unit(unit) -%}
  case lower(trim({{ unit }}))
  {%- for src, conv in _unit_conversions().items() %}
    when '{{ src }}' then '{{ conv[0] }}'
  {%- endfor %}
    else {{ unit }}
  end
{%- endmacro %}

{#- Equipment type from the id conventions of the contract (<unit>-AGT, COL-PA-0n, …). -#}
{% macro equipment_type_from_id(equipment_id) -%}
  case
    when {{ equipment_id }} like '%-AGT' then 'agitator'
    when {{ equipment_id }} like '%-FP' then 'feed_pump'
    when {{ equipment_id }} like '%-DO' then 'do_probe'
    when {{ equipment_id }} like 'COL-%' then 'chromatography_column'
    when {{ equipment_id }} like 'MEM-%' then 'tff_membrane'
    when {{ equipment_id }} like 'AKTA-%' then 'chromatography_skid'
    when {{ equipment_id }} like 'TFF-%' then 'tff_skid'
    when {{ equipment_id }} like 'BR-%' then 'bioreactor'
  end
{%- endmacro %}

{#- Parent unit of a bioreactor component (BR-101-AGT -> BR-101); the id itself otherwise. -#}
{% macro parent_unit_from_id(equipment_id) -%}
  regexp_replace({{ equipment_id }}, '-(AGT|FP|DO)$', '')
{%- endmacro %}

{#- A Delta table of the lake outside bronze (e.g. silver/process_readings_aligned written by
    the Spark engine), read with delta_scan under the same lake root as the sources. -#}
{% macro lake_table(layer, table_name) -%}
  delta_scan({{ sql_string(lake_uri(layer, table_name)) }})
{%- endmacro %}

{#- URI of a table of the lake: var('lake_root'), else LAKEHOUSE_ROOT, else the embedded lake. -#}
{% macro lake_uri(layer, table_name) -%}
  {{ return(var('lake_root', env_var('LAKEHOUSE_ROOT', '../data/lake')) ~ '/' ~ layer ~ '/' ~ table_name) }}
{%- endmacro %}

{#- A SQL string literal of `value` (single quotes doubled). -#}
{% macro sql_string(value) -%}
  '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{#- Which engine aligns the historian to the grid: 'duckdb' (default, in
    int_process_readings__aligned) or 'spark' (the Dagster asset runs the Spark alignment
    first and the model reads its table). Set by the Dagster asset from the `spark` resource. -#}
{% macro alignment_engine() -%}
  {{ return(env_var('LAKEHOUSE_ALIGNMENT_ENGINE', 'duckdb') | lower) }}
{%- endmacro %}
