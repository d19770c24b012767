"""``make up`` as a user runs it: the printed curl command sends an event end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptline.devstack.services import free_port, pid_alive

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def _stack(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptline", "stack", command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_stack_up_prints_a_curl_that_lands_in_clickhouse_and_down_stops_all(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "PROMPTLINE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "PROMPTLINE_CLICKHOUSE_URL": f"http://127.0.0.1:{free_port()}",
        "PROMPTLINE_LISTEN_PORT": str(free_port()),
        "PROMPTLINE_WORKER_HTTP_PORT": str(free_port()),
        "PROMPTLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        "PROMPTLINE_STATE_DIR": str(tmp_path / "state"),
    }
    up = _stack("up", env, tmp_path)
    pid_files = list((tmp_path / "state" / "pids").glob("*.pid"))
    pids = [int(path.read_text()) for path in pid_files]
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert len(pids) == 4
        local_env = (tmp_path / "state" / "local.env").read_text()
        assert re.search(r"^PROMPTLINE_URL=http://127\.0\.0\.1:\d+$", local_env, re.M)
        key = re.search(r"^PROMPTLINE_API_KEY=(pl_sk_\S+)$", local_env, re.M)
        assert key is not None and key.group(1) in up.stdout

        blocks = re.findall(r"^(curl .*?)(?:\n\n)", up.stdout, re.M | re.S)
        send, query = blocks[0], blocks[1]
        sent = subprocess.run(["bash", "-c", send], capture_output=True, text=True, check=True)
        assert sent.stdout.startswith("HTTP/1.1 204")

        deadline = time.monotonic() + 60
        shown = ""
        while time.monotonic() < deadline and "412.5" not in shown:
            shown = subprocess.run(["bash", "-c", query], capture_output=True, text=True).stdout
            time.sleep(0.3)
        assert "412.5" in shown and "0.0021" in shown, shown
    finally:
        down = _stack("down", env, tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(pid_alive(pid) for pid in pids)
    assert not list((tmp_path / "state" / "pids").glob("*.pid"))
