{#- "Latest version wins": the staging models keep one row per record identity.

    latest_version(partition_by, order_by): the window condition that keeps, per
    `partition_by`, the first row in `order_by` order — by default the latest ingestion
    (`_ingested_at desc`, then `_source_file desc` as the tie-break). Use it in a QUALIFY:
        qualify {{ latest_version(['run_id']) }}

    latest_ingestion(partition_by): the condition that keeps every row of the latest
    ingested version of a whole record (e.g. all phases of a batch record, all points of a
    curve export): `_ingested_at = max(_ingested_at) over (partition by …)`. -#}
{% macro latest_version(partition_by, order_by=['_ingested_at desc', '_source_file desc']) -%}
row_number() over (partition by {{ partition_by | join(', ') }} order by {{ order_by | join(', ') }}) = 1
{%- endmacro %}

{% macro latest_ingestion(partition_by) -%}
_ingested_at = max(_ingested_at) over (partition by {{ partition_by | join(', ') }})
{%- endmacro %}
