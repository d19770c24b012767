-- Exposures (issue 15): one row per resolve answer given to one unit (a user), from resolve
-- itself or reported by a client that resolves on its own side. The sample-ratio check and
-- compare count distinct units per version, exactly: a sketch's error (HyperLogLog's ~1%)
-- would swamp a chi-squared test at a million units.
--
-- The raw table has the columns every raw table has for the workers (ARCHITECTURE.md,
-- "Effectively once"): identity, receive time and the Kafka lineage of the row and its block.
-- Both tables are kept PROMPTLINE_EXPOSURE_RETENTION_DAYS days (applied by migrate,
-- sql/retention.py): the hourly distinct-unit states hold hashes of the unit ids, so they
-- expire with the raw rows and no trace of a unit outlives the retention.
CREATE TABLE IF NOT EXISTS exposure_events
(
    event_id UUID COMMENT 'Id the edge gave the exposure: a UUIDv7, sortable by receive time',
    received_at DateTime64(3, 'UTC') COMMENT 'When resolve answered (for a client''s exposure, the resolved_at it reported)',
    org_id UUID COMMENT 'Organisation of the API key that resolved',
    project_id UUID COMMENT 'Project of the API key that resolved',
    prompt_id UUID COMMENT 'The prompt resolved',
    version UInt32 COMMENT 'Number of the prompt version served',
    version_hash LowCardinality(String) COMMENT 'Content hash (sha256:...) of the version served',
    deployment_id UUID COMMENT 'The deployment in force that decided (dep_<hex> is its hex); 00000000-0000-0000-0000-000000000000 when the prompt was never deployed',
    rule LowCardinality(String) COMMENT 'The traffic_rule resolve answered: a targeting rule''s name, the deployment''s label or dep_ id, or latest',
    by_split Bool COMMENT 'True when the deployment''s weighted split chose the version (what the sample-ratio check counts), false for a targeting rule or latest',
    unit_id String COMMENT 'The unit (user): a keyed hash of the user_id (BLAKE2b under the project''s secret key, promptline.units), or the user_id as given if so configured',
    source Enum8('resolve' = 1, 'client' = 2) COMMENT 'Who resolved: the service (resolve) or a client that reported it through the batch route',
    dedup_key String COMMENT 'Client idempotency key, or the event id when none was sent',
    kafka_partition UInt32 COMMENT 'Kafka partition the exposure was read from (lineage)',
    kafka_offset UInt64 COMMENT 'Kafka offset the exposure was read from (lineage)',
    kafka_block_first UInt64 COMMENT 'First Kafka offset of the insert block this row came in (replay recovery)',
    kafka_block_last UInt64 COMMENT 'Last Kafka offset of the insert block this row came in (replay recovery)',
    kafka_block_marker UInt64 DEFAULT 0 COMMENT 'Fingerprint of the first Kafka record of the insert block this row came in (replay recovery)',
    kafka_block_rows UInt32 DEFAULT 0 COMMENT 'Rows of the insert block this row came in, all months together (replay recovery)',
    kafka_piece UInt64 DEFAULT 0 COMMENT 'Random number of the insert that stored this row (replay recovery)',
    INDEX dedup_key_bloom dedup_key TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX kafka_offset_minmax kafka_offset TYPE minmax GRANULARITY 1,
    INDEX kafka_block_marker_bloom kafka_block_marker TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (project_id, prompt_id, deployment_id, version, unit_id, dedup_key)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Exposures: which prompt version each unit (user) was served, and what decided it; one row per resolve answer';

-- Per version, deployment, decider and hour: exposures and the exact set of units
-- (uniqExact, which keeps a 128-bit hash per distinct unit: no estimation error). Any set
-- of hours merges to the exact distinct units over them: uniqExactMerge(units).
CREATE TABLE IF NOT EXISTS exposures_hourly
(
    project_id UUID COMMENT 'Project the exposures belong to',
    prompt_id UUID COMMENT 'The prompt',
    version UInt32 COMMENT 'Number of the prompt version served',
    deployment_id UUID COMMENT 'The deployment that decided; the nil UUID when never deployed',
    by_split Bool COMMENT 'True for versions the weighted split chose, false for targeting rules and latest',
    hour DateTime('UTC') COMMENT 'Start of the hour (UTC) the exposures were received in',
    exposures SimpleAggregateFunction(sum, UInt64) COMMENT 'Exposures (resolve answers)',
    units AggregateFunction(uniqExact, String)
        COMMENT 'Distinct units, exact: uniqExactMerge(units) over any set of hours'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, prompt_id, version, deployment_id, by_split, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Exposures per prompt version, deployment, decider (split or rule) and hour: count and exact distinct units';

CREATE MATERIALIZED VIEW IF NOT EXISTS exposures_hourly_mv TO exposures_hourly AS
SELECT
    project_id,
    prompt_id,
    version,
    deployment_id,
    by_split,
    toStartOfHour(received_at) AS hour,
    count() AS exposures,
    uniqExactState(unit_id) AS units
FROM exposure_events
GROUP BY project_id, prompt_id, version, deployment_id, by_split, hour
COMMENT 'Feeds exposures_hourly from every block inserted into exposure_events';
