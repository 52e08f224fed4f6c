{#- DO probe drift checks: every offline reference result (e.g. blood-gas pO2) against the
    online DO of the same batch at the sample's grid step (aligned, carried forward). The check
    is dated by the result's approval (result_time), when the comparison becomes known. Which
    signal is the DO probe and which analyte its reference is the plant's configuration
    (plant.yaml `equipment`: do_probe, do_probe_reference); without them, no rows. -#}
{%- set probe = equipment_signal('do_probe') %}
{%- set reference = equipment_signal('do_probe_reference') %}
with samples as (
    select l.batch_id, l.sample_id, l.sample_time, l.result_time, l.value as reference_value
    from {{ ref('stg_lims__results') }} l
    {%- if reference %}
    where l.analyte = {{ sql_string(reference) }}
    {%- else %}
    where false
    {%- endif %}
),

online as (
    select a.batch_id, a.unit_id, a.ts, {{ 'a."' ~ probe ~ '"' if probe else 'cast(null as double)' }} as probe_value
    from {{ ref('int_process_readings__aligned') }} a
    where a.batch_id in (select batch_id from samples)
)

select
    o.unit_id || '-DO' as equipment_id,
    o.unit_id,
    s.batch_id,
    s.sample_id,
    s.sample_time,
    s.result_time,
    cast(s.result_time as date) as check_date,
    o.probe_value as do_online_pct,
    s.reference_value as do_offline_pct,
    o.probe_value - s.reference_value as do_offset_pct
from samples s
join online o
  on o.batch_id = s.batch_id
 and o.ts = time_bucket({{ grid_interval() }}, s.sample_time)
where o.probe_value is not null
