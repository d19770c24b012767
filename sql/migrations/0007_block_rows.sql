-- How many rows the insert block a row came in held in all (ARCHITECTURE.md, "Effectively
-- once"). A block is inserted as one insert per month it holds, each stored whole or not at
-- all, so a worker that dies between them leaves a block stored in part; whoever recovers
-- the block compares the rows it finds with this count, and re-reads the block from Kafka
-- when they are fewer. Rows inserted before this migration have 0 (never short).
ALTER TABLE analytics_events
    ADD COLUMN IF NOT EXISTS kafka_block_rows UInt32 DEFAULT 0
        COMMENT 'Rows of the insert block this row came in, all months together (replay recovery)'
        AFTER kafka_block_marker;

ALTER TABLE signal_events
    ADD COLUMN IF NOT EXISTS kafka_block_rows UInt32 DEFAULT 0
        COMMENT 'Rows of the insert block this row came in, all months together (replay recovery)'
        AFTER kafka_block_marker;

ALTER TABLE usage_links
    ADD COLUMN IF NOT EXISTS kafka_block_rows UInt32 DEFAULT 0
        COMMENT 'Rows of the insert block this row came in, all months together (replay recovery)'
        AFTER kafka_block_marker;
