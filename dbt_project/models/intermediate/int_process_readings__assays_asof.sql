{#- Offline assays joined AS OF to the aligned online grid, per batch and grid step: for each
    in-process analyte, the value of the most recently drawn sample whose result was already
    approved at ts (result_time <= ts — never a look into the future), shown while the sample
    is at most var('assay_asof_tolerance_h') hours old (ts - sample_time). One row per
    aligned grid row. Incremental, delete+insert by batch_id: rebuilds batches the aligned
    model rebuilt or whose LIMS results were loaded since its last run (`_loaded_at`,
    macros/incremental.sql). -#}
-- depends_on: {{ ref('int_batches__windows') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='batch_id',
    on_schema_change='fail',
) }}

{%- set analytes = asof_analytes() -%}
{%- set watermark = incremental_watermark('_loaded_at') %}

with target_batches as (
    select distinct batch_id
    from {{ ref('int_process_readings__aligned') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ watermark }}
    union
    select distinct l.batch_id
    from {{ ref('stg_lims__results') }} l
    where l._loaded_at > {{ watermark }}
      and l.batch_id in (select batch_id from {{ ref('int_batches__windows') }})
    {%- endif %}
),

grid as (
    select a.batch_id, a.unit_id, a.ts, a._source_ingested_at
    from {{ ref('int_process_readings__aligned') }} a
    where a.batch_id in (select batch_id from target_batches)
),

assays as (
    select batch_id, analyte, sample_time, result_time, value, _ingested_at
    from {{ ref('stg_lims__results') }}
    where batch_id in (select batch_id from target_batches)
      and analyte in ({% for a in analytes %}'{{ a }}'{{ ', ' if not loop.last }}{% endfor %})
),

events as (
    select distinct batch_id, result_time as event_ts from assays
),

-- what the lab had released at each release event: per analyte the sample drawn last
assay_state as (
    select
        e.batch_id,
        e.event_ts,
        {%- for a in analytes %}
        arg_max(s.value, s.sample_time) filter (where s.analyte = '{{ a }}') as {{ a }},
        max(s.sample_time) filter (where s.analyte = '{{ a }}') as {{ a }}_sample_time,
        arg_max(s.result_time, s.sample_time) filter (where s.analyte = '{{ a }}') as {{ a }}_result_time{{ ',' if not loop.last }}
        {%- endfor %}
    from events e
    join assays s on s.batch_id = e.batch_id and s.result_time <= e.event_ts
    group by e.batch_id, e.event_ts
),

lims_loads as (
    select batch_id, max(_ingested_at) as lims_ingested_at from assays group by batch_id
),

joined as (
    select g.*, {% for a in analytes %}s.{{ a }} as {{ a }}_raw, s.{{ a }}_sample_time as {{ a }}_sample_time_raw, s.{{ a }}_result_time as {{ a }}_result_time_raw{{ ', ' if not loop.last }}{% endfor %}
    from grid g
    asof left join assay_state s
      on s.batch_id = g.batch_id and g.ts >= s.event_ts
)

select
    j.batch_id,
    j.unit_id,
    j.ts,
    {%- for a in analytes %}
    {%- set fresh = "j." ~ a ~ "_sample_time_raw >= j.ts - to_hours(cast(" ~ var('assay_asof_tolerance_h', 48) ~ " as bigint))" %}
    case when {{ fresh }} then j.{{ a }}_raw end as {{ a }},
    case when {{ fresh }} then j.{{ a }}_sample_time_raw end as {{ a }}_sample_time,
    case when {{ fresh }} then j.{{ a }}_result_time_raw end as {{ a }}_result_time,
    {%- endfor %}
    greatest(j._source_ingested_at, coalesce(l.lims_ingested_at, j._source_ingested_at)) as _source_ingested_at,
    {{ load_stamp() }} as _loaded_at
from joined j
left join lims_loads l on l.batch_id = j.batch_id
