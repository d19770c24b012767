"""A worker serves no health port unless told to, so several can run on one host."""

from __future__ import annotations

from promptline.devstack.stack import LOCAL_WORKER_HTTP_PORT, local_settings
from promptline.settings import Settings


def test_workers_serve_no_health_port_by_default() -> None:
    assert Settings().worker_http_port == 0


def test_the_local_stack_gives_its_worker_a_port_unless_one_is_set() -> None:
    assert local_settings(Settings()).worker_http_port == LOCAL_WORKER_HTTP_PORT == 8081
    assert local_settings(Settings(worker_http_port=18081)).worker_http_port == 18081
