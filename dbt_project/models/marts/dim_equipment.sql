{#- Every piece of equipment seen anywhere: bioreactors and their agitator / feed pump / DO
    probe (from the historian), chromatography skids and Protein A columns, TFF skids and
    membrane cassettes (from run exports), and anything named in a CMMS work order. -#}
with bioreactors as (
    select unit_id, min(reading_date) as first_seen_date, max(reading_date) as last_seen_date
    from {{ ref('int_equipment__historian_daily') }}
    group by unit_id
    union all
    select unit_id, min(cast(start_ts as date)), max(cast(end_ts as date))
    from {{ ref('int_batches__windows') }}
    group by unit_id
),

historian_equipment as (
    select unit_id || suffix as equipment_id, unit_id,
           min(first_seen_date) as first_seen_date, max(last_seen_date) as last_seen_date,
           null::integer as max_use_count
    from bioreactors
    cross join (values (''), ('-AGT'), ('-FP'), ('-DO')) as s(suffix)  -- noqa: AL01, AL05, LT01
    group by all
),

chrom as (
    select column_id as equipment_id, arg_max(skid_id, start_ts) as unit_id,
           min(cast(start_ts as date)) as first_seen_date, max(cast(end_ts as date)) as last_seen_date,
           max(column_cycle) as max_use_count
    from {{ ref('stg_chromatography__runs') }}
    group by column_id
    union all
    select skid_id as equipment_id, skid_id as unit_id, min(cast(start_ts as date)), max(cast(end_ts as date)), count(*)::integer
    from {{ ref('stg_chromatography__runs') }}
    group by skid_id
),

filtration as (
    select membrane_id as equipment_id, arg_max(skid_id, start_ts) as unit_id,
           min(cast(start_ts as date)) as first_seen_date, max(cast(end_ts as date)) as last_seen_date,
           max(membrane_use) as max_use_count
    from {{ ref('stg_filtration__runs') }}
    group by membrane_id
    union all
    select skid_id as equipment_id, skid_id as unit_id, min(cast(start_ts as date)), max(cast(end_ts as date)), count(*)::integer
    from {{ ref('stg_filtration__runs') }}
    group by skid_id
),

work_orders as (
    select
        equipment_id,
        arg_max(equipment_type, opened_at) as cmms_equipment_type,
        count(*) as n_work_orders,
        count(*) filter (where work_type = 'corrective') as n_corrective_work_orders,
        max(opened_at) as last_work_order_at,
        min(cast(opened_at as date)) as first_seen_date,
        max(cast(coalesce(closed_at, opened_at) as date)) as last_seen_date
    from {{ ref('stg_cmms__work_orders') }}
    group by equipment_id
),

seen as (
    select equipment_id, unit_id, first_seen_date, last_seen_date, max_use_count from historian_equipment
    union all select * from chrom
    union all select * from filtration
    union all
    select equipment_id, null, first_seen_date, last_seen_date, null from work_orders
),

equipment as (
    select
        equipment_id,
        max(unit_id) as unit_id,
        min(first_seen_date) as first_seen_date,
        max(last_seen_date) as last_seen_date,
        max(max_use_count) as max_use_count
    from seen
    group by equipment_id
)

select
    e.equipment_id,
    coalesce({{ equipment_type_from_id('e.equipment_id') }}, wo.cmms_equipment_type, 'unknown') as equipment_type,
    coalesce(e.unit_id, {{ parent_unit_from_id('e.equipment_id') }}) as unit_id,
    case
        when {{ equipment_type_from_id('e.equipment_id') }} in ('bioreactor', 'chromatography_skid', 'tff_skid') then 'unit'
        when {{ equipment_type_from_id('e.equipment_id') }} in ('chromatography_column', 'tff_membrane') then 'consumable'
        else 'component'
    end as equipment_class,
    e.first_seen_date,
    e.last_seen_date,
    e.max_use_count,
    coalesce(wo.n_work_orders, 0) as n_work_orders,
    coalesce(wo.n_corrective_work_orders, 0) as n_corrective_work_orders,
    wo.last_work_order_at
from equipment e
left join work_orders wo on wo.equipment_id = e.equipment_id
