-- What the workers need of analytics_events to store each event once (ARCHITECTURE.md,
-- "Effectively once"):
-- * the Kafka offset range of the insert block a row came in, so that a worker taking over
--   a partition can find the one block its previous owner inserted but did not commit, and
--   insert it again with the same deduplication token;
-- * a bloom filter on the dedup key, for the lookup that drops events already stored;
-- * a minmax index on the Kafka offset, for the takeover query;
-- * a deduplication window of 10,000 blocks, far more than are inserted while a partition
--   changes owner.
ALTER TABLE analytics_events
    ADD COLUMN IF NOT EXISTS kafka_block_first UInt64 DEFAULT kafka_offset
        COMMENT 'First Kafka offset of the insert block this row came in (replay recovery)',
    ADD COLUMN IF NOT EXISTS kafka_block_last UInt64 DEFAULT kafka_offset
        COMMENT 'Last Kafka offset of the insert block this row came in (replay recovery)';

ALTER TABLE analytics_events
    ADD INDEX IF NOT EXISTS dedup_key_bloom dedup_key TYPE bloom_filter(0.01) GRANULARITY 1;

ALTER TABLE analytics_events
    ADD INDEX IF NOT EXISTS kafka_offset_minmax kafka_offset TYPE minmax GRANULARITY 1;

ALTER TABLE analytics_events MODIFY SETTING non_replicated_deduplication_window = 10000;
