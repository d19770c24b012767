"""The control plane's HTTP routes, one module per route family (seed document).

- ``promptlab``: seed 001, ``/v1/...`` (resolve, prompts, versions, deploy, rollback);
- ``dashboard``: seed 002, ``/dashboard/prompts/...`` (create and list versions);
- ``templates``: seed 003, ``/api/v1/prompt-templates``;
- ``webhooks``: a project's webhooks, ``/v1/webhooks`` (seed 001's family; issue 15);
- ``rollouts``: a prompt's guarded rollout, ``/v1/prompts/:id/rollout[/stop]`` (issue 15);
- ``sdk``: the SDK's configuration and its event stream, ``/v1/sdk/config|stream`` (issue 16).

Every handler authenticates against the in-memory catalog, checks the key's scope, counts
the call against the key's rate limit (``ratelimit``), and only then reads the body. The
app must hold a :class:`ControlPlane` under :data:`CONTROL_PLANE` while serving (the
server's cleanup context sets it).
"""

from __future__ import annotations

from aiohttp import web

from controlplane.api import dashboard, promptlab, rollouts, sdk, templates, webhooks
from controlplane.api.context import CONTROL_PLANE, ControlPlane
from controlplane.api.ratelimit import RateLimiter

__all__ = ["CONTROL_PLANE", "ControlPlane", "RateLimiter", "add_routes"]


def add_routes(app: web.Application) -> None:
    """Register every control-plane route."""
    promptlab.add_routes(app)
    dashboard.add_routes(app)
    templates.add_routes(app)
    webhooks.add_routes(app)
    rollouts.add_routes(app)
    sdk.add_routes(app)
