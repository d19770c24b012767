"""Signing in and out of the dashboard: cookies, sessions across processes, revocation,
cross-site and CSRF refusals, the sign-in limit, and a limit class of the pages' own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controlplane.tenancy import revoke_api_key
from promptline.commands.admin import transaction
from promptline.server import create_app
from promptline.settings import Settings
from tests.ui.support import Client, Seeded, api, csrf_of, make_project, sign_in

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.fixture
async def seeded(migrated: Settings) -> Seeded:
    return await make_project(migrated)


@pytest.fixture
async def client(migrated: Settings, seeded: Seeded) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(migrated))) as client:
        yield client


async def test_a_page_without_a_session_sends_the_browser_to_sign_in(client: Client) -> None:
    response = await client.get("/ui/prompts?q=x", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/ui/sign-in?next=%2Fui%2Fprompts%3Fq%3Dx"
    page = await client.get("/ui/sign-in")
    assert page.status == 200
    assert 'name="key"' in await page.text()
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


async def test_a_wrong_key_is_refused_and_gets_no_cookie(client: Client, seeded: Seeded) -> None:
    response = await sign_in(client, seeded.deploy_key + "x")
    assert response.status == 401
    assert "not valid" in await response.text()
    assert "Set-Cookie" not in response.headers
    assert (await client.get("/ui/prompts", allow_redirects=False)).status == 303


async def test_signing_in_sets_a_strict_http_only_cookie_for_ui_only(
    client: Client, seeded: Seeded
) -> None:
    response = await sign_in(client, seeded.deploy_key)
    assert response.status == 303
    assert response.headers["Location"] == "/ui/prompts"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/ui/" in cookie
    assert "Max-Age=43200" in cookie
    assert "Secure" not in cookie
    assert seeded.deploy_key not in cookie
    page = await client.get("/ui/prompts")
    assert page.status == 200
    # The cookie authenticates the pages only, never the API.
    assert (await client.get("/v1/prompts")).status == 401


async def test_the_cookie_is_secure_behind_a_proxy_that_says_https(
    client: Client, seeded: Seeded
) -> None:
    response = await sign_in(client, seeded.deploy_key, **{"X-Forwarded-Proto": "https"})
    assert response.status == 303
    assert "Secure" in response.headers["Set-Cookie"]


async def test_a_session_works_in_another_process_and_sign_out_ends_it_there(
    migrated: Settings, client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded.deploy_key)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/ui/"))["promptline_ui"]
    async with TestClient(TestServer(create_app(migrated))) as other:
        jar = {"promptline_ui": cookie.value}
        assert (await other.get("/ui/prompts", cookies=jar, allow_redirects=False)).status == 200
        page = await (await client.get("/ui/prompts")).text()
        signed_out = await client.post(
            "/ui/sign-out", data={"csrf_token": csrf_of(page)}, allow_redirects=False
        )
        assert signed_out.status == 303
        again = await other.get("/ui/prompts", cookies=jar, allow_redirects=False)
        assert again.status == 303


async def test_a_revoked_key_ends_its_sessions_within_a_second(
    migrated: Settings, client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded.deploy_key)
    assert (await client.get("/ui/prompts", allow_redirects=False)).status == 200
    async with transaction(migrated) as session:
        await revoke_api_key(session, seeded.deploy_key_id)
    status = 200
    for _ in range(20):  # a bound on waiting, not a timing check: the reload takes 0.25 s
        await asyncio.sleep(0.05)
        status = (await client.get("/ui/prompts", allow_redirects=False)).status
        if status == 303:
            break
    assert status == 303


async def test_a_form_without_its_token_or_from_another_site_is_refused(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded.deploy_key)
    prompts = await api(client, seeded.deploy_key, "POST", "/v1/prompts", {"name": "p"})
    await api(client, seeded.deploy_key, "POST", "/v1/prompts/p/versions", {"content": "A"})
    page = await (await client.get(f"/ui/prompts/{prompts['id']}")).text()
    token = csrf_of(page)
    path = f"/ui/prompts/{prompts['id']}/deploy"
    form = {"weight_1": "100", "confirm": "yes"}
    missing = await client.post(path, data=form, allow_redirects=False)
    assert missing.status == 403
    wrong = await client.post(path, data=form | {"csrf_token": "x" * 43}, allow_redirects=False)
    assert wrong.status == 403
    cross = await client.post(
        path,
        data=form | {"csrf_token": token},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )
    assert cross.status == 403
    assert "another site" in await cross.text()
    history = await api(client, seeded.deploy_key, "GET", "/v1/prompts/p/deployments")
    assert history["total"] == 0
    done = await client.post(path, data=form | {"csrf_token": token}, allow_redirects=False)
    assert done.status == 303, await done.text()
    history = await api(client, seeded.deploy_key, "GET", "/v1/prompts/p/deployments")
    assert history["total"] == 1


async def test_a_read_only_key_sees_pages_but_cannot_deploy(client: Client, seeded: Seeded) -> None:
    created = await api(client, seeded.deploy_key, "POST", "/v1/prompts", {"name": "ro"})
    await api(client, seeded.deploy_key, "POST", "/v1/prompts/ro/versions", {"content": "A"})
    await sign_in(client, seeded.read_key)
    page = await (await client.get(f"/ui/prompts/{created['id']}")).text()
    assert 'id="deploy-form"' not in page
    refused = await client.post(
        f"/ui/prompts/{created['id']}/deploy",
        data={"weight_1": "100", "confirm": "yes", "csrf_token": csrf_of(page)},
        allow_redirects=False,
    )
    assert refused.status == 403
    assert "deploy" in await refused.text()


async def test_another_projects_prompt_is_not_found(client: Client, seeded: Seeded) -> None:
    created = await api(client, seeded.other_key, "POST", "/v1/prompts", {"name": "theirs"})
    await sign_in(client, seeded.deploy_key)
    listing = await (await client.get("/ui/prompts")).text()
    assert "theirs" not in listing
    response = await client.get(f"/ui/prompts/{created['id']}")
    assert response.status == 404


async def test_sign_in_attempts_are_limited_per_address(client: Client, seeded: Seeded) -> None:
    statuses = [(await sign_in(client, "pl_sk_guess" + str(n))).status for n in range(10)]
    assert statuses == [401] * 10
    limited = await sign_in(client, seeded.deploy_key)
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "Set-Cookie" not in limited.headers


async def test_pages_count_against_their_own_limit_not_the_apis_reads(
    migrated: Settings,
) -> None:
    free = await make_project(migrated, plan="free")
    async with TestClient(TestServer(create_app(migrated))) as client:
        await sign_in(client, free.read_key)
        for _ in range(40):  # more than the free plan's 30 API reads a minute
            assert (await client.get("/ui/prompts")).status == 200
        listing = await client.get(
            "/v1/prompts", headers={"Authorization": f"Bearer {free.read_key}"}
        )
        assert listing.status == 200


async def test_sign_out_needs_its_token_and_our_origin(client: Client, seeded: Seeded) -> None:
    await sign_in(client, seeded.deploy_key)
    token = csrf_of(await (await client.get("/ui/prompts")).text())
    stale = await client.post("/ui/sign-out", data={"csrf_token": "x" * 43}, allow_redirects=False)
    assert stale.status == 403
    cross = await client.post(
        "/ui/sign-out",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert cross.status == 403
    assert (await client.get("/ui/prompts", allow_redirects=False)).status == 200
    done = await client.post("/ui/sign-out", data={"csrf_token": token}, allow_redirects=False)
    assert done.status == 303
    assert (await client.get("/ui/prompts", allow_redirects=False)).status == 303
