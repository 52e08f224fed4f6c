{#- MES electronic batch records (bioreactor, capture, UF/DF): latest version of each record.
    `_loaded_at`: when the warehouse first took in this version of the record (see
    macros/incremental.sql). -#}
with source as (
    select * from {{ bronze('mes', 'mes_batches') }}
),

renamed as (
    select
        cast(batch_id as varchar) as batch_id,
        lower(cast(record_type as varchar)) as record_type,
        cast(product as varchar) as product,
        cast(unit_id as varchar) as unit_id,
        cast(recipe_id as varchar) as recipe_id,
        lower(cast(status as varchar)) as status,
        cast(start_ts as timestamptz) as start_ts,
        cast(end_ts as timestamptz) as end_ts,
        cast(output_lot as varchar) as output_lot,
        cast(setpoints_json as varchar) as setpoints_json,
        cast(temperature_c as double) as temperature_c,
        cast(temp_shift_day as double) as temp_shift_day,
        cast(temp_shift_c as double) as temp_shift_c,
        cast(ph as double) as ph,
        cast(do_pct as double) as do_pct,
        cast(feed_rate_pct_per_day as double) as feed_rate_pct_per_day,
        cast(seed_density_e6_per_ml as double) as seed_density_e6_per_ml,
        cast(working_volume_l as double) as working_volume_l,
        cast(_source_file as varchar) as _source_file,
        cast(_ingested_at as timestamptz) as _ingested_at
    from source
),

latest as (
    select *
    from renamed
    qualify {{ latest_version(['batch_id']) }}
)

select s.*, {{ loaded_at() }} as _loaded_at
from latest s {{ previous_loads(['batch_id', '_source_file', '_ingested_at']) }}
