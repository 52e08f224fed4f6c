{#- DO probe drift checks: every blood-gas po2_offline result against the online DO of the
    same batch at the sample's grid step (aligned, carried forward). The check is dated by the
    result's approval (result_time), when the comparison becomes known. -#}
with samples as (
    select l.batch_id, l.sample_id, l.sample_time, l.result_time, l.value as po2_offline
    from {{ ref('stg_lims__results') }} l
    where l.analyte = 'po2_offline'
),

online as (
    select a.batch_id, a.unit_id, a.ts, a.dissolved_oxygen
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
    o.dissolved_oxygen as do_online_pct,
    s.po2_offline as do_offline_pct,
    o.dissolved_oxygen - s.po2_offline as do_offset_pct
from samples s
join online o
  on o.batch_id = s.batch_id
 and o.ts = time_bucket({{ grid_interval() }}, s.sample_time)
where o.dissolved_oxygen is not null
