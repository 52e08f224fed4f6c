{#- One row per Protein A capture run: the run record, the bioreactor batch it processed
    (through genealogy) and summaries of its curves. -#}
with runs as (
    select * from {{ ref('stg_chromatography__runs') }}
),

curves as (
    select
        run_id,
        count(*) as n_curve_points,
        max(pressure_bar) as curve_max_pressure_bar,
        max(volume_ml) filter (where phase = 'Load') - min(volume_ml) filter (where phase = 'Load') as load_volume_ml,
        max(uv280_mau) filter (where phase = 'Elute') as elute_peak_uv280_mau,
        max(volume_ml) filter (where phase = 'Elute') - min(volume_ml) filter (where phase = 'Elute') as elute_volume_ml,
        min(ph) filter (where phase = 'Elute') as elute_min_ph,
        avg(conductivity_ms_cm) filter (where phase = 'Elute') as elute_mean_conductivity_ms_cm
    from {{ ref('stg_chromatography__curves') }}
    group by run_id
),

links as (
    select run_id, bioreactor_batch_id
    from {{ ref('int_downstream_runs__linked_to_batch') }}
    where run_type = 'chromatography'
)

select
    r.run_id,
    r.skid_id,
    r.column_id,
    r.column_cycle,
    r.batch_id,
    l.bioreactor_batch_id,
    r.input_lot,
    r.output_lot,
    r.start_ts,
    r.end_ts,
    {{ hours_between('r.start_ts', 'r.end_ts') }} as duration_h,
    r.load_volume_l,
    r.load_titer_g_l,
    r.column_volume_l,
    r.pool_volume_l,
    r.pool_concentration_g_l,
    r.step_yield_pct,
    r.max_pressure_bar,
    r.result,
    coalesce(c.n_curve_points, 0) as n_curve_points,
    c.curve_max_pressure_bar,
    c.load_volume_ml,
    c.elute_peak_uv280_mau,
    c.elute_volume_ml,
    c.elute_min_ph,
    c.elute_mean_conductivity_ms_cm
from runs r
left join curves c on c.run_id = r.run_id
left join links l on l.run_id = r.run_id
