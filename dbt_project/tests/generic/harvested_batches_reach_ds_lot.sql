{% test harvested_batches_reach_ds_lot(model, batches_model, grace_h=72) %}
{#- Every harvested bioreactor batch older than `grace_h` hours (relative to the newest MES
    record end) has a genealogy path down to a UF/DF drug substance lot. Applies only when the
    lake has downstream records at all (some DS lot): a plant that imports only its bioreactor
    data (batch list, `lakehouse import`) has no genealogy to check. -#}
with latest as (
    select max(end_ts) as newest_end from {{ batches_model }}
),
harvested as (
    select b.batch_id
    from {{ batches_model }} b, latest
    where b.harvest_ts is not null
      and b.harvest_ts < latest.newest_end - to_hours(cast({{ grace_h }} as bigint))
)
select h.batch_id
from harvested h
where exists (select 1 from {{ model }} where ds_lot is not null)
  and not exists (
    select 1 from {{ model }} g where g.batch_id = h.batch_id and g.ds_lot is not null
)
{% endtest %}
