{#- Materials consumed and produced by each MES record (latest version of the record). -#}
with source as (
    select * from {{ bronze('mes', 'mes_materials') }}
),

renamed as (
    select
        cast(batch_id as varchar) as batch_id,
        cast(lot_id as varchar) as lot_id,
        cast(material as varchar) as material,
        lower(cast(role as varchar)) as role,
        cast(quantity as double) as quantity,
        cast(unit as varchar) as unit,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
)

select *
from renamed
qualify {{ latest_ingestion(['batch_id']) }}
    and {{ latest_version(['batch_id', 'lot_id', 'role'], ['_source_file desc']) }}
