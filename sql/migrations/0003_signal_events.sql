-- Raw feedback signals (seed 000): one row per signal the edge accepted.
-- Signals name no version; a client attributes one by putting "version" (4 or "v4"),
-- "version_hash" or "trace_id" in its metadata. The worker copies those into columns.
-- ReplacingMergeTree on the dedup key is a safety net: the worker stores each event once.
CREATE TABLE IF NOT EXISTS signal_events
(
    event_id UUID COMMENT 'Id the edge gave the signal: a UUIDv7, sortable by receive time',
    received_at DateTime64(3, 'UTC') COMMENT 'When the edge accepted the signal',
    org_id UUID COMMENT 'Organisation of the API key that sent the signal',
    project_id UUID COMMENT 'Project of the API key that sent the signal',
    prompt_id UUID COMMENT 'The prompt whose output the signal is about',
    signal_id UInt64 COMMENT 'Integer id the edge answered the client with',
    value Enum8('negative' = -1, 'positive' = 1) COMMENT 'Thumbs up (positive) or down (negative)',
    version UInt32 COMMENT 'Version number the metadata named ("version": 4 or "v4"); 0 if none',
    version_hash LowCardinality(String) COMMENT 'Content hash the metadata named ("version_hash"); empty if none',
    trace_id Nullable(UUID) COMMENT 'Trace the metadata named ("trace_id"); a usage link ties it to a version',
    metadata String COMMENT 'The client''s metadata object as JSON text, as sent',
    dedup_key String COMMENT 'Client idempotency key, or the event id when none was sent',
    kafka_partition UInt32 COMMENT 'Kafka partition the signal was read from (lineage)',
    kafka_offset UInt64 COMMENT 'Kafka offset the signal was read from (lineage)',
    kafka_block_first UInt64 COMMENT 'First Kafka offset of the insert block this row came in (replay recovery)',
    kafka_block_last UInt64 COMMENT 'Last Kafka offset of the insert block this row came in (replay recovery)',
    INDEX dedup_key_bloom dedup_key TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX kafka_offset_minmax kafka_offset TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (project_id, prompt_id, version, dedup_key)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Raw feedback signals (thumbs up or down), one row per accepted signal';
