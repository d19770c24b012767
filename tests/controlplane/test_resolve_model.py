"""Resolve's documented body model and its hand-written parser agree on every body."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from controlplane.api.references import MAX_NAME_LENGTH
from controlplane.api.resolve_io import MAX_USER_ID_LENGTH, parse_resolve
from controlplane.api.resolve_model import ResolveIn
from promptline.http.errors import ApiError

BAD_VALUES: list[Any] = [12, 1.5, True, [], "x", {"a": 1}]


def texts(limit: int) -> st.SearchStrategy[str]:
    """Strings around both length limits, in any characters."""
    return st.one_of(
        st.text(max_size=3),
        st.integers(limit - 2, limit + 2).map(lambda size: "é" * size),
    )


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    texts(MAX_NAME_LENGTH),
    texts(MAX_USER_ID_LENGTH),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
)
bodies = st.dictionaries(st.sampled_from([*ResolveIn.model_fields, "unknown"]), values, max_size=5)


def model_reading(body: Any) -> tuple[str, str, dict[str, Any], bool] | None:
    try:
        parsed = ResolveIn.model_validate(body)
    except ValidationError:
        return None
    return parsed.prompt, parsed.user_id, parsed.context or {}, bool(parsed.strict)


def parser_reading(body: Any) -> tuple[str, str, dict[str, Any], bool] | None:
    try:
        return parse_resolve(body)
    except ApiError:
        return None


@given(bodies)
def test_the_model_and_the_parser_accept_the_same_bodies_alike(body: dict[str, Any]) -> None:
    assert model_reading(body) == parser_reading(body)


@given(
    st.builds(
        dict,
        prompt=texts(MAX_NAME_LENGTH).filter(lambda text: 0 < len(text) <= MAX_NAME_LENGTH),
        user_id=texts(MAX_USER_ID_LENGTH).filter(lambda t: 0 < len(t) <= MAX_USER_ID_LENGTH),
    )
)
def test_every_body_the_model_accepts_the_parser_accepts(body: dict[str, Any]) -> None:
    assert model_reading(body) is not None
    assert parser_reading(body) == model_reading(body)


@pytest.mark.parametrize("field", list(ResolveIn.model_fields))
def test_the_parser_checks_each_field_of_the_model(field: str) -> None:
    """A wrong type in any documented field is the parser's 400 naming that field."""
    valid = {"prompt": "support-bot", "user_id": "usr_1", "context": {}, "strict": False}
    assert set(valid) == set(ResolveIn.model_fields)
    wrong = next(
        value
        for value in BAD_VALUES
        if model_reading(valid | {field: value}) is None and value is not None
    )
    with pytest.raises(ApiError) as raised:
        parse_resolve(valid | {field: wrong})
    assert raised.value.field == field
