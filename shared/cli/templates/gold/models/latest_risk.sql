{{ config(materialized='incremental', unique_key='person_id', tags=['daily']) }}
-- The latest risk score of everyone ever seen: each run merges the people whose version changed
-- since the last run (people who left keep their last score).
SELECT person_id, risk_score, risk_band, current_since
FROM {{ ref('dim_person') }}
{% if is_incremental() %}
WHERE current_since > (SELECT COALESCE(MAX(current_since), TIMESTAMP '1970-01-01 00:00:00') FROM {{ this }})
{% endif %}
