"""Properties of assignment: determinism, weights honoured, one-directional ramps.

Statistical checks use 20,000 users and a 5-sigma binomial tolerance: hashing is
deterministic, so a given example always passes or always fails, and the chance that a
correct implementation lands outside 5 sigma is below one in a million per check.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.catalog import (
    Catalog,
    DeploymentRecord,
    VersionRecord,
    build_prompt_entry,
)
from controlplane.resolve import resolve
from controlplane.resolve.routing import Routing

PROJECT = uuid.uuid4()
MAX_VERSION = 6
VERSIONS = [VersionRecord(uuid.uuid4(), n, f"version {n} {{{{x}}}}") for n in range(1, 7)]
MANY_USERS = [f"user-{i}" for i in range(20_000)]
SOME_USERS = MANY_USERS[:3_000]
T0 = datetime(2025, 5, 8, tzinfo=UTC)

Split = dict[int, int]


def routing(
    prompt_id: uuid.UUID, split: Split, rules: list[dict[str, Any]] | None = None
) -> Routing:
    traffic = [{"version": number, "weight": weight} for number, weight in split.items()]
    record = DeploymentRecord(uuid.uuid4(), "d", traffic, rules or [], T0)
    entry = build_prompt_entry(prompt_id, PROJECT, "p", VERSIONS, [record])
    assert entry.routing is not None
    return entry.routing


def assign(route: Routing, users: list[str]) -> dict[str, int]:
    return {user: route.route(user, {})[0] for user in users}


def within_5_sigma(count: int, trials: int, p: float) -> bool:
    mean = trials * p
    sigma = math.sqrt(trials * p * (1 - p))
    return abs(count - mean) <= 5 * sigma + 1e-9


@st.composite
def weights_over(draw: st.DrawFn, numbers: list[int]) -> Split:
    """Integer weights for ``numbers`` summing to 100 (zeros allowed)."""
    cuts = draw(st.lists(st.integers(0, 100), min_size=len(numbers) - 1, max_size=len(numbers) - 1))
    bounds = [0, *sorted(cuts), 100]
    return {number: bounds[i + 1] - bounds[i] for i, number in enumerate(numbers)}


@st.composite
def splits(draw: st.DrawFn, min_versions: int = 2, max_versions: int = 4) -> Split:
    """Distinct versions, in no particular order, with weights summing to 100."""
    numbers = draw(
        st.lists(
            st.integers(1, MAX_VERSION),
            min_size=min_versions,
            max_size=max_versions,
            unique=True,
        )
    )
    return draw(weights_over(numbers))


@settings(max_examples=50, deadline=None)
@given(
    prompt_id=st.uuids(),
    split=splits(),
    user=st.text(max_size=30),
    context=st.dictionaries(
        st.sampled_from(["x", "locale", "cart_value"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False),
            st.text(max_size=10),
        ),
    ),
)
def test_resolve_is_deterministic(
    prompt_id: uuid.UUID, split: Split, user: str, context: dict[str, Any]
) -> None:
    rules = [
        {
            "name": "cheap",
            "when": [{"attribute": "cart_value", "op": "lt", "value": 50}],
            "traffic": [{"version": "v6", "weight": 100}],
            "coverage": 50,
        }
    ]

    def fresh_catalog() -> Catalog:
        traffic = [{"version": n, "weight": w} for n, w in split.items()]
        record = DeploymentRecord(uuid.UUID(int=7), "d", traffic, rules, T0)
        entry = build_prompt_entry(prompt_id, PROJECT, "p", VERSIONS, [record])
        return Catalog(revision=1, principals={}, prompts={prompt_id: entry})

    first = resolve(fresh_catalog(), PROJECT, "p", user, context)
    second = resolve(fresh_catalog(), PROJECT, "p", user, context)
    assert first is not None
    assert first == second


@settings(max_examples=25, deadline=None)
@given(prompt_id=st.uuids(), split=splits())
def test_split_matches_weights(prompt_id: uuid.UUID, split: Split) -> None:
    counts = Counter(assign(routing(prompt_id, split), MANY_USERS).values())
    for number, weight in split.items():
        assert within_5_sigma(counts[number], len(MANY_USERS), weight / 100), (number, counts)
        if weight == 0:
            assert counts[number] == 0


@settings(max_examples=60, deadline=None)
@given(
    prompt_id=st.uuids(),
    old=st.integers(1, MAX_VERSION - 1),
    step=st.integers(1, MAX_VERSION - 1),
    before=st.integers(0, 100),
    after=st.integers(0, 100),
)
def test_two_version_ramp_moves_users_one_way_only(
    prompt_id: uuid.UUID, old: int, step: int, before: int, after: int
) -> None:
    new = min(old + step, MAX_VERSION)
    first = assign(routing(prompt_id, {old: 100 - before, new: before}), SOME_USERS)
    second = assign(routing(prompt_id, {new: after, old: 100 - after}), SOME_USERS)
    moved = {user for user in SOME_USERS if first[user] != second[user]}
    if after >= before:  # ramp up: only onto the canary
        assert all(first[u] == old and second[u] == new for u in moved)
    else:  # ramp down: only back off it
        assert all(first[u] == new and second[u] == old for u in moved)


@settings(max_examples=60, deadline=None)
@given(prompt_id=st.uuids(), first=splits(3, 4), data=st.data())
def test_newest_and_oldest_versions_are_monotone_in_their_own_weight(
    prompt_id: uuid.UUID, first: Split, data: st.DataObject
) -> None:
    """Whatever happens to the other weights, as ranges grow from the two ends."""
    versions = sorted(first)
    second = data.draw(weights_over(versions))
    a = assign(routing(prompt_id, first), SOME_USERS)
    b = assign(routing(prompt_id, second), SOME_USERS)
    for version in (versions[0], versions[-1]):
        users_a = {u for u, v in a.items() if v == version}
        users_b = {u for u, v in b.items() if v == version}
        if second[version] >= first[version]:
            assert users_a <= users_b
        else:
            assert users_b <= users_a


@settings(max_examples=60, deadline=None)
@given(prompt_id=st.uuids(), split=splits(3, 4), data=st.data())
def test_moving_weight_between_neighbours_moves_users_only_between_them(
    prompt_id: uuid.UUID, split: Split, data: st.DataObject
) -> None:
    versions = sorted(split)
    index = data.draw(st.integers(0, len(versions) - 2))
    lower, upper = versions[index], versions[index + 1]
    shift = data.draw(st.integers(-split[upper], split[lower]))  # >0: lower -> upper
    changed = {**split, lower: split[lower] - shift, upper: split[upper] + shift}
    a = assign(routing(prompt_id, split), SOME_USERS)
    b = assign(routing(prompt_id, changed), SOME_USERS)
    for user in SOME_USERS:
        if a[user] != b[user]:
            expected = (lower, upper) if shift > 0 else (upper, lower)
            assert (a[user], b[user]) == expected


@settings(max_examples=10, deadline=None)
@given(prompt_id=st.uuids(), coverage=st.integers(10, 90), weight=st.integers(10, 90))
def test_coverage_draw_is_independent_of_the_version_draw(
    prompt_id: uuid.UUID, coverage: int, weight: int
) -> None:
    rules = [
        {
            "name": "sample",
            "coverage": coverage,
            "traffic": [
                {"version": "v1", "weight": 100 - weight},
                {"version": "v2", "weight": weight},
            ],
        }
    ]
    route = routing(prompt_id, {1: 100 - weight, 2: weight}, rules)
    cells = Counter(route.route(user, {}) for user in MANY_USERS)
    p_rule, p_new = coverage / 100, weight / 100
    expected = {
        (2, "sample"): p_rule * p_new,
        (1, "sample"): p_rule * (1 - p_new),
        (2, "d"): (1 - p_rule) * p_new,
        (1, "d"): (1 - p_rule) * (1 - p_new),
    }
    for cell, p in expected.items():
        assert within_5_sigma(cells[cell], len(MANY_USERS), p), (cell, cells)


@settings(max_examples=10, deadline=None)
@given(first=st.uuids(), second=st.uuids())
def test_prompts_are_not_correlated(first: uuid.UUID, second: uuid.UUID) -> None:
    a = assign(routing(first, {1: 50, 2: 50}), MANY_USERS)
    b = assign(routing(second, {1: 50, 2: 50}), MANY_USERS)
    if first == second:
        assert a == b
        return
    cells = Counter((a[user], b[user]) for user in MANY_USERS)
    for cell in ((1, 1), (1, 2), (2, 1), (2, 2)):
        assert within_5_sigma(cells[cell], len(MANY_USERS), 0.25), cells
