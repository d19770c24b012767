-- Per-version, per-hour aggregates, kept up to date by materialized views, so that compare
-- reads a few rows per version and hour instead of every event.
--
-- A materialized view sees every block inserted into its source table, before any merge of
-- the source could collapse a duplicate, and a sum cannot be "replaced" afterwards: the
-- workers therefore make sure that each event reaches the raw tables once (ARCHITECTURE.md,
-- "Effectively once"). Inserts carry a deduplication token and
-- deduplicate_blocks_in_dependent_materialized_views, so a retried block is dropped by the
-- aggregates too; hence the deduplication window here as well.
--
-- Counts and sums are SimpleAggregateFunction(sum): read them with sum(). Quantile columns
-- are DDSketch states with 1% relative accuracy: read them with the -Merge function named in
-- their comment. Sums of squares give variances for the comparison tests.

CREATE TABLE IF NOT EXISTS analytics_hourly
(
    project_id UUID COMMENT 'Project the events belong to',
    prompt_id UUID COMMENT 'The prompt',
    version_hash LowCardinality(String) COMMENT 'Content hash of the prompt version',
    hour DateTime('UTC') COMMENT 'Start of the hour (UTC) the events were received in',
    events SimpleAggregateFunction(sum, UInt64) COMMENT 'Analytics events',
    latency_count SimpleAggregateFunction(sum, UInt64) COMMENT 'Events that reported a latency',
    latency_sum SimpleAggregateFunction(sum, Float64) COMMENT 'Sum of latency_ms',
    latency_sum_sq SimpleAggregateFunction(sum, Float64) COMMENT 'Sum of latency_ms squared',
    latency_quantiles AggregateFunction(quantilesDD(0.01, 0.5, 0.95, 0.99), Nullable(Float64))
        COMMENT 'Latency sketch: quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(latency_quantiles) = [p50, p95, p99]',
    cost_count SimpleAggregateFunction(sum, UInt64) COMMENT 'Events that reported a cost',
    cost_sum SimpleAggregateFunction(sum, Float64) COMMENT 'Sum of cost_usd',
    cost_sum_sq SimpleAggregateFunction(sum, Float64) COMMENT 'Sum of cost_usd squared',
    score_count SimpleAggregateFunction(sum, UInt64) COMMENT 'Events that reported a score',
    score_sum SimpleAggregateFunction(sum, Float64) COMMENT 'Sum of score',
    score_sum_sq SimpleAggregateFunction(sum, Float64) COMMENT 'Sum of score squared'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, prompt_id, version_hash, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Analytics events per prompt version and hour: counts, sums, sums of squares, latency sketch';

CREATE MATERIALIZED VIEW IF NOT EXISTS analytics_hourly_mv TO analytics_hourly AS
SELECT
    project_id,
    prompt_id,
    version_hash,
    toStartOfHour(received_at) AS hour,
    count() AS events,
    count(latency_ms) AS latency_count,
    sum(ifNull(latency_ms, 0)) AS latency_sum,
    sum(ifNull(latency_ms, 0) * ifNull(latency_ms, 0)) AS latency_sum_sq,
    quantilesDDState(0.01, 0.5, 0.95, 0.99)(latency_ms) AS latency_quantiles,
    count(cost_usd) AS cost_count,
    sum(ifNull(cost_usd, 0)) AS cost_sum,
    sum(ifNull(cost_usd, 0) * ifNull(cost_usd, 0)) AS cost_sum_sq,
    count(score) AS score_count,
    sum(ifNull(score, 0)) AS score_sum,
    sum(ifNull(score, 0) * ifNull(score, 0)) AS score_sum_sq
FROM analytics_events
GROUP BY project_id, prompt_id, version_hash, hour
COMMENT 'Feeds analytics_hourly from every block inserted into analytics_events';

CREATE TABLE IF NOT EXISTS signals_hourly
(
    project_id UUID COMMENT 'Project the signals belong to',
    prompt_id UUID COMMENT 'The prompt',
    version UInt32 COMMENT 'Version number the signal metadata named; 0 if none',
    version_hash LowCardinality(String) COMMENT 'Content hash the signal metadata named; empty if none',
    hour DateTime('UTC') COMMENT 'Start of the hour (UTC) the signals were received in',
    positive SimpleAggregateFunction(sum, UInt64) COMMENT 'Positive signals (thumbs up)',
    negative SimpleAggregateFunction(sum, UInt64) COMMENT 'Negative signals (thumbs down)'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, prompt_id, version, version_hash, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Feedback signals per prompt version (as named in their metadata) and hour';

CREATE MATERIALIZED VIEW IF NOT EXISTS signals_hourly_mv TO signals_hourly AS
SELECT
    project_id,
    prompt_id,
    version,
    version_hash,
    toStartOfHour(received_at) AS hour,
    countIf(value = 'positive') AS positive,
    countIf(value = 'negative') AS negative
FROM signal_events
GROUP BY project_id, prompt_id, version, version_hash, hour
COMMENT 'Feeds signals_hourly from every block inserted into signal_events';

CREATE TABLE IF NOT EXISTS usage_hourly
(
    project_id UUID COMMENT 'Project the links belong to',
    prompt_id UUID COMMENT 'The prompt',
    version UInt32 COMMENT 'Number of the prompt version the traces used',
    hour DateTime('UTC') COMMENT 'Start of the hour (UTC) the links were received in',
    links SimpleAggregateFunction(sum, UInt64) COMMENT 'Usage links (trace, span) recorded',
    traces AggregateFunction(uniqExact, UUID)
        COMMENT 'Distinct traces: uniqExactMerge(traces) over any set of hours'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, prompt_id, version, hour)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Usage links per prompt version and hour: links and distinct traces';

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_hourly_mv TO usage_hourly AS
SELECT
    project_id,
    prompt_id,
    version,
    toStartOfHour(received_at) AS hour,
    count() AS links,
    uniqExactState(trace_id) AS traces
FROM usage_links
GROUP BY project_id, prompt_id, version, hour
COMMENT 'Feeds usage_hourly from every block inserted into usage_links';
