{#- Aligned, wide process readings — one row per bioreactor batch per grid step, one column per
    signal of the plant's catalog — as defined by the contract's alignment semantics (see
    int_process_readings__aligned). Incremental,
    delete+insert by batch_id: takes only the batches the aligned model rebuilt since its last
    run (`_loaded_at`, macros/incremental.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='batch_id',
    on_schema_change='fail',
) }}

select
    batch_id,
    unit_id,
    ts,
    culture_age_h,
    maturity_pct,
    phase,
    {%- for p in process_parameters() %}
    "{{ p }}",
    {%- endfor %}
    _source_ingested_at,
    _loaded_at
from {{ ref('int_process_readings__aligned') }}
{%- if is_incremental() %}
where _loaded_at > {{ incremental_watermark('_loaded_at') }}
{%- endif %}
