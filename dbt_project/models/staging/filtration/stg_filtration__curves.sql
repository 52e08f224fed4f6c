{#- TFF curves (pressures, TMP, flux, conductivity, retentate volume vs time), latest export of
    each run, numbered in time order. -#}
with source as (
    select * from {{ bronze('filtration', 'filtration_curves') }}
),

renamed as (
    select
        cast(run_id as varchar) as run_id,
        cast(skid_id as varchar) as skid_id,
        cast(time_s as double) as time_s,
        cast(feed_pressure_bar as double) as feed_pressure_bar,
        cast(retentate_pressure_bar as double) as retentate_pressure_bar,
        cast(permeate_pressure_bar as double) as permeate_pressure_bar,
        cast(tmp_bar as double) as tmp_bar,
        cast(permeate_flux_lmh as double) as permeate_flux_lmh,
        cast(conductivity_ms_cm as double) as conductivity_ms_cm,
        cast(retentate_volume_l as double) as retentate_volume_l,
        cast(phase as varchar) as phase,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
),

latest_export as (
    select *
    from renamed
    qualify {{ latest_ingestion(['run_id']) }}
)

select
    *,
    row_number() over (partition by run_id order by time_s) as point_seq
from latest_export
