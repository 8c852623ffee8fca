{#- The current version of every key of a silver table (generated for each table that lists
    `current` under `generate:`). Parameters: materialized (default table), exclude_deleted. -#}
{{ config(materialized=params.materialized | default('table'), tags=['current']) }}
SELECT
{%- for c in table.columns %}
  {{ c.name }}{{ "," if not loop.last }}
{%- endfor %},
  valid_from AS current_since
FROM {{ source(table.source, table.name) }}
WHERE is_current{% if params.exclude_deleted | default(false) %} AND NOT is_deleted{% endif %}
