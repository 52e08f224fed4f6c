{#- UF/DF tangential-flow filtration runs (run.json): one row per run, latest export. -#}
with source as (
    select * from {{ bronze('filtration', 'filtration_runs') }}
),

renamed as (
    select
        cast(run_id as varchar) as run_id,
        cast(skid_id as varchar) as skid_id,
        cast(membrane_id as varchar) as membrane_id,
        cast(membrane_use as bigint) as membrane_use,
        cast(input_lot as varchar) as input_lot,
        cast(output_lot as varchar) as output_lot,
        cast("start" as timestamptz) as start_ts,
        cast("end" as timestamptz) as end_ts,
        cast(diavolumes as double) as diavolumes,
        cast(final_concentration_g_l as double) as final_concentration_g_l,
        cast(step_yield_pct as double) as step_yield_pct,
        cast(mean_flux_lmh as double) as mean_flux_lmh,
        lower(cast(result as varchar)) as result,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
)

select *
from renamed
qualify {{ latest_version(['run_id']) }}
