{#- Historian readings, long format: typed, canonical units, one row per physical reading.
    The same reading (unit, tag, ts) ingested from several versions of a day file keeps the
    latest `_ingested_at`. Incremental per UTC day: a run reprocesses only the days that
    received new bronze rows (partition pruning on bronze `date`) and replaces them. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='reading_date',
    on_schema_change='fail',
) }}

{%- set new_dates = [] -%}
{%- if execute and is_incremental() -%}
  {%- set new_dates_sql -%}
    select distinct cast(date as varchar) from {{ bronze('historian', 'historian_readings') }}
    where _ingested_at > {{ incremental_watermark('_ingested_at') }}
    order by 1
  {%- endset -%}
  {%- set new_dates = run_query(new_dates_sql).columns[0].values() -%}
{%- endif %}

with source as (
    select * from {{ bronze('historian', 'historian_readings') }}
    {%- if is_incremental() %}
    where date in ({% for d in new_dates %}date '{{ d }}'{{ ', ' if not loop.last }}{% endfor %}{% if not new_dates %}null{% endif %})
    {%- endif %}
),

renamed as (
    select
        cast(ts as timestamptz) as reading_ts,
        cast(unit_id as varchar) as unit_id,
        cast(tag as varchar) as tag,
        cast(parameter as varchar) as parameter,
        cast({{ canonical_value('value', 'eng_unit') }} as double) as value,
        cast({{ canonical_unit('eng_unit') }} as varchar) as eng_unit,
        cast(quality as smallint) as quality,
        cast(quality as smallint) = 192 as is_good,
        cast(date as date) as reading_date,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
    where parameter is not null
),

deduplicated as (
    select *
    from renamed
    qualify row_number() over (
        partition by unit_id, tag, reading_ts
        order by _ingested_at desc, _source_file desc
    ) = 1
)

select * from deduplicated
