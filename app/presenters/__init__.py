"""Presenters: the one boundary where domain values become the API's response schemas.

The rule, for every resource:

- Services (app.services) return domain values: ORM rows, and frozen dataclasses of their own
  (cells, movements, coverage groups, at-risk findings). They never build a response schema;
  they may take request bodies as input and use the API's closed vocabularies (enums).
- Schemas (app.schemas) never import a service: they describe the wire format only.
- A presenter module per resource builds the schemas from the domain values, the sentences a
  client reads (an at-risk reason's `detail`) included. A field-for-field copy is a read model
  with `from_attributes=True` and `Model.model_validate(value)`, not a hand-written copy.
- Routers parse and validate the request, call the service, and hand its result to the
  presenter; pagination and summaries are the service's, since they decide what is counted.
"""
