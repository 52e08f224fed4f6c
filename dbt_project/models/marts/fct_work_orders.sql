{#- CMMS work orders with the equipment's type and unit, and the bioreactor batch that was
    running on that unit when the order was opened. -#}
with work_orders as (
    select * from {{ ref('stg_cmms__work_orders') }}
),

running as (
    select batch_id, unit_id, start_ts, end_ts from {{ ref('int_batches__windows') }}
)

select
    wo.work_order_id,
    wo.equipment_id,
    coalesce({{ equipment_type_from_id('wo.equipment_id') }}, wo.equipment_type, 'unknown') as equipment_type,
    {{ parent_unit_from_id('wo.equipment_id') }} as unit_id,
    wo.work_type,
    wo.failure_mode,
    wo.priority,
    wo.opened_at,
    wo.closed_at,
    wo.closed_at is null as is_open,
    {{ hours_between('wo.opened_at', 'wo.closed_at') }} as time_to_close_h,
    wo.description,
    r.batch_id as running_batch_id
from work_orders wo
left join running r
  on r.unit_id = {{ parent_unit_from_id('wo.equipment_id') }}
 and wo.opened_at >= r.start_ts
 and wo.opened_at < r.end_ts
qualify row_number() over (partition by wo.work_order_id order by r.start_ts desc nulls last) = 1
