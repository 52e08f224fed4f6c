{#- Lineage paths from each harvested bioreactor batch: harvest lot (HCCF) -> capture pool
    -> UF/DF drug substance lot, following genealogy edges hop by hop (a harvest split over
    several capture cycles or pools gives several paths). Batches whose downstream has not
    happened yet keep null capture/DS lots. -#}
with batches as (
    select batch_id, unit_id, harvest_ts, harvest_lot
    from {{ ref('int_batches__windows') }}
    where harvest_lot is not null
),

edges as (
    select * from {{ ref('int_lot_genealogy__edges') }}
)

select
    b.batch_id,
    b.unit_id,
    b.harvest_ts,
    b.harvest_lot,
    capture.output_lot as capture_lot,
    capture.mes_record_id as capture_record_id,
    capture.chrom_run_ids,
    capture.n_chrom_runs as n_capture_cycles,
    ufdf.output_lot as ds_lot,
    ufdf.mes_record_id as ufdf_record_id,
    ufdf.filtration_run_ids
from batches b
left join edges capture on capture.input_lot = b.harvest_lot
left join edges ufdf on ufdf.input_lot = capture.output_lot
