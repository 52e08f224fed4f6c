{#- Historian readings aligned to a uniform grid per bioreactor batch — the contract's
    ALIGNMENT SEMANTICS, shared with the Spark engine:
      grid:   ts = time_bucket(grid, inoculation_ts) + k·grid while ts <= harvest_ts
              (grid: the plant's, macro grid_seconds)
      value:  mean of the good (quality 192) readings of that unit/parameter in [ts, ts + grid)
              (a `state` signal: its last good reading in the step)
      gaps:   last value carried forward within the batch (never across batches, never back)
      age:    culture_age_h, maturity_pct; phase = MES phase whose [start_ts, end_ts) holds ts,
              or — when the plant names a phase signal — the phase of the state code at ts
    Wide: one column per signal of the plant's catalog (macro process_parameters; conditional
    aggregation, no PIVOT). Without a catalog (plain `dbt parse`) the model has no signal column.
    Incremental, delete+insert by batch_id: a run rebuilds only batches whose MES record or
    phases were loaded since its last run, or whose window touches a (unit, day) whose readings
    were (`_loaded_at` newer than the newest in this model; macros/incremental.sql); rebuilt
    batches get this invocation's `_loaded_at`.
    `_source_ingested_at` = newest bronze ingestion among the batch's inputs (lineage).
    Engine switch (macro alignment_engine): with 'spark' the Dagster asset first brings
    silver/process_readings_aligned up to date on Spark (lakehouse/spark/aligned_table.py: the
    same rows and `_source_ingested_at`, its own monotonic `_loaded_at`), and this model only
    copies the batches loaded there since its newest `_loaded_at`. -#}
-- depends_on: {{ ref('int_batches__windows') }}
-- depends_on: {{ ref('stg_historian__readings') }}
-- depends_on: {{ ref('stg_mes__phases') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='batch_id',
    on_schema_change='fail',
) }}

{%- set params = process_parameters() -%}
{%- set states = state_parameters() -%}
{%- set phase_sig = phase_signal() -%}
{%- set grid = grid_interval() -%}
{%- set watermark = incremental_watermark('_loaded_at') %}

{% if alignment_engine() == 'spark' -%}

select
    cast(batch_id as varchar) as batch_id,
    cast(unit_id as varchar) as unit_id,
    cast(ts as timestamptz) as ts,
    cast(culture_age_h as double) as culture_age_h,
    cast(maturity_pct as double) as maturity_pct,
    cast(phase as varchar) as phase,
    {%- for p in params %}
    cast("{{ p }}" as double) as "{{ p }}",
    {%- endfor %}
    cast(_source_ingested_at as timestamptz) as _source_ingested_at,
    cast(_loaded_at as timestamptz) as _loaded_at
from {{ lake_table('silver', 'process_readings_aligned') }}
{%- if is_incremental() %}
where _loaded_at > {{ watermark }}
{%- endif %}

{%- else %}

with windows as (
    select
        batch_id,
        unit_id,
        inoculation_ts,
        harvest_ts,
        time_bucket({{ grid }}, inoculation_ts) as grid_start,
        _source_ingested_at as mes_ingested_at,
        _loaded_at as mes_loaded_at
    from {{ ref('int_batches__windows') }}
    where inoculation_ts is not null
      and harvest_ts is not null
      and harvest_ts >= inoculation_ts
),

{% if is_incremental() %}
new_reading_days as (
    select distinct unit_id, reading_date
    from {{ ref('stg_historian__readings') }}
    where _loaded_at > {{ watermark }}
),
{% endif %}

batches as (
    select w.*
    from windows w
    {%- if is_incremental() %}
    where w.mes_loaded_at > {{ watermark }}
       or exists (
            select 1 from new_reading_days d
            where d.unit_id = w.unit_id
              and d.reading_date between cast(w.grid_start as date)
                                     and cast(w.harvest_ts + {{ grid }} as date)
       )
    {%- endif %}
),

-- the UTC days each batch window touches: an equi-join key that lets DuckDB push the date
-- range of the selected batches down into the readings scan (zone-map pruning)
batch_days as (
    select batch_id, unit_id, grid_start, harvest_ts,
           cast(unnest(generate_series(cast(grid_start as date),
                                       cast(harvest_ts + {{ grid }} as date),
                                       interval 1 day)) as date) as reading_date
    from batches
),

window_readings as (
    select
        d.batch_id,
        r.reading_ts,
        r.parameter,
        r.value,
        r.is_good,
        r._ingested_at,
        r.reading_ts >= d.grid_start and r.reading_ts < d.harvest_ts + {{ grid }} as in_window
    from batch_days d
    join {{ ref('stg_historian__readings') }} r
      on r.unit_id = d.unit_id and r.reading_date = d.reading_date
),

batch_loads as (
    -- newest ingestion among the readings of every day the window touches
    select batch_id, max(_ingested_at) as readings_ingested_at
    from window_readings
    group by batch_id
),

step_means as (
    select
        batch_id,
        time_bucket({{ grid }}, reading_ts) as ts
        {%- for p in params %},
        {%- if p in states %}
        arg_max(value, reading_ts) filter (where parameter = {{ sql_string(p) }}) as "{{ p }}"
        {%- else %}
        avg(value) filter (where parameter = {{ sql_string(p) }}) as "{{ p }}"
        {%- endif %}
        {%- endfor %}
    from window_readings
    where in_window and is_good
    group by all
),

grid as (
    select
        batch_id,
        unit_id,
        inoculation_ts,
        harvest_ts,
        mes_ingested_at,
        unnest(generate_series(grid_start, harvest_ts, {{ grid }})) as ts
    from batches
),

carried as (
    select
        g.batch_id,
        g.unit_id,
        g.ts,
        g.inoculation_ts,
        g.harvest_ts,
        g.mes_ingested_at
        {%- for p in params %},
        last_value(m."{{ p }}" ignore nulls) over batch_so_far as "{{ p }}"
        {%- endfor %}
    from grid g
    left join step_means m on m.batch_id = g.batch_id and m.ts = g.ts
    window batch_so_far as (partition by g.batch_id order by g.ts rows between unbounded preceding and current row)
),

phases as (
    select batch_id, phase, start_ts, end_ts
    from {{ ref('stg_mes__phases') }}
    where batch_id in (select batch_id from batches)
      and (end_ts is null or end_ts > start_ts)
),

with_phase as (
    select
        c.*,
        case when p.end_ts is null or c.ts < p.end_ts then p.phase end as phase
    from carried c
    asof left join phases p
      on p.batch_id = c.batch_id and c.ts >= p.start_ts
)

select
    w.batch_id,
    w.unit_id,
    w.ts,
    {{ hours_between('w.inoculation_ts', 'w.ts') }} as culture_age_h,
    100.0 * {{ hours_between('w.inoculation_ts', 'w.ts') }}
        / nullif({{ hours_between('w.inoculation_ts', 'w.harvest_ts') }}, 0) as maturity_pct,
    {%- if phase_sig %}
    {{ phase_from_state('w."' ~ phase_sig.signal ~ '"') }} as phase,
    {%- else %}
    w.phase,
    {%- endif %}
    {%- for p in params %}
    w."{{ p }}",
    {%- endfor %}
    greatest(w.mes_ingested_at, coalesce(l.readings_ingested_at, w.mes_ingested_at)) as _source_ingested_at,
    {{ load_stamp() }} as _loaded_at
from with_phase w
left join batch_loads l on l.batch_id = w.batch_id

{%- endif %}
