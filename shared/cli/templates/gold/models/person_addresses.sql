{{ config(materialized='table', tags=['daily']) }}
-- Current addresses of current people.
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
