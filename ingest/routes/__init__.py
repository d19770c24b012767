"""The edge's route handlers, one module per event kind."""
