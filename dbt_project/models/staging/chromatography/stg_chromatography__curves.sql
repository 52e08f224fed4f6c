{#- Chromatography curves (UV280, conductivity, pH, pressure vs volume/time), latest export of
    each run, numbered in time order. -#}
with source as (
    select * from {{ bronze('chromatography', 'chrom_curves') }}
),

renamed as (
    select
        cast(run_id as varchar) as run_id,
        cast(skid_id as varchar) as skid_id,
        cast(volume_ml as double) as volume_ml,
        cast(time_s as double) as time_s,
        cast(uv280_mau as double) as uv280_mau,
        cast(conductivity_ms_cm as double) as conductivity_ms_cm,
        cast(ph as double) as ph,
        cast(pressure_bar as double) as pressure_bar,
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
    row_number() over (partition by run_id order by time_s, volume_ml) as point_seq
from latest_export
