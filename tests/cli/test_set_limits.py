"""``set-limits`` takes only endpoints the service rate-limits: others would never apply."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.api.ratelimit import Endpoint, LimitClass
from ingest import admission
from promptline import cli
from promptline.commands import admin, listings
from promptline.commands.served_limits import refuse_unserved, served_endpoints
from promptline.settings import Settings


def test_the_served_endpoints_are_the_routes_the_service_limits() -> None:
    served = served_endpoints(Settings())
    assert {
        "POST /v1/resolve",
        "GET /v1/prompts/:prompt_id/versions",
        "POST /api/v1/events/batch",
        "POST /api/v1/prompts/analytics",
        "GET /dashboard/prompts/:name/compare",
        "POST /resolve",  # seed 001's short names
        "GET /prompts",
    } <= served
    assert "GET /healthz" not in served  # served, but not rate-limited
    assert "POST /v1/nothing" not in served


def test_a_declared_endpoint_counts_only_where_a_route_serves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ghost = Endpoint("POST /v1/ghost", LimitClass.RESOLVE)
    renamed = Endpoint("GET /v1/prompts/:reference/versions/:n", LimitClass.READ)
    monkeypatch.setattr(admission, "GHOST", ghost, raising=False)
    monkeypatch.setattr(admission, "RENAMED", renamed, raising=False)
    served = served_endpoints(Settings())
    assert ghost.name not in served  # declared, but no route serves it
    assert renamed.name in served  # the route's parameters may be named otherwise


def test_refusal_lists_the_valid_names() -> None:
    served = {"POST /v1/resolve", "GET /v1/prompts/:prompt_id"}
    refuse_unserved({"post  /v1/resolve": "1/second", "signals_per_month": 5}, served)
    refuse_unserved(["GET /v1/prompts/{prompt_id}"], served)  # either placeholder notation
    with pytest.raises(ValueError, match="'POST /v1/resolv'") as refused:
        refuse_unserved(["POST /v1/resolv"], served)
    assert "GET /v1/prompts/:prompt_id" in str(refused.value)
    assert "signals_per_month" in str(refused.value)


def test_set_limits_refuses_an_unserved_endpoint_and_stores_nothing(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(admin.create_org(store_settings, "acme", "free"))
    monkeypatch.setattr(cli, "get_settings", lambda: store_settings)
    code = cli.main(
        [
            "admin",
            "set-limits",
            "--org",
            "acme",
            "--limit",
            "signals_per_month=10",
            "--limit",
            "POST /v1/nowhere=5/second",
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "'POST /v1/nowhere'" in error and "POST /api/v1/events/batch" in error
    [org] = asyncio.run(listings.list_orgs(store_settings))
    assert org["limit_overrides"] == 0

    code = cli.main(
        ["admin", "set-limits", "--org", "acme", "--limit", "POST /api/v1/events/batch=5/second"]
    )
    assert code == 0
    assert '"POST /api/v1/events/batch": "5/second"' in capsys.readouterr().out
