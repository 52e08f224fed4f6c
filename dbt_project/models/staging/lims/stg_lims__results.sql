{#- LIMS results: one row per (sample, analyte), latest approved version, canonical units (converted by the importer).
    `_loaded_at`: when the warehouse first took in this version of the result (see
    macros/incremental.sql). -#}
with source as (
    select * from {{ bronze('lims', 'lims_results') }}
),

renamed as (
    select
        cast(sample_id as varchar) as sample_id,
        cast(batch_id as varchar) as batch_id,
        cast(sample_time as timestamptz) as sample_time,
        cast(result_time as timestamptz) as result_time,
        lower(trim(cast(analyte as varchar))) as analyte,
        cast(value as double) as value,
        cast(unit as varchar) as unit,
        cast(method as varchar) as method,
        {{ hours_between('sample_time', 'result_time') }} as result_delay_h,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
),

latest as (
    select *
    from renamed
    qualify {{ latest_version(['sample_id', 'analyte'], ['_ingested_at desc', 'result_time desc', '_source_file desc']) }}
)

select s.*, {{ loaded_at() }} as _loaded_at
from latest s {{ previous_loads(['sample_id', 'analyte', '_source_file', '_ingested_at']) }}
