"""Dashboard test support: a project with keys, a form-posting client, and page parsing."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from controlplane.tenancy import create_api_key, create_organization, create_project
from promptline.commands.admin import transaction
from promptline.settings import Settings

Client = TestClient[web.Request, web.Application]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Seeded:
    """A project with a deploy key, a read-only key, and another project's key."""

    project_id: uuid.UUID
    org_id: uuid.UUID
    deploy_key: str
    read_key: str
    other_key: str
    deploy_key_id: uuid.UUID


async def make_project(settings: Settings, plan: str = "business") -> Seeded:
    """A new organisation and project on ``plan``, and a second project elsewhere."""
    async with transaction(settings) as session:
        org = await create_organization(session, f"org-{uuid.uuid4().hex[:8]}", plan)
        project = await create_project(session, org.id, "dashboard")
        deploy = await create_api_key(session, project.id, ["read", "write", "deploy", "ingest"])
        read = await create_api_key(session, project.id, ["read"])
        other_org = await create_organization(session, f"org-{uuid.uuid4().hex[:8]}", plan)
        other_project = await create_project(session, other_org.id, "elsewhere")
        other = await create_api_key(session, other_project.id, ["read", "write", "deploy"])
    return Seeded(project.id, org.id, deploy.secret, read.secret, other.secret, deploy.key_id)


async def sign_in(client: Client, key: str, **headers: str) -> Any:
    """Post the sign-in form; the client's cookie jar keeps the session."""
    return await client.post(
        "/ui/sign-in",
        data={"key": key, "next": "/ui/prompts"},
        allow_redirects=False,
        headers=headers,
    )


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF.search(page)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


async def api(client: Client, key: str, method: str, path: str, body: Any = None) -> Any:
    """Call the JSON API with a key; the answer's body (2xx asserted)."""
    response = await client.request(
        method, path, json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status < 300, await response.text()
    return await response.json()
