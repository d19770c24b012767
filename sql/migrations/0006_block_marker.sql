-- Offsets alone do not name an insert block: they start again at 0 when a topic is
-- recreated (the local broker keeps its topics in memory) while ClickHouse keeps its rows.
-- So a block is also named by a fingerprint of its first Kafka record, which is part of its
-- deduplication token and which every row records (ARCHITECTURE.md, "Effectively once"):
-- a new block with an old block's offsets is neither dropped as a repeat nor recovered as
-- the old one. Rows inserted before this migration have 0, which no block is recovered as.
ALTER TABLE analytics_events
    ADD COLUMN IF NOT EXISTS kafka_block_marker UInt64 DEFAULT 0
        COMMENT 'Fingerprint of the first Kafka record of the insert block this row came in (replay recovery)'
        AFTER kafka_block_last;

ALTER TABLE analytics_events
    ADD INDEX IF NOT EXISTS kafka_block_marker_bloom kafka_block_marker TYPE bloom_filter(0.01) GRANULARITY 1;

ALTER TABLE signal_events
    ADD COLUMN IF NOT EXISTS kafka_block_marker UInt64 DEFAULT 0
        COMMENT 'Fingerprint of the first Kafka record of the insert block this row came in (replay recovery)'
        AFTER kafka_block_last;

ALTER TABLE signal_events
    ADD INDEX IF NOT EXISTS kafka_block_marker_bloom kafka_block_marker TYPE bloom_filter(0.01) GRANULARITY 1;

ALTER TABLE usage_links
    ADD COLUMN IF NOT EXISTS kafka_block_marker UInt64 DEFAULT 0
        COMMENT 'Fingerprint of the first Kafka record of the insert block this row came in (replay recovery)'
        AFTER kafka_block_last;

ALTER TABLE usage_links
    ADD INDEX IF NOT EXISTS kafka_block_marker_bloom kafka_block_marker TYPE bloom_filter(0.01) GRANULARITY 1;
