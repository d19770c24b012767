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

from promptline.devstack.services import running_broker_and_clickhouse
from promptline.settings import Settings


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
        with running_broker_and_clickhouse(root) as (broker_port, clickhouse_port):
            yield Settings(
                kafka_bootstrap_servers=f"127.0.0.1:{broker_port}",
                kafka_enable_idempotence=False,
                kafka_session_timeout_ms=6000,
                clickhouse_url=f"http://127.0.0.1:{clickhouse_port}",
                database_url=f"sqlite+aiosqlite:///{root / 'control.db'}",
                state_dir=root / "state",
            ).model_copy(update=own)


def local_service_pids(settings: Settings) -> dict[str, int]:
    """The local broker's and ClickHouse server's process ids, found by the ports the settings
    name; empty for services elsewhere (``--use-env``), whose CPU this machine cannot see."""
    ports = {
        "ClickHouse server": settings.clickhouse_url.rsplit(":", 1)[-1].strip("/"),
        "broker": settings.kafka_bootstrap_servers.rsplit(":", 1)[-1],
    }
    markers = {"ClickHouse server": "chdb_server", "broker": "tansu"}
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        line = " ".join(words)
        for name, marker in markers.items():
            if marker in line and any(
                word.endswith(f":{ports[name]}") or word == ports[name] for word in words
            ):
                found.setdefault(name, int(entry.name))
    return found
