{#- Every released LIMS result, with the culture age of the bioreactor batch at sampling. -#}
select
    l.batch_id,
    l.sample_id,
    l.sample_time,
    l.result_time,
    l.analyte,
    l.value,
    l.unit,
    l.method,
    {{ hours_between('w.inoculation_ts', 'l.sample_time') }} as culture_age_h,
    l.result_delay_h,
    w.batch_id is not null as is_bioreactor_sample
from {{ ref('stg_lims__results') }} l
left join {{ ref('int_batches__windows') }} w on w.batch_id = l.batch_id
