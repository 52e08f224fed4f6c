{#- Protein A capture runs (UNICORN run.json): one row per run, latest export. -#}
with source as (
    select * from {{ bronze('chromatography', 'chrom_runs') }}
),

renamed as (
    select
        cast(run_id as varchar) as run_id,
        cast(skid_id as varchar) as skid_id,
        cast(column_id as varchar) as column_id,
        cast(column_cycle as bigint) as column_cycle,
        cast(batch_id as varchar) as batch_id,
        cast(input_lot as varchar) as input_lot,
        cast(output_lot as varchar) as output_lot,
        cast("start" as timestamptz) as start_ts,
        cast("end" as timestamptz) as end_ts,
        cast(load_volume_l as double) as load_volume_l,
        cast(load_titer_g_l as double) as load_titer_g_l,
        cast(column_volume_l as double) as column_volume_l,
        cast(pool_volume_l as double) as pool_volume_l,
        cast(pool_concentration_g_l as double) as pool_concentration_g_l,
        cast(step_yield_pct as double) as step_yield_pct,
        cast(max_pressure_bar as double) as max_pressure_bar,
        lower(cast(result as varchar)) as result,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
)

select *
from renamed
qualify {{ latest_version(['run_id']) }}
