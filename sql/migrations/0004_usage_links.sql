-- Raw usage links (seed 002): a trace (and span) used this version of a prompt.
-- The dedup key is the natural key (version, trace, span): a link sent twice is one link.
CREATE TABLE IF NOT EXISTS usage_links
(
    event_id UUID COMMENT 'Id the edge gave the link: a UUIDv7, sortable by receive time',
    received_at DateTime64(3, 'UTC') COMMENT 'When the edge accepted the link',
    org_id UUID COMMENT 'Organisation of the API key that sent the link',
    project_id UUID COMMENT 'Project of the API key that sent the link',
    prompt_id UUID COMMENT 'The prompt that was used',
    prompt_name String COMMENT 'Name of the prompt, as the client sent it',
    version UInt32 COMMENT 'Number of the prompt version that was used',
    version_hash LowCardinality(String) COMMENT 'Content hash (sha256:...) of that version',
    trace_id UUID COMMENT 'The trace that used the prompt version',
    span_id Nullable(UUID) COMMENT 'The span within the trace, if the client named one',
    dedup_key String COMMENT 'Natural key of the link: version:trace:span',
    kafka_partition UInt32 COMMENT 'Kafka partition the link was read from (lineage)',
    kafka_offset UInt64 COMMENT 'Kafka offset the link was read from (lineage)',
    kafka_block_first UInt64 COMMENT 'First Kafka offset of the insert block this row came in (replay recovery)',
    kafka_block_last UInt64 COMMENT 'Last Kafka offset of the insert block this row came in (replay recovery)',
    INDEX dedup_key_bloom dedup_key TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX kafka_offset_minmax kafka_offset TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (project_id, prompt_id, version, trace_id, dedup_key)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Usage links: which trace (and span) used which prompt version, one row per link';
