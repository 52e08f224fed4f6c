{#- Chromatography and filtration runs tied to the bioreactor batch they process, through the
    lot genealogy (capture: its input harvest lot; UF/DF: its input capture pool, whose own
    input is a harvest lot). -#}
with paths as (
    select * from {{ ref('int_lot_genealogy__paths') }}
),

chrom as (
    select r.run_id, 'chromatography' as run_type, r.input_lot, r.output_lot,
           p.batch_id as bioreactor_batch_id, p.harvest_lot
    from {{ ref('stg_chromatography__runs') }} r
    left join (select distinct batch_id, harvest_lot from paths) p on p.harvest_lot = r.input_lot
),

filtration as (
    select r.run_id, 'filtration' as run_type, r.input_lot, r.output_lot,
           p.batch_id as bioreactor_batch_id, p.harvest_lot
    from {{ ref('stg_filtration__runs') }} r
    left join (select distinct batch_id, harvest_lot, capture_lot from paths where capture_lot is not null) p
      on p.capture_lot = r.input_lot
)

select * from chrom
union all
select * from filtration
