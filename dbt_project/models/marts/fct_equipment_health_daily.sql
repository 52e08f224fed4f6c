{#- Daily equipment health: one row per equipment and UTC day with any signal — agitator
    vibration and motor current, feed-pump flow deviation (PV − SP), DO probe offset against
    the blood-gas analyser, Protein A column pressure per cycle, TFF membrane TMP and flux —
    and the work orders opened that day. Unused columns are null for other equipment types. -#}
with historian as (
    select * from {{ ref('int_equipment__historian_daily') }}
),

agitator as (
    select unit_id || '-AGT' as equipment_id, reading_date as date,
           vibration_mean_mm_s, vibration_max_mm_s, vibration_p95_mm_s,
           motor_current_mean_a, motor_current_max_a
    from historian
    where vibration_mean_mm_s is not null or motor_current_mean_a is not null
),

feed_pump as (
    select unit_id || '-FP' as equipment_id, reading_date as date,
           feed_flow_dev_mean_ml_min, feed_flow_dev_abs_max_ml_min, feed_minutes
    from historian
    where feed_minutes > 0
),

do_probe as (
    select equipment_id, check_date as date,
           avg(do_offset_pct) as do_offset_mean_pct, count(*) as n_do_checks
    from {{ ref('int_equipment__do_probe_checks') }}
    group by all
),

columns_daily as (
    select column_id as equipment_id, cast(end_ts as date) as date,
           max(max_pressure_bar) as column_max_pressure_bar,
           max(column_cycle) as column_cycle,
           count(*) as n_column_runs
    from {{ ref('stg_chromatography__runs') }}
    group by all
),

membranes_daily as (
    select r.membrane_id as equipment_id, cast(r.end_ts as date) as date,
           avg(c.tmp_bar) as tff_mean_tmp_bar,
           avg(c.permeate_flux_lmh) as tff_mean_flux_lmh,
           max(r.membrane_use) as membrane_use,
           count(distinct r.run_id) as n_tff_runs
    from {{ ref('stg_filtration__runs') }} r
    left join {{ ref('stg_filtration__curves') }} c on c.run_id = r.run_id
    group by all
),

work_orders_daily as (
    select equipment_id, cast(opened_at as date) as date,
           count(*) as n_work_orders_opened,
           count(*) filter (where work_type = 'corrective') as n_corrective_opened,
           count(*) filter (where work_type = 'preventive') as n_preventive_opened
    from {{ ref('stg_cmms__work_orders') }}
    group by all
),

spine as (
    select equipment_id, date from agitator
    union select equipment_id, date from feed_pump
    union select equipment_id, date from do_probe
    union select equipment_id, date from columns_daily
    union select equipment_id, date from membranes_daily
    union select equipment_id, date from work_orders_daily
)

select
    s.equipment_id,
    coalesce({{ equipment_type_from_id('s.equipment_id') }}, 'unknown') as equipment_type,
    {{ parent_unit_from_id('s.equipment_id') }} as unit_id,
    s.date,
    a.vibration_mean_mm_s,
    a.vibration_max_mm_s,
    a.vibration_p95_mm_s,
    a.motor_current_mean_a,
    a.motor_current_max_a,
    f.feed_flow_dev_mean_ml_min,
    f.feed_flow_dev_abs_max_ml_min,
    d.do_offset_mean_pct,
    coalesce(d.n_do_checks, 0) as n_do_checks,
    c.column_max_pressure_bar,
    c.column_cycle,
    coalesce(c.n_column_runs, 0) as n_column_runs,
    m.tff_mean_tmp_bar,
    m.tff_mean_flux_lmh,
    m.membrane_use,
    coalesce(m.n_tff_runs, 0) as n_tff_runs,
    coalesce(w.n_work_orders_opened, 0) as n_work_orders_opened,
    coalesce(w.n_corrective_opened, 0) as n_corrective_opened,
    coalesce(w.n_preventive_opened, 0) as n_preventive_opened
from spine s
left join agitator a using (equipment_id, date)
left join feed_pump f using (equipment_id, date)
left join do_probe d using (equipment_id, date)
left join columns_daily c using (equipment_id, date)
left join membranes_daily m using (equipment_id, date)
left join work_orders_daily w using (equipment_id, date)
