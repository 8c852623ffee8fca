-- A custom test: the rows it returns fail it.
SELECT person_id, risk_score FROM {{ ref('dim_person') }} WHERE risk_score < 0
