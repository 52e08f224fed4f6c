{#- Daily wear signals per bioreactor from the historian (good readings only): agitator
    vibration and motor current, and the feed pump's delivered-minus-commanded flow (PV − SP,
    paired per minute while the pump is commanded on). Which signals play these roles is the
    plant's configuration (plant.yaml `equipment`, macro equipment_signal); a role the plant
    does not have gives null statistics. Incremental by UTC day: only days
    whose readings were loaded since the last run are recomputed (`_loaded_at`,
    macros/incremental.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='reading_date',
    on_schema_change='fail',
) }}

{%- set watermark = incremental_watermark('_loaded_at') %}
{%- set roles = {'vib': equipment_signal('agitator_vibration'), 'current': equipment_signal('agitator_motor_current'),
                 'pump_pv': equipment_signal('feed_pump_flow'), 'pump_sp': equipment_signal('feed_pump_setpoint')} %}
{%- set wanted = roles.values() | reject('none') | list %}

with readings as (
    select unit_id, reading_date, reading_ts, parameter, value, _ingested_at
    from {{ ref('stg_historian__readings') }}
    where is_good
      and parameter in ({% for p in wanted %}{{ sql_string(p) }}{{ ', ' if not loop.last }}{% else %}null{% endfor %})
    {%- if is_incremental() %}
      and reading_date in (
          select distinct reading_date from {{ ref('stg_historian__readings') }}
          where _loaded_at > {{ watermark }}
      )
    {%- endif %}
),

per_minute as (
    select
        unit_id,
        reading_date,
        time_bucket(interval 1 minute, reading_ts) as minute_ts,
        {%- for col, signal in roles.items() %}
        {%- if signal %}
        avg(value) filter (where parameter = {{ sql_string(signal) }}) as {{ col }},
        {%- else %}
        cast(null as double) as {{ col }},
        {%- endif %}
        {%- endfor %}
        max(_ingested_at) as _ingested_at
    from readings
    group by all
)

select
    unit_id,
    reading_date,
    avg(vib) as vibration_mean_mm_s,
    max(vib) as vibration_max_mm_s,
    quantile_cont(vib, 0.95) as vibration_p95_mm_s,
    avg(current) as motor_current_mean_a,
    max(current) as motor_current_max_a,
    avg(pump_pv - pump_sp) filter (where pump_sp > 0) as feed_flow_dev_mean_ml_min,
    max(abs(pump_pv - pump_sp)) filter (where pump_sp > 0) as feed_flow_dev_abs_max_ml_min,
    count(*) filter (where pump_sp > 0 and pump_pv is not null) as feed_minutes,
    count(*) as minutes_logged,
    max(_ingested_at) as _ingested_at,
    {{ load_stamp() }} as _loaded_at
from per_minute
group by unit_id, reading_date
