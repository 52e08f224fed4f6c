{#- Shared building blocks of the process data model. -#}

{#- The plant's signals: one wide column each in the aligned readings, in catalog order. They come
    from the plant's signal catalog (lakehouse/catalog.py): var('signals') (a list or a
    comma-separated string; unit tests set it), else the comma-separated LAKEHOUSE_SIGNALS
    environment variable (set by the Dagster asset from the plant bundle:
    lakehouse.plant.PlantBundle.dbt_env), else none — `dbt parse` needs no catalog. -#}
{% macro process_parameters() -%}
  {{ return(_name_list('signals', 'LAKEHOUSE_SIGNALS')) }}
{%- endmacro %}

{#- Signals of kind `state` (a step or state code): aggregated per grid step by their LAST reading,
    not their mean (a mean of codes is no code). var('state_signals') / LAKEHOUSE_STATE_SIGNALS. -#}
{% macro state_parameters() -%}
  {{ return(_name_list('state_signals', 'LAKEHOUSE_STATE_SIGNALS')) }}
{%- endmacro %}

{% macro _name_list(var_name, env_name) -%}
  {%- set value = var(var_name, none) -%}
  {%- if value is none -%}
    {%- set value = env_var(env_name, '') -%}
  {%- endif -%}
  {%- if value is string -%}
    {%- set value = value.split(',') -%}
  {%- endif -%}
  {%- set out = [] -%}
  {%- for name in value -%}
    {%- set name = name | string | trim -%}
    {%- if name -%}
      {%- if not modules.re.match('^[a-z][a-z0-9_]*$', name) -%}
        {{ exceptions.raise_compiler_error(var_name ~ ": invalid signal name '" ~ name ~ "' (lower-case letters, digits, _)") }}
      {%- endif -%}
      {%- do out.append(name) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(out) }}
{%- endmacro %}

{#- Phase of each grid step from a state signal of the plant ({'signal': name, 'codes': {code: phase}},
    lakehouse.plant.PhaseSignal): var('phase_signal'), else the JSON of LAKEHOUSE_PHASE_SIGNAL,
    else none (the phase is the MES phase). -#}
{% macro phase_signal() -%}
  {%- set value = var('phase_signal', none) -%}
  {%- if value is none -%}
    {%- set raw = env_var('LAKEHOUSE_PHASE_SIGNAL', '') -%}
    {%- set value = fromjson(raw) if raw else none -%}
  {%- endif -%}
  {%- if value and value.signal not in process_parameters() -%}
    {{ exceptions.raise_compiler_error("phase_signal: '" ~ value.signal ~ "' is not one of the signals") }}
  {%- endif -%}
  {{ return(value or none) }}
{%- endmacro %}

{#- The phase name of a state code held in `column` (a CASE over the configured codes). -#}
{% macro phase_from_state(column) -%}
  {%- set ps = phase_signal() -%}
  case cast(round({{ column }}) as integer)
  {%- for code, name in ps.codes.items() %}
    when {{ code | int }} then {{ sql_string(name) }}
  {%- endfor %}
  end
{%- endmacro %}

{#- The signal that plays an equipment-health role (lakehouse.plant.EQUIPMENT_ROLES, e.g.
    'agitator_vibration'), or none: var('equipment_signals'), else the JSON of
    LAKEHOUSE_EQUIPMENT_SIGNALS. -#}
{% macro equipment_signal(role) -%}
  {%- set value = var('equipment_signals', none) -%}
  {%- if value is none -%}
    {%- set raw = env_var('LAKEHOUSE_EQUIPMENT_SIGNALS', '') -%}
    {%- set value = fromjson(raw) if raw else {} -%}
  {%- endif -%}
  {{ return(value.get(role)) }}
{%- endmacro %}

{#- Offline analytes carried on the grid by the as-of join (daily in-process assays). -#}
{% macro asof_analytes() -%}
  {{ return(['vcd', 'viability', 'glucose', 'lactate', 'glutamine', 'ammonia', 'osmolality',
             'ph_offline', 'po2_offline', 'titer']) }}
{%- endmacro %}

{#- The alignment grid step in seconds (the plant's grid; a bundle allows 1 s … 15 min): var('grid_seconds'), else
    var('grid_minutes') × 60, else LAKEHOUSE_GRID_SECONDS (set by the Dagster asset from the plant
    bundle), else 60. -#}
{% macro grid_seconds() -%}
  {%- set s = var('grid_seconds', none) -%}
  {%- if s is none and var('grid_minutes', none) is not none -%}
    {%- set s = (var('grid_minutes') | int) * 60 -%}
  {%- endif -%}
  {%- if s is none -%}
    {%- set s = env_var('LAKEHOUSE_GRID_SECONDS', '60') -%}
  {%- endif -%}
  {%- set s = s | int -%}
  {%- if s < 1 -%}
    {{ exceptions.raise_compiler_error("grid_seconds must be a positive number of seconds, got " ~ s) }}
  {%- endif -%}
  {{ return(s) }}
{%- endmacro %}

{#- The alignment grid step as a DuckDB interval. -#}
{% macro grid_interval() -%}
  to_seconds(cast({{ grid_seconds() }} as bigint))
{%- endmacro %}

{#- Hours between two timestamps, fractional (microsecond precision). -#}
{% macro hours_between(start_ts, end_ts) -%}
  (date_diff('microsecond', {{ start_ts }}, {{ end_ts }}) / 3600000000.0)
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
