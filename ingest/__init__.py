"""The ingestion edge: validates events, answers fast, and produces them to Kafka."""
