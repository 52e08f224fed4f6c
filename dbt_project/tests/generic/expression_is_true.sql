{% test expression_is_true(model, expression, column_name=None) %}
{#- Fails on every row where the SQL expression is false (nulls pass: use not_null for those). -#}
select *
from {{ model }}
where not coalesce(({{ expression | replace('{column}', column_name or '') }}), true)
{% endtest %}
