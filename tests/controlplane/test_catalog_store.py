"""The catalog loads deployments and rules from a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane import authoring, tenancy
from controlplane import catalog as catalog_module
from controlplane.catalog import DEPLOYMENTS_TRIED, CatalogWatcher, load_catalog
from controlplane.keys import digest
from controlplane.resolve import resolve
from controlplane.store.models import Deployment, new_id
from controlplane.store.revision import bump_revision, current_revision

T0 = datetime(2025, 5, 8, 15, 0, tzinfo=UTC)


async def deploy(
    session: AsyncSession,
    prompt_id: uuid.UUID,
    traffic: list[dict[str, Any]],
    rules: list[dict[str, Any]] | None = None,
    *,
    label: str = "",
    minutes: int = 0,
    deployment_id: uuid.UUID | None = None,
) -> Deployment:
    row = Deployment(
        id=deployment_id or new_id(),
        prompt_id=prompt_id,
        label=label,
        traffic=traffic,
        rules=rules or [],
        deployed_at=T0 + timedelta(minutes=minutes),
    )
    session.add(row)
    await bump_revision(session)
    await session.flush()
    return row


async def test_catalog_loads_deployments_and_rules_and_resolve_answers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        org = await tenancy.create_organization(session, "acme", "team")
        project = await tenancy.create_project(session, org.id, "shop")
        key = await tenancy.create_api_key(session, project.id, ["read"])
        checkout = await authoring.get_or_create_prompt(session, project.id, "checkout-assistant")
        v1 = await authoring.push_version(session, checkout, "Old {{name}}")
        v2 = await authoring.push_version(session, checkout, "Hello {{name}}, cart {{cart.total}}")
        v3 = await authoring.push_version(session, checkout, "Hallo {{name}}")
        await authoring.push_version(session, checkout, "v4: never deployed")
        await deploy(session, checkout.id, [{"version": "v1", "weight": 100}], label="first")
        live = await deploy(
            session,
            checkout.id,
            [{"version": "v1", "weight": 90}, {"version": v2.content_hash, "weight": 10}],
            [
                {
                    "name": "eu-users",
                    "when": [{"attribute": "locale", "op": "eq", "value": "de-DE"}],
                    "traffic": [{"version": "v3", "weight": 100}],
                }
            ],
            label="canary-v2-10pct",
            minutes=5,
        )
        fresh = await authoring.get_or_create_prompt(session, project.id, "support-bot")
        fresh_v1 = await authoring.push_version(session, fresh, "Support for {{name}}")

    watcher = CatalogWatcher(sessions)
    await watcher.refresh()
    catalog = watcher.current
    assert catalog.principal(digest(key.secret)) is not None

    entry = catalog.prompt_by_name(project.id, "checkout-assistant")
    assert entry is not None
    assert catalog.prompt(project.id, checkout.id) is entry
    assert set(entry.versions_by_number) == {1, 2, 3, 4}
    assert entry.versions_by_hash[v2.content_hash].id == v2.id
    assert entry.routing is not None
    assert entry.routing.deployment_id == live.id
    assert set(entry.routing.versions) == {1, 2, 3}  # v4's content is not kept

    eu = resolve(
        catalog, project.id, "checkout-assistant", "usr_1", {"locale": "de-DE", "name": "Jo"}
    )
    assert eu is not None
    assert (eu.version, eu.traffic_rule, eu.content) == ("v3", "eu-users", "Hallo Jo")
    assert eu.version_id == v3.id
    assert eu.deployment_id == live.id

    answers = [
        resolve(
            catalog,
            project.id,
            "checkout-assistant",
            f"usr_{i}",
            {"name": "Jo", "cart": {"total": 12.5}},
        )
        for i in range(300)
    ]
    assert {a.traffic_rule for a in answers if a is not None} == {"canary-v2-10pct"}
    by_version = {a.version: a for a in answers if a is not None}
    assert set(by_version) == {"v1", "v2"}
    assert by_version["v2"].content == "Hello Jo, cart 12.5"
    assert by_version["v1"].version_id == v1.id

    support = resolve(catalog, project.id, "support-bot", "usr_1", {})
    assert support is not None
    assert (support.version_id, support.traffic_rule) == (fresh_v1.id, "latest")
    assert support.missing_variables == ("name",)
    assert resolve(catalog, uuid.uuid4(), "support-bot", "usr_1", {}) is None


async def test_newest_row_wins_past_more_than_the_loaded_history(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        org = await tenancy.create_organization(session, "acme", "free")
        project = await tenancy.create_project(session, org.id, "shop")
        prompt = await authoring.get_or_create_prompt(session, project.id, "p")
        for content in ("one", "two", "three"):
            await authoring.push_version(session, prompt, content)
        for minutes in range(DEPLOYMENTS_TRIED + 2):
            await deploy(
                session,
                prompt.id,
                [{"version": "v1", "weight": 100}],
                label=f"old-{minutes}",
                minutes=minutes,
            )
        low, high = sorted([new_id(), new_id()])
        tied = DEPLOYMENTS_TRIED + 5
        await deploy(
            session,
            prompt.id,
            [{"version": "v3", "weight": 100}],
            label="tie-high",
            minutes=tied,
            deployment_id=high,
        )
        await deploy(
            session,
            prompt.id,
            [{"version": "v2", "weight": 100}],
            label="tie-low",
            minutes=tied,
            deployment_id=low,
        )

    async with sessions() as session, session.begin():
        catalog = await load_catalog(session)
    result = resolve(catalog, project.id, "p", "u", {})
    assert result is not None
    assert (result.version, result.traffic_rule) == ("v3", "tie-high")


async def test_broken_latest_row_falls_back_and_changes_are_picked_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        org = await tenancy.create_organization(session, "acme", "free")
        project = await tenancy.create_project(session, org.id, "shop")
        prompt = await authoring.get_or_create_prompt(session, project.id, "p")
        await authoring.push_version(session, prompt, "one")
        await authoring.push_version(session, prompt, "two")
        await deploy(session, prompt.id, [{"version": "v1", "weight": 100}], label="good")
        await deploy(session, prompt.id, [{"version": "v2", "weight": 95}], label="bad", minutes=1)

    watcher = CatalogWatcher(sessions)
    await watcher.refresh()
    before = resolve(watcher.current, project.id, "p", "u", {})
    assert before is not None
    assert before.traffic_rule == "good"

    async with sessions() as session, session.begin():
        await deploy(
            session, prompt.id, [{"version": "v2", "weight": 100}], label="fixed", minutes=2
        )
    await watcher.refresh()
    after = resolve(watcher.current, project.id, "p", "u", {})
    assert after is not None
    assert (after.version, after.traffic_rule) == ("v2", "fixed")


async def test_reload_recompiles_only_prompts_whose_routing_changed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        org = await tenancy.create_organization(session, "acme", "free")
        project = await tenancy.create_project(session, org.id, "shop")
        prompts = {}
        for name in ("deployed", "redeployed", "undeployed", "grows"):
            prompts[name] = await authoring.get_or_create_prompt(session, project.id, name)
            await authoring.push_version(session, prompts[name], f"{name} one")
            await authoring.push_version(session, prompts[name], f"{name} two")
        for name in ("deployed", "redeployed"):
            await deploy(session, prompts[name].id, [{"version": "v1", "weight": 100}])

    watcher = CatalogWatcher(sessions)
    await watcher.refresh()
    before = {name: watcher.current.prompts[p.id].routing for name, p in prompts.items()}

    async with sessions() as session, session.begin():
        await deploy(
            session,
            prompts["redeployed"].id,
            [{"version": "v2", "weight": 100}],
            label="v2",
            minutes=1,
        )
        grows = await session.merge(prompts["grows"])
        await authoring.push_version(session, grows, "grows three")
    await watcher.refresh()
    after = {name: watcher.current.prompts[p.id].routing for name, p in prompts.items()}

    assert after["deployed"] is before["deployed"]
    assert after["undeployed"] is before["undeployed"]
    assert after["redeployed"] is not before["redeployed"]
    assert after["grows"] is not before["grows"]
    redeployed = resolve(watcher.current, project.id, "redeployed", "u", {})
    grown = resolve(watcher.current, project.id, "grows", "u", {})
    assert redeployed is not None
    assert grown is not None
    assert (redeployed.version, redeployed.traffic_rule) == ("v2", "v2")
    assert (grown.version, grown.content, grown.traffic_rule) == ("v3", "grows three", "latest")


async def test_an_older_load_finishing_last_does_not_undo_a_newer_one(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A background poll still loading when a write refreshes the catalog: the write's
    refresh waits for it, then loads the newer revision, so the newest snapshot stays."""
    async with sessions() as session, session.begin():
        org = await tenancy.create_organization(session, "acme", "free")
        await tenancy.create_project(session, org.id, "shop")
    watcher = CatalogWatcher(sessions)
    loading, release = asyncio.Event(), asyncio.Event()
    real_load = catalog_module.load_catalog

    async def slow_first_load(session: AsyncSession, previous: Any) -> Any:
        loaded = await real_load(session, previous)
        if not loading.is_set():  # the poll: loaded from before the write, not yet stored
            loading.set()
            await release.wait()
        return loaded

    monkeypatch.setattr(catalog_module, "load_catalog", slow_first_load)
    poll = asyncio.create_task(watcher.refresh())  # loads the first revision, then stalls
    await loading.wait()
    async with sessions() as session, session.begin():
        await bump_revision(session)
        newest = await current_revision(session)
    after_write = asyncio.create_task(watcher.refresh())
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(poll, after_write)
    assert watcher.current.revision == newest
