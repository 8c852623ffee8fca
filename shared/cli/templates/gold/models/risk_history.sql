{{ config(materialized='insert_by_chunk', chunk_by='valid_from', chunk_size='day', unique_key=['person_id', 'valid_from']) }}
-- Every risk score a person ever had, built one day of history at a time.
SELECT person_id, valid_from, valid_to, risk_score
FROM {{ source('nomis', 'people') }}
