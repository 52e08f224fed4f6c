{#- One row per bioreactor batch: MES record, alignment window, recipe setpoints, harvest
    quality attributes from LIMS, the corrective work orders raised on its unit meanwhile and
    the deviations QA recorded against it (status, has_deviation, first recorded onset). -#}
with windows as (
    select * from {{ ref('int_batches__windows') }}
),

assays as (
    select * from {{ ref('stg_lims__results') }}
    where batch_id in (select batch_id from windows)
),

cqas as (
    select
        batch_id,
        arg_max(value, sample_time) filter (where analyte = 'titer') as harvest_titer_g_l,
        max(value) filter (where analyte = 'vcd') as peak_vcd,
        arg_max(value, sample_time) filter (where analyte = 'viability') as harvest_viability_pct,
        arg_max(value, sample_time) filter (where analyte = 'g0f') as g0f_pct,
        arg_max(value, sample_time) filter (where analyte = 'g1f') as g1f_pct,
        arg_max(value, sample_time) filter (where analyte = 'g2f') as g2f_pct,
        arg_max(value, sample_time) filter (where analyte = 'man5') as man5_pct,
        arg_max(value, sample_time) filter (where analyte = 'afucosylation') as afucosylation_pct,
        arg_max(value, sample_time) filter (where analyte = 'hmw') as hmw_pct
    from assays
    group by batch_id
),

deviations as (
    select w.batch_id, count(wo.work_order_id) as n_deviation_work_orders
    from windows w
    join {{ ref('stg_cmms__work_orders') }} wo
      on {{ parent_unit_from_id('wo.equipment_id') }} = w.unit_id
     and wo.work_type = 'corrective'
     and wo.opened_at >= w.start_ts
     and wo.opened_at <= w.end_ts
    group by w.batch_id
),

recorded as (
    select
        batch_id,
        count(*) as n_recorded_deviations,
        min(onset_ts) as first_deviation_onset_ts,
        string_agg(distinct category, '; ' order by category) as deviation_categories
    from {{ ref('stg_mes__deviations') }}
    group by batch_id
)

select
    w.batch_id,
    w.unit_id,
    w.product,
    w.recipe_id,
    w.status,
    w.start_ts,
    w.end_ts,
    w.inoculation_ts,
    w.harvest_ts,
    {{ hours_between('w.inoculation_ts', 'w.harvest_ts') }} as duration_h,
    w.harvest_lot,
    w.temperature_c,
    w.temp_shift_day,
    w.temp_shift_c,
    w.ph,
    w.do_pct,
    w.feed_rate_pct_per_day,
    w.seed_density_e6_per_ml,
    w.working_volume_l,
    c.harvest_titer_g_l,
    c.peak_vcd,
    c.harvest_viability_pct,
    c.g0f_pct,
    c.g1f_pct,
    c.g2f_pct,
    c.man5_pct,
    c.afucosylation_pct,
    c.hmw_pct,
    coalesce(d.n_deviation_work_orders, 0) as n_deviation_work_orders,
    coalesce(r.n_recorded_deviations, 0) > 0 as has_deviation,
    coalesce(r.n_recorded_deviations, 0) as n_recorded_deviations,
    r.first_deviation_onset_ts,
    r.deviation_categories
from windows w
left join cqas c on c.batch_id = w.batch_id
left join deviations d on d.batch_id = w.batch_id
left join recorded r on r.batch_id = w.batch_id
