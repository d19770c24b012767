"""One settings object for every process, read from ``PROMPTLINE_*`` environment variables.

Defaults point at the local stack (``make up``), so a developer needs no configuration;
production sets the variables (see ``docker-compose.yml`` for the full list).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration shared by the edge, the control plane, the workers and the CLI."""

    model_config = SettingsConfigDict(env_prefix="PROMPTLINE_", extra="ignore")

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_topic_prefix: str = Field(
        default="promptline.",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prefix of every topic name, so installations (or tests) can share a cluster.",
    )
    kafka_enable_idempotence: bool = Field(
        default=True,
        description="Idempotent producer; off in the local stack, whose broker lacks it.",
    )
    kafka_topic_partitions: int = 6
    kafka_replication_factor: int = 1
    kafka_linger_ms: int = 5
    kafka_max_batch_bytes: int = 1_048_576
    kafka_compression: str = "lz4"
    kafka_request_timeout_ms: int = 10_000
    kafka_consumer_group: str = "promptline-warehouse"
    kafka_session_timeout_ms: int = 10_000

    # ClickHouse
    clickhouse_url: str = "http://127.0.0.1:18123"
    clickhouse_database: str = Field(default="promptline", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    clickhouse_user: str = "default"
    clickhouse_password: str = ""

    # Control-plane store (SQLAlchemy async URL)
    database_url: str = "sqlite+aiosqlite:///.promptline/control.db"

    # Rate-limit counters
    redis_url: str = Field(
        default="",
        description=(
            "Redis for the control plane's rate-limit counters, shared by every process "
            "(e.g. redis://127.0.0.1:6379/0); empty keeps them in each process's memory."
        ),
    )

    # HTTP service (edge and control plane)
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    serve_processes: int = Field(
        default=1,
        ge=1,
        description=(
            "Serving processes of `promptline serve` on the one port (the default of its "
            "--processes); above 1 needs redis_url, so that rate limits are shared."
        ),
    )
    public_url: str = Field(
        default="",
        description="URL users reach the service at; defaults to http://listen_host:listen_port.",
    )

    # Ingestion edge (signals, usage links, analytics, the batch route; docs/edge.md)
    edge_max_body_bytes: int = Field(
        default=65_536, ge=1024, description="Largest body of a single-event route (413 above)."
    )
    edge_batch_max_bytes: int = Field(
        default=5_242_880, ge=1024, description="Largest body of the batch route (413 above)."
    )
    edge_batch_max_events: int = Field(
        default=500, ge=1, le=10_000, description="Most events in one batch (413 above)."
    )
    edge_retry_after_seconds: float = Field(
        default=1.0, gt=0, description="Retry-After sent with 503 when Kafka cannot take events."
    )
    edge_ack_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "How long a request waits for Kafka's acknowledgement before answering 503 "
            "with Retry-After (a record that lands later is dropped as a copy downstream "
            "when the client retries with its idempotency key)."
        ),
    )
    edge_kafka_client: Literal["aiokafka", "confluent"] = Field(
        default="confluent",
        description=(
            "The edge's Kafka producer: confluent (librdkafka, batching and sending from its "
            "own threads; less CPU per event on the event loop) or aiokafka (pure Python, on "
            "the loop). Both put a key on the same partition (murmur2)."
        ),
    )
    edge_node_lease_seconds: float = Field(
        default=60.0,
        ge=3.0,
        description="How long a process holds its signal-id node number between renewals.",
    )
    edge_cors_origins: str = Field(
        default="*",
        pattern=r"^\s*(\*|[a-z][a-z0-9+.-]*://[^/,\s]+(\s*,\s*[a-z][a-z0-9+.-]*://[^/,\s]+)*)?\s*$",
        description=(
            "Origins whose pages may call the edge's routes from a browser (CORS): '*' for "
            "any (keys, not cookies, authenticate), a comma-separated list such as "
            "'https://app.example.com,https://www.example.com', or empty for none."
        ),
    )
    edge_access_log: bool = Field(
        default=False, description="One structured log line per request (off the hot path)."
    )

    # Exposures (docs/rollouts.md, "Exposures")
    exposures_enabled: bool = Field(
        default=True,
        description=(
            "Record an exposure for every resolve answer (guarded rollouts and the "
            "sample-ratio check need them); off, resolve records none."
        ),
    )
    exposure_unit_ids: Literal["hashed", "as_given"] = Field(
        default="hashed",
        description=(
            "How an exposure names its user: 'hashed' (a keyed hash of user_id under a "
            "secret key of the project) or 'as_given' (the user_id itself, to join with your "
            "own user tables; it is then personal data in the warehouse)."
        ),
    )
    exposure_queue_max: int = Field(
        default=100_000,
        ge=1,
        description=(
            "Exposures a serving process holds while Kafka is slow or down; past it new "
            "ones are dropped and counted (promptline_exposures_dropped_total)."
        ),
    )

    # Webhooks (docs/rollouts.md, "Webhooks")
    webhook_allow_private_targets: bool = Field(
        default=False,
        description=(
            "Let webhook URLs point at private, loopback, link-local or reserved addresses "
            "(a receiver on this machine or network); off, such URLs are refused (422) and "
            "never sent to."
        ),
    )
    webhook_resolve_timeout_seconds: float = Field(
        default=2.0, gt=0, description="How long a webhook host may take to resolve (else 422)."
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one delivery may take, connection included."
    )
    webhook_max_attempts: int = Field(
        default=12, ge=1, description="Attempts at one delivery before it is given up."
    )
    webhook_give_up_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="Age past which a delivery that keeps failing is given up (24 hours).",
    )
    webhook_backoff_initial_seconds: float = Field(
        default=10.0, gt=0, description="Wait after a delivery's first failure; doubles each time."
    )
    webhook_backoff_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts at a delivery."
    )
    webhook_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the deliverer looks for due deliveries."
    )

    # The SDK's configuration stream, GET /v1/sdk/stream (docs/sdk.md)
    sdk_stream_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="How often an open SDK stream sends a `: ping` line."
    )
    sdk_streams_per_project: int = Field(
        default=1000,
        ge=1,
        description="Open SDK streams one project may hold in one process; past it, 429.",
    )

    # The dashboard under /ui/ (docs/dashboard.md)
    ui_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="How long a dashboard sign-in lasts; signing in again starts a new one.",
    )
    ui_sign_in_limit: str = Field(
        default="10/minute; 50/hour",
        description="Sign-in attempts allowed per client address (a `limits` string), "
        "counted in Redis when PROMPTLINE_REDIS_URL is set, else per process.",
    )

    # The guard of guarded rollouts (docs/rollouts.md)
    guard_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often the guard looks at every guarded rollout."
    )
    guard_lease_seconds: float = Field(
        default=15.0,
        ge=3.0,
        description="How long the active guard holds its lease; another takes over after it.",
    )
    guard_alpha: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="Error budget of a rollout: the chance of rolling back a candidate that is "
        "no worse than its margins, however often the guard looks.",
    )
    guard_on_deadline: Literal["hold", "rollback"] = Field(
        default="hold",
        description="What a rollout does at its deadline without enough evidence, unless its "
        "guard says otherwise: hold at the current step, or roll back.",
    )

    # Workers
    worker_batch_max_rows: int = 10_000
    worker_batch_max_seconds: float = 1.0
    worker_http_port: int = Field(
        default=0,
        ge=0,
        description=(
            "Port of a worker's health endpoint (/healthz) and metrics (/metrics); 0, the "
            "default, serves neither, so any number of workers can run on one host. The local "
            "stack uses 8081."
        ),
    )
    worker_stall_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "How long a partition with records waiting may go without committed progress "
            "(or the worker wait on ClickHouse) before /healthz answers 503 with the reason."
        ),
    )
    worker_shutdown_grace_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "On SIGTERM a worker stops within this: retry waits end at once, and a final "
            "flush or client stop still running near its end is cancelled, committing "
            "nothing it has not stored."
        ),
    )

    # Warehouse: event retention and deduplication (ARCHITECTURE.md, "Effectively once")
    clickhouse_raw_ttl_days: int = Field(
        default=0,
        ge=0,
        description=(
            "Days raw event rows are kept (applied by migrate); 0 keeps them forever. "
            "The hourly aggregates are kept regardless."
        ),
    )
    worker_dedup_window_days: int = Field(
        default=7,
        ge=0,
        description=(
            "How far back a worker looks for an event's idempotency key before storing it; "
            "0 looks through every stored event. With a raw TTL, at most the TTL. Migrate "
            "keeps the lookup's key table this long and a week more (at least 31 days)."
        ),
    )

    exposure_retention_days: int = Field(
        default=90,
        ge=0,
        description=(
            "Days exposures (which user was served which version) are kept, raw rows and "
            "hourly distinct-unit states alike (applied by migrate); 0 keeps them forever. "
            "A client may not report an exposure older than this."
        ),
    )

    @model_validator(mode="after")
    def _raw_rows_outlive_the_dedup_window(self) -> Settings:
        """The duplicate lookup reads raw rows: a TTL shorter than the window would cut the
        window short without saying so, and an unbounded window (0) cannot hold at all."""
        ttl, window = self.clickhouse_raw_ttl_days, self.worker_dedup_window_days
        if ttl and (window == 0 or ttl < window):
            raise ValueError(
                f"clickhouse_raw_ttl_days={ttl} keeps raw rows for less than the duplicate "
                f"lookup reads them (worker_dedup_window_days={window or 'unbounded'}): set "
                f"worker_dedup_window_days to at most {ttl}, or the TTL to 0"
            )
        # Exposures have their own period; an unbounded window reads what is left of them
        # (the edge refuses an exposure older than the period, so no copy outlives it).
        kept = self.exposure_retention_days
        if kept and window and kept < window:
            raise ValueError(
                f"exposure_retention_days={kept} keeps exposures for less than the duplicate "
                f"lookup reads them (worker_dedup_window_days={window}): set it to at least "
                f"{window}, or 0"
            )
        return self

    # Logging
    log_level: str = "INFO"
    log_format: str = Field(default="json", description="'json' for machines, 'text' for people.")

    # Local stack (make up); not read by production processes
    state_dir: Path = Path(".promptline")

    @property
    def base_url(self) -> str:
        """The URL clients use to reach the HTTP service."""
        return self.public_url or f"http://{self.listen_host}:{self.listen_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
