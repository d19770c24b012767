-- The duplicate lookup's own table (ARCHITECTURE.md, "Effectively once"). Before each
-- insert a worker asks which identities of its batch are already stored. The raw tables
-- are ordered by (project, prompt, version, ...), where the dedup key is not a prefix, so
-- that lookup read a prompt's whole window of rows: its cost grew with the traffic stored.
-- Here the identity is the sort key, the key before the prompt: a lookup reads only the
-- granules its keys fall in, and event ids (UUIDv7, time-ordered), most keys, all fall in
-- the last granules of a project's range in each part, however much is stored (10,000
-- keys against 2 million stored: 10,256 rows read, as many as against none, where the
-- order (project, prompt, key) read a granule per prompt and part: 104,739 rows).
--
-- Every raw table feeds it through a view, so it holds a key exactly when the raw table
-- holds the row: an insert's retry (same token) is dropped here too, and a piece the
-- worker deletes after a view refused it is deleted here too, by the same lineage columns.
-- Kept 31 days by receive time, in one partition per day: a lookup whose window reaches
-- further back than that reads the raw tables instead (workers/dedup.py).
CREATE TABLE IF NOT EXISTS dedup_keys
(
    source_table Enum8('analytics_events' = 1, 'signal_events' = 2, 'usage_links' = 3, 'exposure_events' = 4)
        COMMENT 'The raw table that holds the event',
    project_id UUID COMMENT 'Project of the event',
    prompt_id UUID COMMENT 'The prompt the event is about',
    dedup_key String COMMENT 'Client idempotency key, or the event id when none was sent (usage links: version, trace and span)',
    received_at DateTime64(3, 'UTC') COMMENT 'When the edge accepted the event (bounds the lookup, and the retention)',
    kafka_partition UInt32 COMMENT 'Kafka partition the event was read from (to undo a refused piece)',
    kafka_offset UInt64 COMMENT 'Kafka offset the event was read from (to undo a refused piece)',
    kafka_block_first UInt64 COMMENT 'First Kafka offset of the insert block (to undo a refused piece)',
    kafka_block_marker UInt64 COMMENT 'Fingerprint of the first record of the insert block (to undo a refused piece)',
    kafka_piece UInt64 COMMENT 'Random number of the insert that stored the event (to undo a refused piece)'
)
ENGINE = MergeTree
PARTITION BY toDate(received_at)
ORDER BY (source_table, project_id, dedup_key, prompt_id)
TTL toDateTime(received_at) + INTERVAL 31 DAY
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 256, ttl_only_drop_parts = 1
COMMENT 'Identities of the events the raw tables hold, received in the last 31 days, ordered for the duplicate lookup';

CREATE MATERIALIZED VIEW IF NOT EXISTS analytics_events_keys_mv TO dedup_keys AS
SELECT 'analytics_events' AS source_table, project_id, prompt_id, dedup_key, received_at,
    kafka_partition, kafka_offset, kafka_block_first, kafka_block_marker, kafka_piece
FROM analytics_events
COMMENT 'Feeds dedup_keys from every block inserted into analytics_events';

CREATE MATERIALIZED VIEW IF NOT EXISTS signal_events_keys_mv TO dedup_keys AS
SELECT 'signal_events' AS source_table, project_id, prompt_id, dedup_key, received_at,
    kafka_partition, kafka_offset, kafka_block_first, kafka_block_marker, kafka_piece
FROM signal_events
COMMENT 'Feeds dedup_keys from every block inserted into signal_events';

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_links_keys_mv TO dedup_keys AS
SELECT 'usage_links' AS source_table, project_id, prompt_id, dedup_key, received_at,
    kafka_partition, kafka_offset, kafka_block_first, kafka_block_marker, kafka_piece
FROM usage_links
COMMENT 'Feeds dedup_keys from every block inserted into usage_links';

CREATE MATERIALIZED VIEW IF NOT EXISTS exposure_events_keys_mv TO dedup_keys AS
SELECT 'exposure_events' AS source_table, project_id, prompt_id, dedup_key, received_at,
    kafka_partition, kafka_offset, kafka_block_first, kafka_block_marker, kafka_piece
FROM exposure_events
COMMENT 'Feeds dedup_keys from every block inserted into exposure_events';

-- Existing installations: the keys of what the raw tables already hold from the last 31
-- days (after the views exist, so no insert falls in between; a key twice is harmless).
INSERT INTO dedup_keys
SELECT 'analytics_events', project_id, prompt_id, dedup_key, received_at,
    kafka_partition, kafka_offset, kafka_block_first, kafka_block_marker, kafka_piece
FROM analytics_events WHERE received_at >= now() - INTERVAL 32 DAY;

INSERT INTO dedup_keys
SELECT 'signal_events', project_id, prompt_id, dedup_key, received_at,
    kafka_partition, kafka_offset, kafka_block_first, kafka_block_marker, kafka_piece
FROM signal_events WHERE received_at >= now() - INTERVAL 32 DAY;

INSERT INTO dedup_keys
SELECT 'usage_links', project_id, prompt_id, dedup_key, received_at,
    kafka_partition, kafka_offset, kafka_block_first, kafka_block_marker, kafka_piece
FROM usage_links WHERE received_at >= now() - INTERVAL 32 DAY;

INSERT INTO dedup_keys
SELECT 'exposure_events', project_id, prompt_id, dedup_key, received_at,
    kafka_partition, kafka_offset, kafka_block_first, kafka_block_marker, kafka_piece
FROM exposure_events WHERE received_at >= now() - INTERVAL 32 DAY;
