-- Raw analytics events (seed 004): one row per event the edge accepted.
-- ReplacingMergeTree on the event's dedup key: a batch inserted twice (a worker that
-- died after the insert but before committing its offsets) collapses to one row.
CREATE TABLE IF NOT EXISTS analytics_events
(
    event_id UUID COMMENT 'Id the edge gave the event: a UUIDv7, sortable by receive time',
    received_at DateTime64(3, 'UTC') COMMENT 'When the edge accepted the event',
    org_id UUID COMMENT 'Organisation of the API key that sent the event',
    project_id UUID COMMENT 'Project of the API key that sent the event',
    prompt_id UUID COMMENT 'The prompt the event is about',
    version_hash LowCardinality(String) COMMENT 'Content hash (sha256:...) of the prompt version used',
    latency_ms Nullable(Float64) COMMENT 'End-to-end latency of the LLM call, in milliseconds',
    cost_usd Nullable(Float64) COMMENT 'Cost of the LLM call, in US dollars',
    score Nullable(Float64) COMMENT 'Downstream quality score the client reported, if any',
    dedup_key String COMMENT 'Client idempotency key, or the event id when none was sent',
    kafka_partition UInt32 COMMENT 'Kafka partition the event was read from (lineage)',
    kafka_offset UInt64 COMMENT 'Kafka offset the event was read from (lineage)'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (project_id, prompt_id, version_hash, dedup_key)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'Raw analytics events (latency, cost, score), one row per accepted event';
