"""Resolve never fails on what a client can send: any JSON body, any context.

Every body either parses or is a 400; every parsed request resolves (or, strict, names
its missing variables) and encodes to the documented JSON. Run on both builds (``make
test-compiled``): compiled code checks the types at each function's boundary, so a value
of a type the annotations did not foresee would raise there, not only deep inside.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.api.resolve_io import Answers, parse_resolve
from controlplane.catalog import Catalog, DeploymentRecord, VersionRecord, build_prompt_entry
from controlplane.resolve import MissingVariablesError, resolve
from controlplane.resolve.conditions import Op
from promptline.http.errors import ApiError, ErrorKind

PROJECT = uuid.uuid4()
PROMPT = "fuzzed"
ATTRIBUTES = ["locale", "cart_value", "tags", "user.country", "user_id", "flag"]
VERSIONS = [
    VersionRecord(uuid.uuid4(), 1, "plain v1"),
    VersionRecord(uuid.uuid4(), 2, "v2 for {{locale}} at {{ user.country }}: {{cart_value}}"),
    VersionRecord(uuid.uuid4(), 3, "v3 {{tags}} {{flag}} {{absent}}"),
]

# Text as JSON can carry it: no lone surrogates (orjson refuses them in a body).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
CONTEXT_KEYS = st.sampled_from([*ATTRIBUTES, "user", "absent", "company"]) | TEXT
CONTEXTS = st.dictionaries(
    CONTEXT_KEYS,
    JSON | st.dictionaries(st.sampled_from(["country", "x"]) | TEXT, JSON, max_size=3),
    max_size=6,
)
BODY_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "prompt": st.just(PROMPT) | JSON,
        "user_id": TEXT | JSON,
        "context": CONTEXTS | JSON,
        "strict": st.booleans() | JSON,
        "extra": JSON,
    },
)


def _value_for(op: Op) -> Any:
    if op in (Op.EXISTS, Op.NOT_EXISTS):
        return None
    if op in (Op.IN, Op.NOT_IN):
        return ["de-DE", 3, True, "a"]
    if op in (Op.LT, Op.LTE, Op.GT, Op.GTE):
        return 50
    if op in (Op.STARTS_WITH, Op.ENDS_WITH):
        return "de"
    return "de-DE"


ATTRIBUTES_PER_OP = 3
"""14 operators x 3 attributes: 42 rules, under the 50 a deployment takes."""


def _rules() -> list[dict[str, Any]]:
    """Every operator, each on three of the attributes (each attribute gets seven)."""
    rules: list[dict[str, Any]] = []
    for index, op in enumerate(Op):
        for step in range(ATTRIBUTES_PER_OP):
            attribute = ATTRIBUTES[(index + step * 2) % len(ATTRIBUTES)]
            condition: dict[str, Any] = {"attribute": attribute, "op": op.value}
            if op not in (Op.EXISTS, Op.NOT_EXISTS):
                condition["value"] = _value_for(op)
            rules.append(
                {
                    "name": f"{op.value}-{attribute}",
                    "when": [condition],
                    "traffic": [{"version": "v3", "weight": 100}],
                    "coverage": 50 if len(rules) % 2 else 100,
                }
            )
    return rules


RULES = _rules()
RULE_NAMES = {rule["name"] for rule in RULES}


def _catalog() -> Catalog:
    """One prompt whose rules use every operator, some at partial coverage."""
    traffic = [{"version": "v1", "weight": 60}, {"version": "v2", "weight": 40}]
    deployed = DeploymentRecord(uuid.uuid4(), "fuzz", traffic, RULES, datetime.now(UTC))
    prompt_id = uuid.uuid4()
    entry = build_prompt_entry(prompt_id, PROJECT, PROMPT, VERSIONS, [deployed])
    assert entry.routing is not None and len(entry.routing.rules) == len(RULES)
    return Catalog(revision=1, principals={}, prompts={prompt_id: entry})


CATALOG = _catalog()
ANSWERS = Answers()


@settings(max_examples=400, deadline=None)
@given(body=JSON | BODY_FIELDS)
def test_any_json_body_parses_or_is_a_400(body: Any) -> None:
    kind: ErrorKind | None = None
    try:
        prompt, user_id, context, strict = parse_resolve(body)
    except ApiError as error:
        kind = error.kind
    if kind is not None:
        assert kind is ErrorKind.INVALID_REQUEST
        return
    assert type(prompt) is str and prompt
    assert type(user_id) is str and user_id
    assert type(context) is dict
    assert type(strict) is bool


@settings(max_examples=400, deadline=None)
@given(user_id=TEXT.filter(bool), context=CONTEXTS, strict=st.booleans())
def test_any_context_resolves_and_encodes_as_documented(
    user_id: str, context: dict[str, Any], strict: bool
) -> None:
    missing: tuple[str, ...] | None = None
    try:
        resolution = resolve(CATALOG, PROJECT, PROMPT, user_id, context, strict)
    except MissingVariablesError as error:
        missing = error.names
    if missing is not None:  # only strict requests raise, and only with names
        assert strict
        assert missing
        return
    assert resolution is not None
    answer = orjson.loads(ANSWERS.encode(resolution))
    assert answer["prompt"] == PROMPT
    assert answer["version"] in {"v1", "v2", "v3"}
    assert type(answer["content"]) is str
    if answer["traffic_rule"] == "fuzz":  # no rule admitted the user: the main split
        assert answer["version"] in {"v1", "v2"}
    else:
        assert answer["traffic_rule"] in RULE_NAMES
        assert answer["version"] == "v3"
    assert answer["missing_variables"] == list(resolution.missing_variables)
    # The same request gets the same answer (sticky), the time stamp aside.
    again = resolve(CATALOG, PROJECT, PROMPT, user_id, context, strict)
    assert again is not None
    assert (again.version_number, again.traffic_rule, again.content) == (
        resolution.version_number,
        resolution.traffic_rule,
        resolution.content,
    )


@pytest.mark.parametrize("value", [2**64, -(2**64), 1e308, -0.0, [[[]]], {"": {}}, "ü" * 50])
def test_unusual_json_values_are_rendered(value: Any) -> None:
    context = {"tags": value, "flag": value, "locale": value, "cart_value": value}
    resolution = resolve(CATALOG, PROJECT, PROMPT, "usr_1", context, False)
    assert resolution is not None
    answer = orjson.loads(ANSWERS.encode(resolution))
    assert type(answer["content"]) is str
