"""``stack status`` answers up or down with exit 0; ``up`` keeps a running stack's key."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from promptline.commands import admin
from promptline.commands.listings import list_keys
from promptline.devstack import stack
from promptline.devstack.stack import PROCESSES, StackPaths
from promptline.settings import Settings


def _record(settings: Settings, *names: str) -> None:
    """Pid files naming this test's own (live) process, as ``up`` writes them."""
    paths = StackPaths(settings.state_dir.resolve())
    paths.pids.mkdir(parents=True, exist_ok=True)
    for name in names:
        paths.pid_file(name).write_text(f"{os.getpid()}\n")


def test_status_of_a_stack_down_exits_0_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    assert stack.status(settings) == 0
    assert "The local stack is down" in capsys.readouterr().out


def test_status_of_a_stack_up_and_partly_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    _record(settings, "broker")
    assert stack.status(settings) == 1  # a process died: scripts should notice
    assert "partly up" in capsys.readouterr().out
    _record(settings, *PROCESSES)
    assert stack.status(settings) == 0
    assert f"The local stack is up at {settings.base_url}" in capsys.readouterr().out


def test_the_held_key_is_read_from_local_env(tmp_path: Path) -> None:
    paths = StackPaths(Settings(state_dir=tmp_path / "state").state_dir)
    assert stack._held_key(paths) == ""
    paths.root.mkdir(parents=True)
    (paths.root / "local.env").write_text("PROMPTLINE_URL=http://x\nPROMPTLINE_API_KEY=pl_sk_abc\n")
    assert stack._held_key(paths) == "pl_sk_abc"


def test_quickstart_keeps_a_live_key_and_replaces_any_other(store_settings: Settings) -> None:
    first = asyncio.run(admin.quickstart(store_settings))
    assert first["key_kept"] is False
    again = asyncio.run(admin.quickstart(store_settings, keep=first["api_key"]))
    assert (again["api_key"], again["key_kept"]) == (first["api_key"], True)
    assert again["prompt_id"] == first["prompt_id"]

    stranger = asyncio.run(admin.create_org(store_settings, "other", "free"))
    project = asyncio.run(admin.create_proj(store_settings, stranger["org_id"], "p"))
    foreign = asyncio.run(admin.create_key(store_settings, project["project_id"], ["read"], ""))
    for unusable in ("pl_sk_never-issued", foreign["api_key"]):
        minted = asyncio.run(admin.quickstart(store_settings, keep=unusable))
        assert minted["key_kept"] is False
        assert minted["api_key"] not in (unusable, first["api_key"])

    revoked = asyncio.run(admin.quickstart(store_settings))
    asyncio.run(admin.revoke_key(store_settings, _key_id(store_settings, revoked["api_key"])))
    replaced = asyncio.run(admin.quickstart(store_settings, keep=revoked["api_key"]))
    assert replaced["key_kept"] is False and replaced["api_key"] != revoked["api_key"]


def _key_id(settings: Settings, secret: str) -> uuid.UUID:
    """The id of the key whose secret is ``secret``, found by its prefix."""
    [found] = [row for row in asyncio.run(list_keys(settings)) if secret.startswith(row["prefix"])]
    return uuid.UUID(found["key_id"])
