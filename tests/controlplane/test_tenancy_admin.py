"""Changing an organisation's plan and limit overrides, as ``promptline admin`` does."""

from __future__ import annotations

import uuid

import pytest

from controlplane.api.ratelimit import Endpoint, LimitClass, limits_for
from controlplane.catalog import Principal, load_catalog
from controlplane.keys import digest
from controlplane.overrides import SIGNALS_PER_MONTH, parse_override
from controlplane.store.engine import create_engine, session_factory
from controlplane.store.revision import current_revision
from controlplane.tenancy import create_api_key, create_organization, create_project
from ingest.quota import OVERRIDE_KEY, monthly_signal_limit
from promptline.commands import admin
from promptline.settings import Settings

RESOLVE = Endpoint("POST /v1/resolve", LimitClass.RESOLVE)


async def _tenant(url: str) -> tuple[uuid.UUID, str]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            org = await create_organization(session, "acme", "free")
            project = await create_project(session, org.id, "web")
            issued = await create_api_key(session, project.id, ["read"])
            return org.id, issued.secret
    finally:
        await engine.dispose()


async def _principal_and_revision(url: str, secret: str) -> tuple[Principal | None, int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            catalog = await load_catalog(session)
            return catalog.principal(digest(secret)), await current_revision(session)
    finally:
        await engine.dispose()


async def test_set_plan_and_limits_reach_the_catalog(fresh_store_url: str) -> None:
    settings = Settings(database_url=fresh_store_url)
    org_id, secret = await _tenant(fresh_store_url)
    _, before = await _principal_and_revision(fresh_store_url, secret)

    moved = await admin.change_plan(settings, org_id, "business")
    assert moved["plan"] == "business"
    changed = await admin.change_limits(
        settings,
        org_id,
        ["post   /v1/resolve = 2000/second", "signals_per_month=250000", "GET /prompts=7/minute"],
        [],
    )
    assert changed["limit_overrides"] == {
        "POST /v1/resolve": "2000/second",
        "signals_per_month": 250_000,
        "GET /prompts": "7/minute",
    }
    principal, after = await _principal_and_revision(fresh_store_url, secret)
    assert after >= before + 2  # each change moves the revision: every process reloads
    assert principal is not None
    assert principal.plan == "business"
    [limit] = limits_for(principal, RESOLVE)
    assert (limit.amount, limit.get_expiry()) == (2000, 1)
    assert monthly_signal_limit(principal) == 250_000

    cleared = await admin.change_limits(settings, org_id, [], ["GET  /prompts"])
    assert set(cleared["limit_overrides"]) == {"POST /v1/resolve", "signals_per_month"}
    reset = await admin.change_limits(
        settings, org_id, ["POST /v1/resolve=9/second"], [], reset=True
    )
    assert reset["limit_overrides"] == {"POST /v1/resolve": "9/second"}
    # --clear names an override as --limit does: the method in any case
    cleared_again = await admin.change_limits(settings, org_id, [], ["post  /v1/resolve"])
    assert cleared_again["limit_overrides"] == {}


async def test_unknown_organisation_and_bad_overrides_are_refused(fresh_store_url: str) -> None:
    settings = Settings(database_url=fresh_store_url)
    with pytest.raises(ValueError, match="no organisation"):
        await admin.change_plan(settings, uuid.uuid4(), "team")
    org_id, secret = await _tenant(fresh_store_url)
    with pytest.raises(ValueError, match="not a rate limit"):
        await admin.change_limits(settings, org_id, ["POST /v1/resolve=fast"], [])
    principal, _ = await _principal_and_revision(fresh_store_url, secret)
    assert principal is not None
    assert principal.limit_overrides == {}  # nothing half-written


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("POST /v1/resolve", "expected NAME=VALUE"),
        ("=5/second", "expected NAME=VALUE"),
        ("resolve=5/second", "must be 'signals_per_month' or an endpoint"),
        ("POST /v1/resolve=lots", "not a rate limit"),
        ("signals_per_month=-3", "whole number"),
        ("signals_per_month=1e6", "whole number"),
    ],
)
def test_parse_override_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_override(text)


def test_the_quota_reads_the_key_the_admin_command_writes() -> None:
    assert SIGNALS_PER_MONTH == OVERRIDE_KEY
    assert parse_override("signals_per_month=42") == (OVERRIDE_KEY, 42)
