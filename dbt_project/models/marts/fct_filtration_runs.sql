{#- One row per UF/DF run: the run record, the bioreactor batch it processed (through
    genealogy: capture pool -> harvest lot -> batch) and summaries of its curves. -#}
with runs as (
    select * from {{ ref('stg_filtration__runs') }}
),

curves as (
    select
        run_id,
        count(*) as n_curve_points,
        avg(tmp_bar) as curve_mean_tmp_bar,
        max(tmp_bar) as curve_max_tmp_bar,
        avg(permeate_flux_lmh) as curve_mean_flux_lmh,
        arg_max(permeate_flux_lmh, time_s) as final_flux_lmh,
        max(time_s) filter (where phase = 'DF') - min(time_s) filter (where phase = 'DF') as df_duration_s,
        arg_max(retentate_volume_l, time_s) as final_retentate_volume_l,
        max(feed_pressure_bar) as max_feed_pressure_bar,
        arg_max(conductivity_ms_cm, time_s) as final_conductivity_ms_cm
    from {{ ref('stg_filtration__curves') }}
    group by run_id
),

links as (
    select run_id, bioreactor_batch_id
    from {{ ref('int_downstream_runs__linked_to_batch') }}
    where run_type = 'filtration'
)

select
    r.run_id,
    r.skid_id,
    r.membrane_id,
    r.membrane_use,
    l.bioreactor_batch_id,
    r.input_lot,
    r.output_lot,
    r.start_ts,
    r.end_ts,
    {{ hours_between('r.start_ts', 'r.end_ts') }} as duration_h,
    r.diavolumes,
    r.final_concentration_g_l,
    r.step_yield_pct,
    r.mean_flux_lmh,
    r.result,
    coalesce(c.n_curve_points, 0) as n_curve_points,
    c.curve_mean_tmp_bar,
    c.curve_max_tmp_bar,
    c.curve_mean_flux_lmh,
    c.final_flux_lmh,
    c.df_duration_s,
    c.final_retentate_volume_l,
    c.max_feed_pressure_bar,
    c.final_conductivity_ms_cm
from runs r
left join curves c on c.run_id = r.run_id
left join links l on l.run_id = r.run_id
