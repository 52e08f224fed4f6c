{#- Data tests on the big incremental tables check the most recent data only: rows whose
    `column` lies within var('data_test_window_days') (default 7) days of the table's newest
    value. A run only adds or replaces recent data, so re-testing all history on every run
    would make each run cost grow with the lake. Full audit:
    dbt test --vars '{data_test_window_days: 100000}'. -#}
{% macro recent_rows_filter(relation, column) -%}
  {{ column }} >= (select max({{ column }}) from {{ relation }})
                  - to_days(cast({{ var('data_test_window_days', 7) }} as integer))
{%- endmacro %}
