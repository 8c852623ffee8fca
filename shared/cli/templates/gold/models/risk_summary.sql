{{ config(materialized='view') }}
-- People per risk band, as of the published dim_person.
SELECT risk_band, COUNT(*) AS people
FROM {{ ref('dim_person') }}
GROUP BY risk_band
