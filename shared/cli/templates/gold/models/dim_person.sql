{{ config(materialized='table', tags=['daily']) }}
-- One row per current person, with a stable surrogate key and a risk band.
SELECT
  {{ surrogate_key(['person_id']) }} AS person_key,
  person_id,
  first_name,
  last_name,
  date_of_birth,
  risk_score,
  {{ risk_band('risk_score') }} AS risk_band,
  current_since
FROM {{ ref('current_nomis_people') }}
