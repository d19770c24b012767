-- Which insert stored a row (ARCHITECTURE.md, "Effectively once"). An insert ClickHouse
-- refuses is split in halves until the records at fault are alone, and each half is a new
-- insert with a token of its own: a random 63-bit piece number that every row it stores
-- records. Whoever recovers an uncommitted block inserts each piece again with its own
-- token, a no-op where it landed and the missing part of a view where it did not. Rows
-- inserted before this migration have 0: one insert per month, whose token is the block's.
ALTER TABLE analytics_events
    ADD COLUMN IF NOT EXISTS kafka_piece UInt64 DEFAULT 0
        COMMENT 'Random number of the insert that stored this row, 0 before pieces were recorded (replay recovery)'
        AFTER kafka_block_rows;

ALTER TABLE signal_events
    ADD COLUMN IF NOT EXISTS kafka_piece UInt64 DEFAULT 0
        COMMENT 'Random number of the insert that stored this row, 0 before pieces were recorded (replay recovery)'
        AFTER kafka_block_rows;

ALTER TABLE usage_links
    ADD COLUMN IF NOT EXISTS kafka_piece UInt64 DEFAULT 0
        COMMENT 'Random number of the insert that stored this row, 0 before pieces were recorded (replay recovery)'
        AFTER kafka_block_rows;
