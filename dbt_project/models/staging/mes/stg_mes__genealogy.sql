{#- Lot genealogy edges (input_lot -> output_lot) declared by MES records. -#}
with source as (
    select * from {{ bronze('mes', 'mes_genealogy') }}
),

renamed as (
    select
        cast(batch_id as varchar) as batch_id,
        cast(input_lot as varchar) as input_lot,
        cast(output_lot as varchar) as output_lot,
        lower(cast(record_type as varchar)) as record_type,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
    where input_lot is not null and output_lot is not null
)

select *
from renamed
qualify {{ latest_ingestion(['batch_id']) }}
    and {{ latest_version(['batch_id', 'input_lot', 'output_lot'], ['_source_file desc']) }}
