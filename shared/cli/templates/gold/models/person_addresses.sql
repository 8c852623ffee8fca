{{ config(materialized='incremental', unique_key='address_id', tags=['daily']) }}
-- Current addresses with their person; each run merges the addresses that changed.
SELECT
  a.address_id,
  a.person_id,
  p.person_key,
  a.line1,
  a.postcode,
  a.is_primary,
  a.current_since
FROM {{ ref('current_nomis_addresses') }} a
JOIN {{ ref('dim_person') }} p ON p.person_id = a.person_id
{% if is_incremental() %}
WHERE a.current_since >= (SELECT COALESCE(MAX(current_since), TIMESTAMP '1970-01-01 00:00:00') FROM {{ this }})
{% endif %}
