"""The province configuration: schema, YAML with marks, located errors, cross-checks, loading."""
