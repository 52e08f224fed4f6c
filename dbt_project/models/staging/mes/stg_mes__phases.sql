{#- ISA-88 procedure of each MES record. A record re-exported later replaces all its phases
    (the latest ingested version of the record wins as a whole). `_loaded_at`: when the
    warehouse first took in this version of the phase (see macros/incremental.sql). -#}
with source as (
    select * from {{ bronze('mes', 'mes_phases') }}
),

renamed as (
    select
        cast(batch_id as varchar) as batch_id,
        cast(unit_procedure as varchar) as unit_procedure,
        cast(operation as varchar) as operation,
        cast(phase as varchar) as phase,
        cast(phase_seq as integer) as phase_seq,
        cast(start_ts as timestamptz) as start_ts,
        cast(end_ts as timestamptz) as end_ts,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
),

latest_record as (
    select *
    from renamed
    qualify {{ latest_ingestion(['batch_id']) }}
),

latest as (
    select *
    from latest_record
    qualify {{ latest_version(['batch_id', 'phase_seq'], ['_source_file desc', 'start_ts asc']) }}
)

select s.*, {{ loaded_at() }} as _loaded_at
from latest s {{ previous_loads(['batch_id', 'phase_seq', '_source_file', '_ingested_at']) }}
