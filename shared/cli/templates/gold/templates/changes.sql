{#- How often each key changed, and when it was first and last seen (a view). -#}
{{ config(materialized='view', tags=['history']) }}
SELECT
  {{ table.primary_key | join(', ') }},
  COUNT(*) AS versions,
  MIN(valid_from) AS first_seen,
  MAX(valid_from) AS last_changed
FROM {{ source(table.source, table.name) }}
GROUP BY {{ table.primary_key | join(', ') }}
