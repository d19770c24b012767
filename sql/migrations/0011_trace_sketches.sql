-- Distinct traces per version as sketches, by hour and by day, for compare's linked_traces.
-- usage_hourly's exact states keep a 16-byte hash per trace, so merging them cost a hash per
-- trace at any granularity (689 ms over 5 million traces). linked_traces is a displayed
-- count that feeds no statistic, so it is read from uniqCombined64 states instead: exact
-- while a set is small (a list, then a hash table of 64-bit hashes: exact up to 4,095
-- distinct traces, measured), HyperLogLog beyond it (about 0.5% off at millions). The daily
-- table lets a long window or a by-day series merge one state per day; compare reads the
-- hours outside whole days from the hourly one and the ragged edges from usage_links.
--
-- Only sketches here, no sums: a trace counted twice is counted once, so a block a view
-- stored twice (a retry, the backfill below racing an insert) changes nothing.
CREATE TABLE IF NOT EXISTS usage_traces_hourly
(
    project_id UUID COMMENT 'Project the links belong to',
    prompt_id UUID COMMENT 'The prompt',
    version UInt32 COMMENT 'Number of the prompt version the traces used',
    hour DateTime('UTC') COMMENT 'Start of the hour (UTC) the links were received in',
    traces AggregateFunction(uniqCombined64, UUID)
        COMMENT 'Distinct traces, a sketch: uniqCombined64Merge(traces) over any set of hours (exact up to 4,095, about 0.5% off at millions)'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, prompt_id, version, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Distinct traces per prompt version and hour, as sketches (compare''s linked_traces)';

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_traces_hourly_mv TO usage_traces_hourly AS
SELECT project_id, prompt_id, version, toStartOfHour(received_at) AS hour,
    uniqCombined64State(trace_id) AS traces
FROM usage_links
GROUP BY project_id, prompt_id, version, hour
COMMENT 'Feeds usage_traces_hourly from every block inserted into usage_links';

CREATE TABLE IF NOT EXISTS usage_traces_daily
(
    project_id UUID COMMENT 'Project the links belong to',
    prompt_id UUID COMMENT 'The prompt',
    version UInt32 COMMENT 'Number of the prompt version the traces used',
    day DateTime('UTC') COMMENT 'Start of the day (UTC) the links were received in',
    traces AggregateFunction(uniqCombined64, UUID)
        COMMENT 'Distinct traces, a sketch: uniqCombined64Merge(traces) over any set of days (exact up to 4,095, about 0.5% off at millions)'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (project_id, prompt_id, version, day)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Distinct traces per prompt version and day, as sketches (compare''s linked_traces over whole days)';

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_traces_daily_mv TO usage_traces_daily AS
SELECT project_id, prompt_id, version, toStartOfDay(received_at) AS day,
    uniqCombined64State(trace_id) AS traces
FROM usage_links
GROUP BY project_id, prompt_id, version, day
COMMENT 'Feeds usage_traces_daily from every block inserted into usage_links';

-- Existing installations: the traces of the links already stored (after the views exist,
-- so no insert falls in between; one counted twice is counted once), and the days from the
-- hours just filled.
INSERT INTO usage_traces_hourly
SELECT project_id, prompt_id, version, toStartOfHour(received_at) AS hour,
    uniqCombined64State(trace_id)
FROM usage_links
GROUP BY project_id, prompt_id, version, hour;

INSERT INTO usage_traces_daily
SELECT project_id, prompt_id, version, toStartOfDay(hour), traces
FROM usage_traces_hourly;
