"""After ``os.fork()`` a child resolves at once and starts its own background refresh."""

from __future__ import annotations

import os
import sys
import warnings

import pytest
from fake_server import BASE_URL, KEY, FakeServer, make_config, wait_until

from promptline_sdk import Client


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_resolves_and_refreshes(server: FakeServer) -> None:
    client = Client(BASE_URL, KEY, transport=server.transport(), poll_interval=0.05, events=False)
    try:
        assert client.resolve("support-bot", "u", {"company": "A"}).version == "v1"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # the child: no threads but this one; the fake server is its own copy
            code = 1
            try:
                answer = client.resolve("support-bot", "u", {"company": "A"})
                assert answer.ok and answer.content == "v1 for A."
                assert all(thread.is_alive() for thread in client._threads)  # restarted
                server.publish(make_config('"child"', serve=2))
                wait_until(lambda: client.resolve("support-bot", "u").version == "v2")
                code = 0
            except BaseException as error:  # report, never run the parent's tests here
                print(f"child failed: {error!r}", file=sys.stderr)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert client.config_etag == '"e1"'  # the parent is untouched
    finally:
        client.close()
