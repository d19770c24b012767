"""``KeptPlane`` reads an app's control plane once and keeps it."""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from controlplane.api import CONTROL_PLANE, ControlPlane, RateLimiter
from controlplane.api.context import KeptPlane


def _app() -> tuple[web.Application, ControlPlane]:
    app = web.Application()
    plane = ControlPlane(catalog=cast(Any, object()), limiter=RateLimiter())
    app[CONTROL_PLANE] = plane
    return app, plane


def test_the_first_request_reads_the_plane_and_later_ones_reuse_it() -> None:
    app, plane = _app()
    assert KeptPlane().plane is None
    kept = KeptPlane()
    assert kept.of(make_mocked_request("POST", "/v1/resolve", app=app)) is plane
    assert kept.plane is plane
    other_app, _other = _app()  # never consulted again once kept
    assert kept.of(make_mocked_request("POST", "/v1/resolve", app=other_app)) is plane
