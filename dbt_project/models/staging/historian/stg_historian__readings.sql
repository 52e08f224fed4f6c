{#- Historian readings, long format: typed, canonical units (bronze holds the signal catalog's units: the
    importer converted them), one row per physical reading.
    The same reading (unit, tag, ts) ingested from several versions of a day file keeps the
    latest `_ingested_at`. Incremental per UTC day: a run reprocesses only the days that
    received data files in bronze commits after the version it processed last
    (`_bronze_version`; commit order, see macros/incremental.sql) and replaces them. A reading
    version the previous build already held keeps its `_loaded_at`; a new one gets this
    invocation's, so downstream models rebuild only the (unit, day)s whose data changed. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='reading_date',
    on_schema_change='fail',
) }}

{%- set changes = bronze_changes('historian_readings', 'date') -%}
{%- set new_dates = changes['values'] or [] -%}
{%- set date_list -%}
  {% for d in new_dates %}date '{{ d }}'{{ ', ' if not loop.last }}{% endfor %}{% if not new_dates %}null{% endif %}
{%- endset %}

with source as (
    select * from {{ bronze('historian', 'historian_readings') }}
    {%- if is_incremental() %}
    where date in ({{ date_list }})
    {%- endif %}
),

renamed as (
    select
        cast(ts as timestamptz) as reading_ts,
        cast(unit_id as varchar) as unit_id,
        cast(tag as varchar) as tag,
        cast(parameter as varchar) as parameter,
        cast(value as double) as value,
        cast(eng_unit as varchar) as eng_unit,
        cast(quality as smallint) as quality,
        cast(quality as smallint) = 192 as is_good,
        cast(date as date) as reading_date,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at,
        cast({{ changes['version'] }} as bigint) as _bronze_version
    from source
    where parameter is not null
),

deduplicated as (
    select *
    from renamed
    qualify {{ latest_version(['unit_id', 'tag', 'reading_ts']) }}
)

select s.*, {{ loaded_at() }} as _loaded_at
from deduplicated s {{ previous_loads(['unit_id', 'tag', 'reading_ts', '_source_file', '_ingested_at'],
                                      where='reading_date in (' ~ date_list ~ ')', unique=true) }}
