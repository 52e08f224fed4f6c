{#- CMMS work orders: one row per work order, latest export (closing updates closed_at). -#}
with source as (
    select * from {{ bronze('cmms', 'cmms_work_orders') }}
),

renamed as (
    select
        cast(work_order_id as varchar) as work_order_id,
        cast(equipment_id as varchar) as equipment_id,
        cast(equipment_type as varchar) as equipment_type,
        lower(cast(work_type as varchar)) as work_type,
        nullif(trim(cast(failure_mode as varchar)), '') as failure_mode,
        lower(cast(priority as varchar)) as priority,
        cast(opened_at as timestamptz) as opened_at,
        cast(closed_at as timestamptz) as closed_at,
        cast(description as varchar) as description,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
)

select *
from renamed
qualify {{ latest_version(['work_order_id'], ['_ingested_at desc', 'closed_at desc nulls last', '_source_file desc']) }}
