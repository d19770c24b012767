"""The real server wires the control-plane routes and reads the Redis setting."""

from __future__ import annotations

import pytest

from promptline.server import create_app
from promptline.settings import Settings

SERVED = {
    ("POST", "/v1/resolve"),
    ("GET", "/v1/prompts"),
    ("POST", "/v1/prompts"),
    ("GET", "/v1/prompts/{prompt_id}"),
    ("GET", "/v1/prompts/{prompt_id}/versions"),
    ("POST", "/v1/prompts/{prompt_id}/versions"),
    ("GET", "/v1/prompts/{prompt_id}/versions/{version}"),
    ("POST", "/v1/prompts/{prompt_id}/deploy"),
    ("POST", "/v1/prompts/{prompt_id}/rollback"),
    ("GET", "/v1/prompts/{prompt_id}/deployments"),
    ("POST", "/dashboard/prompts/"),
    ("GET", "/dashboard/prompts/"),
    ("GET", "/dashboard/prompts/{name}/versions"),
    ("GET", "/api/v1/prompt-templates"),
    ("POST", "/api/v1/prompt-templates"),
}


def test_create_app_serves_every_control_plane_route() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db"))
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    assert routes >= SERVED


def test_redis_url_is_off_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMPTLINE_REDIS_URL", raising=False)
    assert Settings().redis_url == ""
    monkeypatch.setenv("PROMPTLINE_REDIS_URL", "redis://127.0.0.1:6379/2")
    assert Settings().redis_url == "redis://127.0.0.1:6379/2"
