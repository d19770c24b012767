"""``make up`` as a user runs it: the printed curl command sends an event end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptline.devstack.services import free_port, pid_alive
from promptline.devstack.stack import PROCESSES

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


ROOT = Path(__file__).resolve().parents[2]


def _readme_walkthrough(name: str = "walkthrough") -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {name} -->\n```sh\n(.*?)```", readme, re.S)
    assert block is not None, f"README.md lost its {name} block"
    return block.group(1)


def _json_values(text: str) -> list[dict[str, object]]:
    decoder, values, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        values.append(value)
    return values


def _run_readme_walkthrough(cwd: Path) -> None:
    """The README's control-plane curls, run as written, answer what the README says."""
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _readme_walkthrough()],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    created, v1, v2, stable, canary, resolved, rolled_back = _json_values(ran.stdout)
    assert created["name"] == "support-bot" and str(created["id"]).startswith("prm_")
    assert (v1["version"], v2["version"]) == ("v1", "v2")
    assert stable["traffic"] == [{"version": "v1", "weight": 100}]
    assert canary["label"] == "canary-v2-10pct"
    assert canary["traffic"] == [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}]
    assert resolved["prompt"] == "support-bot" and resolved["version"] in {"v1", "v2"}
    assert resolved["traffic_rule"] == "canary-v2-10pct"
    assert "Acme" in str(resolved["content"]) and "{{company}}" not in str(resolved["content"])
    assert rolled_back["rolled_back_to"] == stable["deployment_id"]
    assert rolled_back["version"] == "v1"


def _run_guarded_walkthrough(cwd: Path) -> None:
    """The README's guarded canary, run as written: the stack's guard rolls v2 back."""
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _readme_walkthrough("guarded walkthrough")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    started, rollout = _json_values(ran.stdout)
    assert started["traffic"] == [{"version": "v1", "weight": 80}, {"version": "v2", "weight": 20}]
    assert rollout["rollout_id"] == started["rollout_id"]
    assert rollout["status"] == "rolled_back", rollout
    assert str(rollout["outcome"]).startswith("latency_ms regressed"), rollout["outcome"]


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
        "PROMPTLINE_STATE_DIR": str(tmp_path / ".promptline"),
    }
    up = _stack("up", env, tmp_path)
    pid_files = list((tmp_path / ".promptline" / "pids").glob("*.pid"))
    pids = [int(path.read_text()) for path in pid_files]
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert len(pids) == len(PROCESSES)
        local_env = (tmp_path / ".promptline" / "local.env").read_text()
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

        _run_readme_walkthrough(tmp_path)
        _run_guarded_walkthrough(tmp_path)
    finally:
        down = _stack("down", env, tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(pid_alive(pid) for pid in pids)
    assert not list((tmp_path / ".promptline" / "pids").glob("*.pid"))
