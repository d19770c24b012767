"""``admin list-*`` and ``--org``/``--project`` by name, as the command line runs them."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from promptline import cli
from promptline.commands import admin, listings
from promptline.settings import Settings


def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    """``promptline <argv>`` in this process, with ``settings``."""
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    return cli.main(list(argv))


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_lists_show_what_exists_and_never_a_secret(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(store_settings, monkeypatch, "admin", "create-org", "--name", "acme") == 0
    org = _json(capsys)
    # by name: create-org's id never needs to be copied
    assert (
        run(
            store_settings, monkeypatch, "admin", "create-project", "--org", "acme", "--name", "web"
        )
        == 0
    )
    project = _json(capsys)
    assert project["org_id"] == org["org_id"]
    assert (
        run(store_settings, monkeypatch, "admin", "create-key", "--project", "web", "--name", "ci")
        == 0
    )
    key = _json(capsys)

    assert run(store_settings, monkeypatch, "admin", "list-orgs", "--json") == 0
    [listed_org] = _json(capsys)
    assert (listed_org["org_id"], listed_org["name"], listed_org["plan"]) == (
        org["org_id"],
        "acme",
        "free",
    )
    assert (
        run(store_settings, monkeypatch, "admin", "list-projects", "--org", "acme", "--json") == 0
    )
    [listed_project] = _json(capsys)
    assert (listed_project["project_id"], listed_project["org_name"]) == (
        project["project_id"],
        "acme",
    )

    assert run(store_settings, monkeypatch, "admin", "revoke-key", "--key-id", key["key_id"]) == 0
    capsys.readouterr()
    assert run(store_settings, monkeypatch, "admin", "list-keys", "--project", "web", "--json") == 0
    [listed_key] = _json(capsys)
    assert listed_key["key_id"] == key["key_id"]
    assert key["api_key"].startswith(listed_key["prefix"])
    assert listed_key["scopes"] == "read,write,deploy,ingest"
    assert listed_key["revoked_at"] is not None

    assert run(store_settings, monkeypatch, "admin", "list-keys") == 0
    table = capsys.readouterr().out
    header, row = table.splitlines()
    assert header.split() == list(listed_key)
    assert key["key_id"] in row and listed_key["prefix"] in row and "ci" in row.split()
    assert key["api_key"] not in table


def test_a_shared_name_is_refused_with_the_ids(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = asyncio.run(admin.create_org(store_settings, "twin", "free"))
    second = asyncio.run(admin.create_org(store_settings, "twin", "team"))
    assert (
        run(store_settings, monkeypatch, "admin", "set-plan", "--org", "twin", "--plan", "business")
        == 2
    )
    error = capsys.readouterr().err
    assert first["org_id"] in error and second["org_id"] in error
    # an id still names one of them
    assert (
        run(
            store_settings,
            monkeypatch,
            "admin",
            "set-plan",
            "--org",
            first["org_id"],
            "--plan",
            "business",
        )
        == 0
    )
    assert _json(capsys)["plan"] == "business"

    for org in (first, second):
        asyncio.run(admin.create_proj(store_settings, uuid.UUID(org["org_id"]), "default"))
    with pytest.raises(ValueError, match="2 projects are named 'default'"):
        asyncio.run(admin.create_key(store_settings, "default", ["read"], ""))
    assert asyncio.run(listings.list_keys(store_settings)) == []  # nothing was created


def test_an_unknown_name_or_id_is_refused(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(store_settings, monkeypatch, "admin", "list-projects", "--org", "nobody") == 2
    assert "no organisation has the id or name 'nobody'" in capsys.readouterr().err
    missing = str(uuid.uuid4())
    assert run(store_settings, monkeypatch, "admin", "create-key", "--project", missing) == 2
    assert f"no project {missing}" in capsys.readouterr().err


def test_an_empty_list_says_so(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(store_settings, monkeypatch, "admin", "list-orgs") == 0
    assert capsys.readouterr().out.strip() == "(none)"
    assert run(store_settings, monkeypatch, "admin", "list-orgs", "--json") == 0
    assert _json(capsys) == []
