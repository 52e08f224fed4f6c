{#- Batch genealogy: bioreactor batch -> harvest lot -> capture pool -> UF/DF drug substance
    lot, with the MES records and skid runs that made each hop. One row per lineage path. -#}
select
    batch_id,
    unit_id,
    harvest_lot,
    capture_lot,
    ds_lot,
    capture_record_id,
    chrom_run_ids,
    n_capture_cycles,
    ufdf_record_id,
    filtration_run_ids,
    harvest_ts,
    md5(concat_ws('|', batch_id, harvest_lot, coalesce(capture_lot, ''), coalesce(ds_lot, ''))) as genealogy_key
from {{ ref('int_lot_genealogy__paths') }}
