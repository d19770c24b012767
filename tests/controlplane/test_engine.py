"""Resolve over an in-memory catalog: routing, rules, labels, fallbacks and strictness."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlplane.catalog import (
    Catalog,
    DeploymentRecord,
    PromptEntry,
    VersionEntry,
    VersionRecord,
    build_prompt_entry,
)
from controlplane.ids import IdShape, encode
from controlplane.resolve import MissingVariablesError, Resolution, resolve

PROJECT, OTHER_PROJECT = uuid.uuid4(), uuid.uuid4()
T0 = datetime(2025, 5, 8, 14, 0, tzinfo=UTC)
VERSIONS = [
    VersionRecord(uuid.uuid4(), 1, "v1 for {{name}}"),
    VersionRecord(uuid.uuid4(), 2, "v2 for {{name}}, cart {{cart_value}}"),
    VersionRecord(uuid.uuid4(), 3, "v3 plain"),
]
USERS = [f"usr_{i}" for i in range(400)]


def deployment(
    traffic: list[dict[str, Any]],
    rules: list[dict[str, Any]] | None = None,
    *,
    label: str = "",
    minutes: int = 0,
    deployment_id: uuid.UUID | None = None,
) -> DeploymentRecord:
    return DeploymentRecord(
        deployment_id or uuid.uuid4(),
        label,
        traffic,
        rules or [],
        T0 + timedelta(minutes=minutes),
    )


def catalog_of(
    deployments: Sequence[DeploymentRecord] = (),
    versions: Sequence[VersionRecord] = VERSIONS,
    name: str = "checkout-assistant",
) -> Catalog:
    prompt_id = uuid.uuid4()
    entry = build_prompt_entry(prompt_id, PROJECT, name, versions, deployments)
    return Catalog(revision=1, principals={}, prompts={prompt_id: entry})


def answer(catalog: Catalog, user: str = "usr_1", **context: Any) -> Resolution:
    result = resolve(catalog, PROJECT, "checkout-assistant", user, context)
    assert result is not None
    return result


def test_unknown_prompt_and_other_projects_prompt_resolve_to_none() -> None:
    catalog = catalog_of()
    assert resolve(catalog, PROJECT, "nope", "u", {}) is None
    assert resolve(catalog, OTHER_PROJECT, "checkout-assistant", "u", {}) is None


def test_never_deployed_prompt_serves_its_latest_version() -> None:
    result = answer(catalog_of(), name="Ada")
    assert (result.version_number, result.version, result.content) == (3, "v3", "v3 plain")
    assert result.traffic_rule == "latest"
    assert result.deployment_id is None
    assert result.version_id == VERSIONS[2].id
    assert result.content_hash == VERSIONS[2].content_hash


def test_prompt_without_versions_is_not_servable() -> None:
    catalog = catalog_of(versions=[])
    assert catalog.prompt_by_name(PROJECT, "checkout-assistant") is not None
    assert resolve(catalog, PROJECT, "checkout-assistant", "u", {}) is None


def test_full_deployment_answers_with_label_and_interpolates() -> None:
    deployed = deployment([{"version": "v2", "weight": 100}], label="stable-v2")
    result = answer(catalog_of([deployed]), name="Ada", cart_value=42.5)
    assert result.version == "v2"
    assert result.content == "v2 for Ada, cart 42.5"
    assert result.traffic_rule == "stable-v2"
    assert result.deployment_id == deployed.id
    assert result.missing_variables == ()


def test_unlabelled_deployment_is_named_by_its_public_id() -> None:
    deployed = deployment([{"version": "v1", "weight": 100}])
    assert answer(catalog_of([deployed])).traffic_rule == encode(IdShape.DEPLOYMENT, deployed.id)


def test_missing_variables_are_reported_and_strict_mode_refuses() -> None:
    catalog = catalog_of([deployment([{"version": "v2", "weight": 100}])])
    result = answer(catalog)
    assert result.content == "v2 for {{name}}, cart {{cart_value}}"
    assert result.missing_variables == ("name", "cart_value")
    with pytest.raises(MissingVariablesError, match=r"variables: cart_value\.$") as caught:
        resolve(catalog, PROJECT, "checkout-assistant", "u", {"name": "A"}, strict=True)
    assert caught.value.names == ("cart_value",)
    strict = resolve(
        catalog, PROJECT, "checkout-assistant", "u", {"name": "A", "cart_value": 1}, strict=True
    )
    assert strict is not None
    assert strict.content == "v2 for A, cart 1"


def test_split_serves_both_versions_and_is_sticky() -> None:
    catalog = catalog_of(
        [deployment([{"version": "v1", "weight": 50}, {"version": "v2", "weight": 50}], label="ab")]
    )
    first = {user: answer(catalog, user).version_number for user in USERS}
    assert set(first.values()) == {1, 2}
    assert all(answer(catalog, user).version_number == first[user] for user in USERS)
    assert {answer(catalog, user).traffic_rule for user in USERS} == {"ab"}


def test_first_matching_rule_wins_then_the_deployment_decides() -> None:
    rules = [
        {
            "name": "eu-users",
            "when": [{"attribute": "locale", "op": "eq", "value": "de-DE"}],
            "traffic": [{"version": "v3", "weight": 100}],
        },
        {
            "name": "small-carts",
            "when": [{"attribute": "cart_value", "op": "below", "value": 50}],
            "traffic": [{"version": "v2", "weight": 100}],
        },
        {
            "name": "listed",
            "when": [{"attribute": "user_id", "op": "in", "value": ["usr_7"]}],
            "traffic": [{"version": "v2", "weight": 100}],
        },
    ]
    catalog = catalog_of([deployment([{"version": "v1", "weight": 100}], rules, label="base")])
    both = answer(catalog, locale="de-DE", cart_value=10)
    assert (both.version, both.traffic_rule) == ("v3", "eu-users")
    small = answer(catalog, locale="en-US", cart_value=10)
    assert (small.version, small.traffic_rule) == ("v2", "small-carts")
    assert answer(catalog, "usr_7").traffic_rule == "listed"
    for context in ({}, {"cart_value": "10"}, {"cart_value": None}, {"locale": ["de-DE"]}):
        fallback = answer(catalog, **context)
        assert (fallback.version, fallback.traffic_rule) == ("v1", "base")


def test_partial_coverage_falls_through_to_the_next_rule() -> None:
    rules: list[dict[str, Any]] = [
        {"name": "half", "coverage": 50, "traffic": [{"version": "v3", "weight": 100}]},
        {"name": "rest", "traffic": [{"version": "v2", "weight": 100}]},
    ]
    catalog = catalog_of([deployment([{"version": "v1", "weight": 100}], rules)])
    decided = {answer(catalog, user).traffic_rule for user in USERS}
    assert decided == {"half", "rest"}
    for user in USERS:
        result = answer(catalog, user)
        assert result.version == ("v3" if result.traffic_rule == "half" else "v2")


def test_newest_deployment_wins_and_equal_times_break_ties_by_id() -> None:
    older = deployment([{"version": "v1", "weight": 100}], label="older", minutes=0)
    newer = deployment([{"version": "v2", "weight": 100}], label="newer", minutes=5)
    assert answer(catalog_of([newer, older])).traffic_rule == "newer"
    low, high = sorted([uuid.uuid4(), uuid.uuid4()])
    tie_low = deployment([{"version": "v1", "weight": 100}], label="low", deployment_id=low)
    tie_high = deployment([{"version": "v2", "weight": 100}], label="high", deployment_id=high)
    assert answer(catalog_of([tie_high, tie_low])).traffic_rule == "high"


def test_naive_times_are_taken_as_utc() -> None:
    aware = deployment([{"version": "v1", "weight": 100}], label="aware", minutes=0)
    naive = DeploymentRecord(
        uuid.uuid4(),
        "naive",
        [{"version": "v2", "weight": 100}],
        [],
        (T0 + timedelta(minutes=1)).replace(tzinfo=None),
    )
    assert answer(catalog_of([aware, naive])).traffic_rule == "naive"


def test_a_broken_latest_deployment_falls_back_to_the_one_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = deployment([{"version": "v1", "weight": 100}], label="good", minutes=0)
    broken = deployment([{"version": "v1", "weight": 95}], label="broken", minutes=1)
    with caplog.at_level(logging.ERROR, logger="controlplane.catalog"):
        catalog = catalog_of([good, broken])
    assert answer(catalog).traffic_rule == "good"
    assert "Traffic weights must sum to 100. Got 95." in caplog.text


def test_no_servable_deployment_means_no_answer() -> None:
    broken = deployment([{"version": "v9", "weight": 100}])
    catalog = catalog_of([broken])
    entry = catalog.prompt_by_name(PROJECT, "checkout-assistant")
    assert entry is not None
    assert entry.routing is None
    assert resolve(catalog, PROJECT, "checkout-assistant", "u", {}) is None


def test_only_served_versions_keep_their_content() -> None:
    deployed = deployment(
        [{"version": "v1", "weight": 100}, {"version": "v2", "weight": 0}],
        [{"name": "r", "traffic": [{"version": "v3", "weight": 100}]}],
    )
    entry = catalog_of([deployed]).prompt_by_name(PROJECT, "checkout-assistant")
    assert entry is not None
    assert entry.routing is not None
    assert set(entry.routing.versions) == {1, 3}
    assert set(entry.versions_by_number) == {1, 2, 3}


def test_entries_built_the_old_way_still_work() -> None:
    """The ingest edge builds entries positionally; they have no routing to resolve with."""
    prompt_id = uuid.uuid4()
    version = VersionEntry(uuid.uuid4(), 1, "sha256:" + "a" * 64)
    entry = PromptEntry(prompt_id, PROJECT, "p", {1: version}, {version.content_hash: version})
    catalog = Catalog(revision=1, principals={}, prompts={prompt_id: entry})
    assert catalog.prompt(PROJECT, prompt_id) is entry
    assert catalog.prompt(OTHER_PROJECT, prompt_id) is None
    assert catalog.prompt_by_name(PROJECT, "p") is entry
    assert catalog.prompt_by_name(OTHER_PROJECT, "p") is None
    assert resolve(catalog, PROJECT, "p", "u", {}) is None
    assert entry.version_set.latest == 1
