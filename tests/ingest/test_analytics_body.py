"""The hand-written analytics body check against the pydantic models, on valid and subtly
invalid bodies.

Whenever ``checked_analytics`` answers, the model must accept the body with the same
fields, value for value and type for type; whenever the model refuses, the check must not
answer (the model then gives the 400). And the usual body must take the hand-written path,
or the speed-up is lost without a test failing.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from ingest.analytics_body import AnalyticsBody, checked_analytics
from schemas.analytics import AnalyticsEventIn
from schemas.batch import AnalyticsBatchEventIn
from schemas.domains import COST_USD_MAX, LATENCY_MS_MAX, SCORE_MAX, SMALLEST_MAGNITUDE

HASH = "sha256:" + "ab" * 32


def edges(high: float) -> list[Any]:
    """Numbers on and just past each edge of a domain, either sign, and look-alikes."""
    values: list[Any] = [0.0, -0.0, SMALLEST_MAGNITUDE, high, 412.5, 0.002]
    values += [math.nextafter(SMALLEST_MAGNITUDE, 0), math.nextafter(high, math.inf), 1e308]
    values += [-value for value in values]
    return [*values, 0, 1, 412, True, False, "412.5", math.nan, math.inf, [], {}]


def strings(low: int, high: int) -> st.SearchStrategy[Any]:
    """Strings around the length bounds, odd characters, and things that are not strings."""
    sized = st.sampled_from([low, low + 1, high - 1, high, high + 1]).map(lambda n: "p" * n)
    return st.one_of(
        sized,
        st.text(max_size=8),
        st.sampled_from(["é", "a\n", "\x7f", "\x00", " ", "~", "k\t"]),
        st.integers(),
        st.none(),
        st.booleans(),
    )


def numbers(high: float) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(edges(high)), st.floats(-2 * high, 2 * high))


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "prompt_id": strings(1, 200),
    "version_hash": st.one_of(strings(1, 128), st.just(HASH)),
    "latency_ms": numbers(LATENCY_MS_MAX),
    "cost_usd": numbers(COST_USD_MAX),
    "score": numbers(SCORE_MAX),
    "idempotency_key": strings(1, 255),
    "type": st.sampled_from(["analytics", "signal", "Analytics", 1]),
    "extra": st.integers(),
}


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A body with any subset of the fields (and of the unknown ones), each any value."""
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True))
    return {name: draw(FIELDS[name]) for name in names}


def usual(**changes: Any) -> dict[str, Any]:
    body = {"prompt_id": "checkout", "version_hash": HASH, "latency_ms": 412.5, "cost_usd": 0.002}
    return {**body, **changes}


def _same(checked: AnalyticsBody, model: BaseModel) -> None:
    for name in AnalyticsBody._fields:
        mine, theirs = getattr(checked, name), getattr(model, name)
        assert type(mine) is type(theirs), name
        if isinstance(mine, float):
            assert math.copysign(1, mine) == math.copysign(1, theirs), name
        assert mine == theirs, name


def _agrees(body: dict[str, Any], in_batch: bool) -> None:
    model: type[BaseModel] = AnalyticsBatchEventIn if in_batch else AnalyticsEventIn
    checked = checked_analytics(body, in_batch)
    try:
        validated = model.model_validate(body)
    except ValidationError:
        assert checked is None, body
        return
    if checked is not None:
        _same(checked, validated)


@settings(max_examples=2_000, suppress_health_check=[HealthCheck.too_slow])
@given(bodies(), st.booleans())
def test_the_check_answers_only_as_the_model_does(body: dict[str, Any], in_batch: bool) -> None:
    _agrees(body, in_batch)


@settings(max_examples=500)
@given(
    st.fixed_dictionaries(
        {"prompt_id": strings(1, 200), "version_hash": st.just(HASH)},
        optional={name: FIELDS[name] for name in ("latency_ms", "cost_usd", "score")},
    ),
    st.booleans(),
)
def test_bodies_with_their_required_fields_agree_too(body: dict[str, Any], in_batch: bool) -> None:
    _agrees({**body, "type": "analytics"} if in_batch else body, in_batch)


@pytest.mark.parametrize(
    "body",
    [
        usual(),
        usual(score=-3.5, idempotency_key="order-1"),
        usual(latency_ms=None, cost_usd=None, unknown="ignored"),
        {"prompt_id": "prm_" + "0" * 32, "version_hash": HASH},
    ],
)
def test_the_usual_bodies_take_the_hand_written_path(body: dict[str, Any]) -> None:
    checked = checked_analytics(body)
    assert checked is not None
    _same(checked, AnalyticsEventIn.model_validate(body))


def test_a_batch_event_takes_it_too_but_not_with_an_unknown_field() -> None:
    assert checked_analytics(usual(type="analytics"), in_batch=True) is not None
    assert checked_analytics(usual(type="analytics", unknown=1), in_batch=True) is None
    assert checked_analytics(usual(), in_batch=True) is None  # no type: the model says why
