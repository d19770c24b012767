"""Local-mode stand-ins for the real services (Kafka, ClickHouse) on machines without Docker."""
