{% test asof_never_in_future(model, analytes, time_column='ts', recent_only=true) %}
{#- An as-of joined value must be known at the row's time: for every analyte,
    <analyte>_result_time <= ts and <analyte>_sample_time <= <analyte>_result_time; a value
    without its result time is a failure too. Recent rows only unless recent_only=false. -#}
select *
from {{ model }}
where ({% if recent_only %}{{ recent_rows_filter(model, time_column) }}{% else %}true{% endif %})
  and (false
{%- for a in analytes %}
   or ({{ a }} is not null and {{ a }}_result_time is null)
   or {{ a }}_result_time > {{ time_column }}
   or {{ a }}_sample_time > {{ a }}_result_time
{%- endfor %}
  )
{% endtest %}
