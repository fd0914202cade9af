"""HTTP layer: translates requests to service calls and domain errors to JSON. No business logic."""
