{#- One row per bioreactor batch with its alignment window: inoculation_ts = start of the
    MES `Inoculate` phase, harvest_ts = start of the `Harvest` phase (contract). Batches lacking
    either (e.g. aborted before harvest) keep nulls and get no aligned readings.
    `_source_ingested_at`: newest bronze ingestion of the record and its phases (lineage);
    `_loaded_at`: when the warehouse took in the newest of them (what incremental models
    downstream compare, see macros/incremental.sql). -#}
with batches as (
    select * from {{ ref('stg_mes__batches') }}
    where record_type = 'bioreactor'
),

phases as (
    select * from {{ ref('stg_mes__phases') }}
),

milestones as (
    select
        batch_id,
        min(start_ts) filter (where lower(phase) = 'inoculate') as inoculation_ts,
        min(start_ts) filter (where lower(phase) = 'harvest') as harvest_ts,
        max(_ingested_at) as phases_ingested_at,
        max(_loaded_at) as phases_loaded_at
    from phases
    group by batch_id
)

select
    b.batch_id,
    b.unit_id,
    b.product,
    b.recipe_id,
    b.status,
    b.start_ts,
    b.end_ts,
    m.inoculation_ts,
    m.harvest_ts,
    b.output_lot as harvest_lot,
    b.temperature_c,
    b.temp_shift_day,
    b.temp_shift_c,
    b.ph,
    b.do_pct,
    b.feed_rate_pct_per_day,
    b.seed_density_e6_per_ml,
    b.working_volume_l,
    greatest(b._ingested_at, coalesce(m.phases_ingested_at, b._ingested_at)) as _source_ingested_at,
    greatest(b._loaded_at, coalesce(m.phases_loaded_at, b._loaded_at)) as _loaded_at
from batches b
left join milestones m on m.batch_id = b.batch_id
