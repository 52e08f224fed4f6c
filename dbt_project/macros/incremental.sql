{#- Incremental processing without silent loss.

    Two rules, one per boundary:
    * bronze -> staging: commit order. An incremental staging model remembers the Delta
      version of its bronze table it processed (`_bronze_version`) and, on the next run, takes
      the partitions of the data files committed after it (`bronze_changes`). Ingestion runs
      overlap, and a slow run commits rows stamped (`_ingested_at`) before rows a faster run
      committed earlier: a watermark on `_ingested_at` would skip them for good.
    * staging -> downstream: the warehouse's own load order. Every row version a staging model
      takes in for the first time is stamped `_loaded_at` = the start of that dbt invocation
      (`load_stamp`), which on-run-start (`record_load`) keeps strictly increasing from one
      invocation to the next. Downstream incremental models pick up what was loaded after their
      newest `_loaded_at` (`incremental_watermark`), and stamp what they rebuild the same way. -#}

{#- The start of this dbt invocation as a timestamptz literal (UTC): the `_loaded_at` of every
    row a model (re)builds in this invocation. -#}
{% macro load_stamp() -%}
  cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}+00' as timestamptz)
{%- endmacro %}

{#- on-run-start: remember the invocation in lakehouse_state.dbt_loads and refuse to stamp
    rows with a time not after the previous invocation's (a clock set back would let
    downstream models skip rows loaded in between). -#}
{% macro record_load() -%}
  {%- if execute -%}
    {%- do run_query("create schema if not exists lakehouse_state") -%}
    {%- do run_query("create table if not exists lakehouse_state.dbt_loads "
                     "(invocation_id varchar, command varchar, run_started_at timestamptz)") -%}
    {%- set last = run_query("select cast(max(run_started_at) >= " ~ load_stamp() ~ " as boolean), "
                             "cast(max(run_started_at) as varchar) from lakehouse_state.dbt_loads") -%}
    {%- if last.columns[0].values()[0] -%}
      {{ exceptions.raise_compiler_error("this dbt invocation started at " ~ run_started_at ~
          ", not after the previous one (" ~ last.columns[1].values()[0] ~ "): the clock went back; "
          ~ "fix the clock or rebuild with --full-refresh") }}
    {%- endif -%}
    {%- do run_query("insert into lakehouse_state.dbt_loads values (" ~ sql_string(invocation_id) ~ ", "
                     ~ sql_string(flags.WHICH) ~ ", " ~ load_stamp() ~ ")") -%}
  {%- endif -%}
  select 1
{%- endmacro %}

{#- Newest value of `column` in the current incremental model, as a SQL timestamptz literal
    (the epoch on a first/full build or at parse time). Downstream models compare their
    inputs' `_loaded_at` against it to pick only what was loaded since. -#}
{% macro incremental_watermark(column='_loaded_at') -%}
  {%- set epoch = "timestamptz '1970-01-01 00:00:00+00'" -%}
  {%- if execute and is_incremental() -%}
    {%- set res = run_query("select cast(max(" ~ column ~ ") as varchar) from " ~ this) -%}
    {%- set value = res.columns[0].values()[0] if res and res.rows | length > 0 else none -%}
    {%- if value is none -%}{{ return(epoch) }}{%- endif -%}
    {{ return("timestamptz '" ~ value ~ "'") }}
  {%- else -%}
    {{ return(epoch) }}
  {%- endif -%}
{%- endmacro %}

{#- Change capture of a bronze table for the current (incremental) model:
      {'version': newest Delta version of the table (-1: not in the lake),
       'values': partition values of `partition_column` of the data files committed after the
                 version this model processed last (max of its `_bronze_version`), or none on a
                 full build (everything)}.
    The model stores `version` in `_bronze_version` on the rows it (re)builds. -#}
{% macro bronze_changes(table_name, partition_column) -%}
  {%- if not execute or table_name in missing_bronze() -%}
    {{ return({'version': -1, 'values': none if not is_incremental() else []}) }}
  {%- endif -%}
  {%- set uri = sql_string(lake_uri('bronze', table_name)) -%}
  {%- set current = run_query("select lakehouse_delta_version(" ~ uri ~ ")").columns[0].values()[0] -%}
  {%- if not is_incremental() -%}
    {{ return({'version': current, 'values': none}) }}
  {%- endif -%}
  {%- set since = run_query("select coalesce(max(_bronze_version), -1) from " ~ this).columns[0].values()[0] -%}
  {%- set values = run_query("select unnest(lakehouse_delta_new_partitions(" ~ uri ~ ", " ~ since ~ ", "
                             ~ current ~ ", " ~ sql_string(partition_column) ~ "))").columns[0].values() -%}
  {{ return({'version': current, 'values': values | list}) }}
{%- endmacro %}

{#- `_loaded_at` of a staging model that rebuilds rows it held before (a full-rebuild table, or
    the days an incremental model reprocesses): a row whose identity (`identity` columns) the
    previous build already held keeps its stamp; a new row version gets this invocation's.
      select s.*, {{ "{{" }} loaded_at() {{ "}}" }} as _loaded_at
      from final s {{ "{{" }} previous_loads(['batch_id', '_source_file', '_ingested_at']) {{ "}}" }}
    `where`: a filter on the previous build (the days being rebuilt); `unique`: the identity
    is a key of the model (no grouping needed). -#}
{% macro _previous_build() -%}
  {%- if not execute or flags.FULL_REFRESH -%}{{ return(none) }}{%- endif -%}
  {%- set prev = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
  {%- if prev is none -%}{{ return(none) }}{%- endif -%}
  {%- set names = adapter.get_columns_in_relation(prev) | map(attribute='name') | list -%}
  {{ return(prev if '_loaded_at' in names else none) }}
{%- endmacro %}

{% macro previous_loads(identity, where=none, unique=false) -%}
  {%- set prev = _previous_build() -%}
  {%- if prev is not none %}
    left join (
        select {{ identity | join(', ') }}, {{ '_loaded_at' if unique else 'min(_loaded_at) as _loaded_at' }}
        from {{ prev }}
        {%- if where %}
        where {{ where }}
        {%- endif %}
        {%- if not unique %}
        group by all
        {%- endif %}
    ) _prev using ({{ identity | join(', ') }})
  {%- endif -%}
{%- endmacro %}

{% macro loaded_at() -%}
  {%- if _previous_build() is not none -%}
    coalesce(_prev._loaded_at, {{ load_stamp() }})
  {%- else -%}
    {{ load_stamp() }}
  {%- endif -%}
{%- endmacro %}
