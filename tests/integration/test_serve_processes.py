"""``promptline serve --processes 2``: one port, shared limits, merged metrics, clean stop.

The group runs as the real command does, a parent and two children, over the session's
broker, ClickHouse and Redis. Each request opens a new connection, so the kernel picks a
child afresh for every one (SO_REUSEPORT spreads connections, not requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from promptline.commands.admin import create_key, create_org, create_proj
from promptline.devstack.services import free_port
from promptline.devstack.stack import local_env
from promptline.serve_group import GROUP_ENV
from promptline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HEALTHZ = (
    "promptline_http_requests_total",
    {"route": "/healthz", "method": "GET", "status": "200"},
)
FREE_READS_PER_MINUTE = 30  # GET /v1/prompts on the free plan


@dataclass
class Group:
    """A running ``serve --processes 2``: the parent, its URL, the children's pids seen."""

    parent: asyncio.subprocess.Process
    base: str
    log: Path
    pids: set[int] = field(default_factory=set)


def _env(settings: Settings) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROMPTLINE_")}
    return {**env, **local_env(settings), "PYTHONUNBUFFERED": "1"}


async def _start(settings: Settings, log: Path, *extra: str) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "promptline", "serve", *extra, env=_env(settings), cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """One request on a connection of its own (so the kernel picks a child for it)."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, headers=headers) as answer,
    ):
        return answer.status, await answer.text()


def _sample(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == (labels or {}):
                return float(sample.value)
    return None


async def _scrape(group: Group) -> str:
    """The merged ``/metrics`` with every child in it; the pid of the child that answered."""
    for _attempt in range(240):
        with contextlib.suppress(aiohttp.ClientError):
            status, text = await _get(f"{group.base}/metrics")
            if status == 200 and _sample(text, "promptline_metrics_children_missing") == 0:
                group.pids.add(int(_sample(text, "promptline_serving_process_pid") or 0))
                return text
        await asyncio.sleep(0.25)
    raise AssertionError(f"no complete /metrics; the log: {group.log}")


async def _both_children(group: Group) -> None:
    """Scrape until both children have answered the shared port (200 tries at most)."""
    for _attempt in range(200):
        await _scrape(group)
        if len(group.pids) == 2:
            return


@contextlib.asynccontextmanager
async def _group(settings: Settings, log: Path) -> AsyncIterator[Group]:
    """``serve --processes 2``, ready in both children; killed afterwards if still running."""
    parent = await _start(settings, log, "--processes", "2")
    group = Group(parent, settings.base_url, log)
    try:
        text = await _scrape(group)
        assert _sample(text, "promptline_serving_processes") == 2
        yield group
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()


async def _parent_of(pid: int) -> int:
    stat = await asyncio.to_thread(Path(f"/proc/{pid}/stat").read_text)
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _free_key(settings: Settings) -> str:
    """A key of a free-plan organisation: GET /v1/prompts allows it 30 calls a minute."""
    org = await create_org(settings, "free-org", "free")
    project = await create_proj(settings, org["org_id"], "free-project")
    key = await create_key(settings, project["project_id"], ["read"], "group")
    return str(key["api_key"])


@pytest.mark.kafka
@pytest.mark.clickhouse
@pytest.mark.redis
@pytest.mark.slow
async def test_two_processes_answer_one_port_count_together_and_share_limits(
    migrated: Settings, redis_url: str, tmp_path: Path
) -> None:
    settings = migrated.model_copy(update={"redis_url": redis_url})
    key = await _free_key(settings)
    async with _group(settings, tmp_path / "serve.log") as group:
        await _both_children(group)  # both children answer on the shared port
        assert len(group.pids) == 2, group.pids
        assert [await _parent_of(pid) for pid in group.pids] == [group.parent.pid] * 2

        calls = 40
        for _call in range(calls):
            assert (await _get(f"{group.base}/healthz"))[0] == 200
        assert _sample(await _scrape(group), *HEALTHZ) == calls

        # Counted in each child's memory, 30 calls spread over two children would leave
        # room in both; counted in Redis, the 31st and later are refused whoever answers.
        headers = {"Authorization": f"Bearer {key}"}
        statuses = [
            (await _get(f"{group.base}/v1/prompts", headers))[0]
            for _call in range(FREE_READS_PER_MINUTE + 10)
        ]
        assert statuses == [200] * FREE_READS_PER_MINUTE + [429] * 10


@pytest.mark.kafka
@pytest.mark.clickhouse
@pytest.mark.redis
@pytest.mark.slow
async def test_sigterm_to_the_parent_stops_every_child_and_exits_0(
    migrated: Settings, redis_url: str, tmp_path: Path
) -> None:
    settings = migrated.model_copy(update={"redis_url": redis_url})
    async with _group(settings, tmp_path / "serve.log") as group:
        await _both_children(group)
        group.parent.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(group.parent.wait(), 120) == 0
        assert [pid for pid in group.pids if _alive(pid)] == []


@pytest.mark.kafka
@pytest.mark.clickhouse
@pytest.mark.redis
@pytest.mark.slow
async def test_a_child_that_dies_stops_the_group_with_exit_1(
    migrated: Settings, redis_url: str, tmp_path: Path
) -> None:
    settings = migrated.model_copy(update={"redis_url": redis_url})
    async with _group(settings, tmp_path / "serve.log") as group:
        await _both_children(group)
        assert len(group.pids) == 2, group.pids
        victim, other = sorted(group.pids)
        os.kill(victim, signal.SIGKILL)
        assert await asyncio.wait_for(group.parent.wait(), 120) == 1
        assert not _alive(other)
        said = await asyncio.to_thread(group.log.read_text)
        assert f"serving process {victim} exited" in said


async def test_more_than_one_process_without_redis_exits_2(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        listen_port=free_port(),
        state_dir=tmp_path / "state",
    )
    log = tmp_path / "serve.log"
    parent = await _start(settings, log, "--processes", "2")
    assert await asyncio.wait_for(parent.wait(), 60) == 2
    said = await asyncio.to_thread(log.read_text)
    assert "--processes 2 needs PROMPTLINE_REDIS_URL" in said
    assert "--limits-per-process" in said


def test_the_group_marker_is_not_a_setting() -> None:
    """A child's marker must not be read as configuration (or clash with a setting)."""
    assert GROUP_ENV.removeprefix("PROMPTLINE_").lower() not in Settings.model_fields
