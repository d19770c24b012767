"""Where the integration tests get a real Kafka broker and a real ClickHouse.

One setting chooses, and the tests never know which they got:
``PROMPTLINE_TEST_SERVICES=local`` runs the local stand-ins (the Tansu broker and the
chDB-backed ClickHouse HTTP server) as processes; ``docker`` runs Apache Kafka and
ClickHouse server containers with testcontainers; ``auto`` (the default) uses Docker
when an engine answers and the local stand-ins otherwise.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from promptline.devstack.services import running_broker_and_clickhouse


@dataclass(frozen=True, slots=True)
class Endpoints:
    """How to reach the services, and what the broker can do."""

    kafka_bootstrap: str
    clickhouse_url: str
    idempotent_producer: bool
    flavour: str


def docker_available() -> bool:
    """Whether a Docker engine answers (not just the client binary)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        # Probe the socket first: the docker client leaks its socket when no daemon answers.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            try:
                probe.connect(host.removeprefix("unix://"))
            except OSError:
                return False
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def chosen_flavour() -> str:
    """``local`` or ``docker``, from PROMPTLINE_TEST_SERVICES."""
    wanted = os.environ.get("PROMPTLINE_TEST_SERVICES", "auto")
    if wanted not in {"auto", "local", "docker"}:
        raise ValueError(f"PROMPTLINE_TEST_SERVICES must be auto, local or docker, not {wanted!r}")
    if wanted == "auto":
        return "docker" if docker_available() else "local"
    return wanted


@contextlib.contextmanager
def local_services(workdir: Path) -> Iterator[Endpoints]:
    """The Tansu broker and the chDB ClickHouse server, on free loopback ports."""
    with running_broker_and_clickhouse(workdir) as (broker_port, clickhouse_port):
        yield Endpoints(
            kafka_bootstrap=f"127.0.0.1:{broker_port}",
            clickhouse_url=f"http://127.0.0.1:{clickhouse_port}",
            idempotent_producer=False,
            flavour="local",
        )


@contextlib.contextmanager
def docker_services() -> Iterator[Endpoints]:
    """Apache Kafka (KRaft) and ClickHouse server containers."""
    from testcontainers.clickhouse import ClickHouseContainer
    from testcontainers.kafka import KafkaContainer

    with (
        KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka,
        ClickHouseContainer("clickhouse/clickhouse-server:24.8") as clickhouse,
    ):
        host = clickhouse.get_container_host_ip()
        port = clickhouse.get_exposed_port(8123)
        yield Endpoints(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            clickhouse_url=f"http://{clickhouse.username}:{clickhouse.password}@{host}:{port}",
            idempotent_producer=True,
            flavour="docker",
        )


@contextlib.contextmanager
def real_services(workdir: Path) -> Iterator[Endpoints]:
    """The services the settings choose."""
    if chosen_flavour() == "docker":
        with docker_services() as endpoints:
            yield endpoints
    else:
        with local_services(workdir) as endpoints:
            yield endpoints
