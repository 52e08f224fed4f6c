{#- ISA-88 phases of every MES record (bioreactor, capture, UF/DF), one row per phase. -#}
select
    p.batch_id,
    b.record_type,
    b.unit_id,
    p.unit_procedure,
    p.operation,
    p.phase,
    p.phase_seq,
    p.start_ts,
    p.end_ts,
    {{ hours_between('p.start_ts', 'p.end_ts') }} as duration_h
from {{ ref('stg_mes__phases') }} p
left join {{ ref('stg_mes__batches') }} b on b.batch_id = p.batch_id
