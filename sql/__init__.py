"""ClickHouse DDL, versioned as numbered files under ``migrations/``, and its runner."""
