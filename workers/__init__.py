"""Kafka consumers that write events into ClickHouse in batches, then commit offsets."""
