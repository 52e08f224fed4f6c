{#- Deviations recorded against batches (bronze mes_deviations, from a plant's deviation list):
    the latest ingested version of each deviation id. `_loaded_at`: when the warehouse first
    took in this version (see macros/incremental.sql). -#}
with source as (
    select * from {{ bronze('mes', 'mes_deviations') }}
),

renamed as (
    select
        cast(deviation_id as varchar) as deviation_id,
        cast(batch_id as varchar) as batch_id,
        cast(onset_ts as timestamptz) as onset_ts,
        cast(category as varchar) as category,
        cast(description as varchar) as description,
        cast(opened_ts as timestamptz) as opened_ts,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
),

latest as (
    select *
    from renamed
    qualify row_number() over (partition by deviation_id order by _ingested_at desc, _source_file desc) = 1
)

select s.*, {{ loaded_at() }} as _loaded_at
from latest s {{ previous_loads(['deviation_id', '_source_file', '_ingested_at']) }}
