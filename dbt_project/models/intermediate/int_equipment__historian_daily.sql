{#- Daily wear signals per bioreactor from the historian (good readings only): agitator
    vibration and motor current, and the feed pump's delivered-minus-commanded flow (PV − SP,
    paired per minute while the pump is commanded on). Incremental by UTC day: only days
    whose readings were loaded since the last run are recomputed (`_loaded_at`,
    macros/incremental.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='reading_date',
    on_schema_change='fail',
) }}

{%- set watermark = incremental_watermark('_loaded_at') %}

with readings as (
    select unit_id, reading_date, reading_ts, parameter, value, _ingested_at
    from {{ ref('stg_historian__readings') }}
    where is_good
      and parameter in ('vibration', 'motor_current', 'feed_flow', 'feed_flow_sp')
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
        avg(value) filter (where parameter = 'vibration') as vibration,
        avg(value) filter (where parameter = 'motor_current') as motor_current,
        avg(value) filter (where parameter = 'feed_flow') as feed_flow,
        avg(value) filter (where parameter = 'feed_flow_sp') as feed_flow_sp,
        max(_ingested_at) as _ingested_at
    from readings
    group by all
)

select
    unit_id,
    reading_date,
    avg(vibration) as vibration_mean_mm_s,
    max(vibration) as vibration_max_mm_s,
    quantile_cont(vibration, 0.95) as vibration_p95_mm_s,
    avg(motor_current) as motor_current_mean_a,
    max(motor_current) as motor_current_max_a,
    avg(feed_flow - feed_flow_sp) filter (where feed_flow_sp > 0) as feed_flow_dev_mean_ml_min,
    max(abs(feed_flow - feed_flow_sp)) filter (where feed_flow_sp > 0) as feed_flow_dev_abs_max_ml_min,
    count(*) filter (where feed_flow_sp > 0 and feed_flow is not null) as feed_minutes,
    count(*) as minutes_logged,
    max(_ingested_at) as _ingested_at,
    {{ load_stamp() }} as _loaded_at
from per_minute
group by unit_id, reading_date
