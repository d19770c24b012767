"""The services the warehouse benchmarks run against: the local stand-ins, or what the env names.

With ``--use-env``, the benchmark uses the ``PROMPTLINE_*`` settings as they are (e.g. a
real Kafka and ClickHouse server), in a database and topics of its own. Otherwise it
starts the local stack's broker (Tansu) and ClickHouse (chDB over HTTP) on free ports in
a temporary folder, and stops them afterwards, by their process ids.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from promptline.devstack.services import (
    broker_command,
    clickhouse_command,
    free_port,
    http_ok,
    spawn,
    stop_pid,
    tcp_open,
    wait_until,
)
from promptline.settings import Settings

START_TIMEOUT = 60.0


@contextlib.contextmanager
def bench_settings(use_env: bool, **overrides: object) -> Iterator[Settings]:
    """Settings for one benchmark run: fresh topics and database, services started if needed."""
    tag = uuid.uuid4().hex[:8]
    own = {
        "kafka_topic_prefix": f"bench-{tag}.",
        "kafka_consumer_group": f"bench-{tag}",
        "clickhouse_database": f"bench_{tag}",
        "worker_http_port": 0,
        "log_level": "WARNING",
        "log_format": "text",
        **overrides,
    }
    if use_env:
        yield Settings().model_copy(update=own)
        return
    with tempfile.TemporaryDirectory(prefix="promptline-bench-") as folder:
        root = Path(folder)
        broker_port, clickhouse_port = free_port(), free_port()
        broker = spawn(broker_command(broker_port), root / "broker.log")
        clickhouse = spawn(
            clickhouse_command(clickhouse_port, root / "clickhouse"), root / "clickhouse.log"
        )
        try:
            wait_until("broker", lambda: tcp_open(broker_port), START_TIMEOUT, root / "broker.log")
            wait_until(
                "clickhouse",
                lambda: http_ok(f"http://127.0.0.1:{clickhouse_port}/ping"),
                START_TIMEOUT,
                root / "clickhouse.log",
            )
            yield Settings(
                kafka_bootstrap_servers=f"127.0.0.1:{broker_port}",
                kafka_enable_idempotence=False,
                kafka_session_timeout_ms=6000,
                clickhouse_url=f"http://127.0.0.1:{clickhouse_port}",
                database_url=f"sqlite+aiosqlite:///{root / 'control.db'}",
                state_dir=root / "state",
            ).model_copy(update=own)
        finally:
            for process in (clickhouse, broker):
                stop_pid(process.pid)
                process.wait()
