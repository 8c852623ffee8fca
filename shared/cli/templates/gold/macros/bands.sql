{#- Project macros are available in every model without an import. -#}
{% macro risk_band(column) -%}
CASE
  WHEN {{ column }} IS NULL THEN 'unknown'
  WHEN {{ column }} < 10 THEN 'low'
  WHEN {{ column }} < 30 THEN 'medium'
  ELSE 'high'
END
{%- endmacro %}
