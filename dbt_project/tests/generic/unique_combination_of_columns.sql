{% test unique_combination_of_columns(model, combination_of_columns, recent_column=None) %}
{#- Fails on every combination of the given columns that occurs more than once. With
    `recent_column`, only the recent rows are checked (see macros/test_window.sql). -#}
select {{ combination_of_columns | join(', ') }}, count(*) as n_rows
from {{ model }}
{%- if recent_column %}
where {{ recent_rows_filter(model, recent_column) }}
{%- endif %}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
