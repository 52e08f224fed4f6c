{% test aligned_grid_is_complete(model, windows_model, recent_only=true) %}
{#- Every batch with an alignment window has exactly one row per grid step from
    time_bucket(grid, inoculation_ts) to harvest_ts: no gaps, no duplicates, nothing outside.
    Checks the batches harvested within the recent test window unless recent_only=false. -#}
with windows as (
    select * from {{ windows_model }}
    where inoculation_ts is not null and harvest_ts is not null and harvest_ts >= inoculation_ts
    {%- if recent_only %}
      and {{ recent_rows_filter(windows_model, 'harvest_ts') }}
    {%- endif %}
),
expected as (
    select
        batch_id,
        time_bucket({{ grid_interval() }}, inoculation_ts) as first_ts,
        time_bucket({{ grid_interval() }}, inoculation_ts)
            + to_seconds(cast({{ grid_seconds() }} as bigint)
                * (date_diff('microsecond', time_bucket({{ grid_interval() }}, inoculation_ts), harvest_ts)
                   // (1000000 * cast({{ grid_seconds() }} as bigint)))) as last_ts
    from windows
),
actual as (
    select batch_id, count(*) as n_rows, count(distinct ts) as n_ts, min(ts) as first_ts, max(ts) as last_ts
    from {{ model }}
    {%- if recent_only %}
    where batch_id in (select batch_id from windows)
    {%- endif %}
    group by batch_id
)
select e.batch_id, e.first_ts, e.last_ts, a.first_ts as actual_first_ts, a.last_ts as actual_last_ts,
       a.n_rows, a.n_ts
from expected e
full outer join actual a on a.batch_id = e.batch_id
where a.batch_id is null or e.batch_id is null
   or a.first_ts <> e.first_ts or a.last_ts <> e.last_ts
   or a.n_rows <> a.n_ts
   or a.n_rows <> 1 + date_diff('microsecond', e.first_ts, e.last_ts) // (1000000 * cast({{ grid_seconds() }} as bigint))
{% endtest %}
