{#- Every lot genealogy edge (input_lot -> output_lot) once, from the MES records and,
    as a second witness, from the skids' run.json (chromatography: harvest lot -> capture pool,
    filtration: capture pool -> drug substance lot). -#}
with mes_edges as (
    select input_lot, output_lot, record_type, batch_id as mes_record_id,
           null::varchar as run_id, null::varchar as run_type
    from {{ ref('stg_mes__genealogy') }}
),

chrom_edges as (
    select input_lot, output_lot, 'capture' as record_type, null::varchar as mes_record_id,
           run_id, 'chromatography' as run_type
    from {{ ref('stg_chromatography__runs') }}
    where input_lot is not null and output_lot is not null
),

filtration_edges as (
    select input_lot, output_lot, 'ufdf' as record_type, null::varchar as mes_record_id,
           run_id, 'filtration' as run_type
    from {{ ref('stg_filtration__runs') }}
    where input_lot is not null and output_lot is not null
),

all_edges as (
    select * from mes_edges
    union all select * from chrom_edges
    union all select * from filtration_edges
)

select
    input_lot,
    output_lot,
    coalesce(max(record_type) filter (where mes_record_id is not null), max(record_type)) as record_type,
    max(mes_record_id) as mes_record_id,
    -- a harvest is often captured in several column cycles into one pool: keep every run
    string_agg(distinct run_id, ',' order by run_id) filter (where run_type = 'chromatography') as chrom_run_ids,
    count(distinct run_id) filter (where run_type = 'chromatography') as n_chrom_runs,
    string_agg(distinct run_id, ',' order by run_id) filter (where run_type = 'filtration') as filtration_run_ids,
    count(distinct run_id) filter (where run_type = 'filtration') as n_filtration_runs,
    bool_or(mes_record_id is not null) as in_mes,
    bool_or(run_id is not null) as in_skid_export
from all_edges
group by input_lot, output_lot
