"""Rule model validation and condition semantics, including type mismatches."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from controlplane.catalog import VersionEntry
from controlplane.resolve.conditions import Op
from controlplane.resolve.errors import InvalidRule, UnknownVersion, WeightMismatch
from controlplane.resolve.hashing import coverage_salt
from controlplane.resolve.rules import (
    MAX_RULES,
    ConditionSpec,
    compile_condition,
    compile_rule,
    parse_rules,
)
from controlplane.resolve.traffic import VersionSet
from controlplane.versions import content_hash

VERSIONS = VersionSet(VersionEntry(uuid.uuid4(), n, content_hash(str(n))) for n in range(1, 6))
ALL_TO_V5 = [{"version": "v5", "weight": 100}]
ABSENT = object()


def holds(op: str, value: Any, attribute_value: Any, attribute: str = "attr") -> bool:
    spec = ConditionSpec.model_validate({"attribute": attribute, "op": op, "value": value})
    context = {} if attribute_value is ABSENT else {attribute: attribute_value}
    return compile_condition(spec).holds("user-1", context)


@pytest.mark.parametrize(
    ("op", "value", "attribute_value", "expected"),
    [
        # eq / neq: JSON types, numbers by value, no coercion
        ("eq", "de-DE", "de-DE", True),
        ("eq", "de-DE", "de-de", False),
        ("eq", 42, 42.0, True),
        ("eq", 42, "42", False),
        ("eq", 1, True, False),
        ("eq", True, True, True),
        ("eq", True, 1, False),
        ("eq", "x", ["x"], False),
        ("eq", "x", ABSENT, False),
        ("eq", "x", None, False),
        ("neq", "de-DE", "en-US", True),
        ("neq", "de-DE", "de-DE", False),
        ("neq", 42, "42", True),
        ("neq", "de-DE", ABSENT, False),
        # in / not_in, scalar and list attributes
        ("in", ["de-DE", "fr-FR"], "fr-FR", True),
        ("in", ["de-DE", "fr-FR"], "en-US", False),
        ("in", [1, 2], 2.0, True),
        ("in", [1, 2], True, False),
        ("in", [True], 1, False),
        ("in", ["1"], 1, False),
        ("in", ["beta", "staff"], ["staff", "x"], True),
        ("in", ["beta"], ["x"], False),
        ("in", ["a"], {"a": 1}, False),
        ("in", [], "a", False),
        ("in", ["a"], ABSENT, False),
        ("not_in", ["de-DE"], "en-US", True),
        ("not_in", ["de-DE"], "de-DE", False),
        ("not_in", ["beta"], ["x", "beta"], False),
        ("not_in", ["de-DE"], ABSENT, False),
        # ordering: numbers with numbers, strings with strings, anything else false
        ("lt", 50, 42.5, True),
        ("lt", 50, 50, False),
        ("lt", 50, "cheap", False),
        ("lt", 50, "10", False),
        ("lt", 50, True, False),
        ("lt", 50, None, False),
        ("lt", 50, ABSENT, False),
        ("lt", 50, [1], False),
        ("lte", 50, 50, True),
        ("lte", 50, 50.01, False),
        ("gt", 50, 50.5, True),
        ("gt", 50, 50, False),
        ("gt", 50, {"total": 99}, False),
        ("gte", 50, 50, True),
        ("gte", 50, 49, False),
        ("gte", "2025-01-01", "2025-05-08", True),
        ("lt", "2025-01-01", "2024-12-31", True),
        ("lt", "2025-01-01", 20240101, False),
        # contains: substrings of strings, elements of lists
        ("contains", "pro", "pro-annual", True),
        ("contains", "pro", "basic", False),
        ("contains", "beta", ["beta", "x"], True),
        ("contains", 1, [1.0, 2], True),
        ("contains", 1, [True], False),
        ("contains", 1, "1", False),
        ("contains", "a", 123, False),
        ("not_contains", "pro", "basic", True),
        ("not_contains", "pro", "pro", False),
        ("not_contains", "pro", ABSENT, False),
        # starts_with / ends_with
        ("starts_with", "de-", "de-AT", True),
        ("starts_with", "de-", "en-DE", False),
        ("starts_with", "1", 123, False),
        ("ends_with", "-DE", "de-DE", True),
        ("ends_with", "-DE", "de-AT", False),
        # presence: null counts as absent
        ("exists", None, "x", True),
        ("exists", None, 0, True),
        ("exists", None, False, True),
        ("exists", None, None, False),
        ("exists", None, ABSENT, False),
        ("not_exists", None, ABSENT, True),
        ("not_exists", None, None, True),
        ("not_exists", None, "", False),
    ],
)
def test_condition(op: str, value: Any, attribute_value: Any, expected: bool) -> None:
    assert holds(op, value, attribute_value) is expected


def test_every_operator_is_covered_above() -> None:
    assert {op.value for op in Op} == {
        "eq",
        "neq",
        "in",
        "not_in",
        "lt",
        "lte",
        "gt",
        "gte",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "exists",
        "not_exists",
    }


def test_dotted_attributes_read_nested_objects() -> None:
    condition = compile_condition(ConditionSpec(attribute="cart.total", op=Op.LT, value=50))
    assert condition.holds("u", {"cart": {"total": 42}})
    assert not condition.holds("u", {"cart": {"total": 60}})
    assert not condition.holds("u", {"cart": "full"})
    assert not condition.holds("u", {"cart": None})
    assert not condition.holds("u", {})
    assert condition.holds("u", {"cart.total": 10, "cart": {"total": 60}})


def test_user_id_is_the_requests_user_id() -> None:
    condition = compile_condition(
        ConditionSpec(attribute="user_id", op=Op.IN, value=["usr_1", "usr_2"])
    )
    assert condition.holds("usr_2", {})
    assert not condition.holds("usr_3", {"user_id": "usr_1"})


@pytest.mark.parametrize(
    ("alias", "op"),
    [
        ("==", "eq"),
        ("!=", "neq"),
        ("ne", "neq"),
        ("<", "lt"),
        ("below", "lt"),
        ("<=", "lte"),
        (">", "gt"),
        ("above", "gt"),
        (">=", "gte"),
    ],
)
def test_aliases_are_stored_canonically(alias: str, op: str) -> None:
    raw = [
        {"name": "r", "when": [{"attribute": "x", "op": alias, "value": 1}], "traffic": ALL_TO_V5}
    ]
    (rule,) = parse_rules(raw, VERSIONS)
    assert rule.to_json()["when"] == [{"attribute": "x", "op": op, "value": 1}]


def test_issue_example_round_trips() -> None:
    raw = [
        {
            "name": "eu-users",
            "when": [{"attribute": "locale", "op": "eq", "value": "de-DE"}],
            "traffic": [{"version": "v5", "weight": 100}],
        },
        {
            "name": "small-carts",
            "when": [
                {"attribute": "cart_value", "op": "below", "value": 50},
                {"attribute": "plan", "op": "exists"},
            ],
            "traffic": [{"version": "4", "weight": 50}, {"version": 5, "weight": 50}],
            "coverage": 25.5,
        },
    ]
    rules = parse_rules(raw, VERSIONS)
    assert [rule.name for rule in rules] == ["eu-users", "small-carts"]
    assert rules[0].to_json() == raw[0]
    assert rules[1].to_json() == {
        "name": "small-carts",
        "when": [
            {"attribute": "cart_value", "op": "lt", "value": 50},
            {"attribute": "plan", "op": "exists"},
        ],
        "traffic": [{"version": "v4", "weight": 50}, {"version": "v5", "weight": 50}],
        "coverage": 25.5,
    }
    assert parse_rules([r.to_json() for r in rules], VERSIONS) == rules


def test_no_rules() -> None:
    assert parse_rules(None, VERSIONS) == ()
    assert parse_rules([], VERSIONS) == ()


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"attribute": "x", "op": "eq"}, "'eq' takes a string, number or boolean"),
        ({"attribute": "x", "op": "eq", "value": ["a"]}, "'eq' takes a string"),
        ({"attribute": "x", "op": "in", "value": "a"}, "'in' takes a list"),
        ({"attribute": "x", "op": "in", "value": [["a"]]}, "value"),
        ({"attribute": "x", "op": "lt", "value": True}, "'lt' takes a number or a string"),
        ({"attribute": "x", "op": "starts_with", "value": 1}, "'starts_with' takes a string"),
        ({"attribute": "x", "op": "exists", "value": True}, "'exists' takes no value"),
        ({"attribute": "x", "op": "regex", "value": ".*"}, "op"),
        ({"attribute": "", "op": "exists"}, "attribute"),
        ({"attribute": "x", "op": "exists", "extra": 1}, "extra"),
        ({"attribute": "x", "op": "eq", "value": {"a": 1}}, "value"),
    ],
)
def test_malformed_conditions(condition: dict[str, Any], message: str) -> None:
    raw = [{"name": "r", "when": [condition], "traffic": ALL_TO_V5}]
    with pytest.raises(InvalidRule, match=message) as caught:
        parse_rules(raw, VERSIONS)
    assert caught.value.code == "invalid_request"
    assert caught.value.field is not None
    assert caught.value.field.startswith("rules[0].when[0]")


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"when": [], "traffic": ALL_TO_V5}, "rules[0].name"),
        ({"name": "r", "when": []}, "rules[0].traffic"),
        ({"name": "r", "traffic": ALL_TO_V5, "coverage": 101}, "rules[0].coverage"),
        ({"name": "r", "traffic": ALL_TO_V5, "coverage": -1}, "rules[0].coverage"),
        ({"name": "r", "traffic": ALL_TO_V5, "then": 1}, "rules[0].then"),
    ],
)
def test_malformed_rules(rule: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRule) as caught:
        parse_rules([rule], VERSIONS)
    assert caught.value.field == field


def test_rules_must_be_a_list() -> None:
    with pytest.raises(InvalidRule, match="rules: Input should be a valid list"):
        parse_rules({"name": "r"}, VERSIONS)


def test_rule_names_are_unique() -> None:
    rule = {"name": "eu", "traffic": ALL_TO_V5}
    with pytest.raises(InvalidRule, match="'eu' appears twice") as caught:
        parse_rules([rule, rule], VERSIONS)
    assert caught.value.field == "rules[1].name"


def test_too_many_rules() -> None:
    raw = [{"name": f"r{i}", "traffic": ALL_TO_V5} for i in range(MAX_RULES + 1)]
    with pytest.raises(InvalidRule, match="At most"):
        parse_rules(raw, VERSIONS)


def test_rule_traffic_errors_keep_their_kind_and_name_the_rule() -> None:
    bad_sum = [{"name": "eu", "traffic": [{"version": "v5", "weight": 95}]}]
    with pytest.raises(WeightMismatch) as caught:
        parse_rules(bad_sum, VERSIONS)
    assert str(caught.value) == "Rule 'eu': Traffic weights must sum to 100. Got 95."
    assert caught.value.field == "rules[0].traffic"
    unknown = [{"name": "eu", "traffic": [{"version": "v9", "weight": 100}]}]
    with pytest.raises(UnknownVersion, match="Rule 'eu': Version v9 does not exist") as missing:
        parse_rules(unknown, VERSIONS)
    assert missing.value.field == "rules[0].traffic[0].version"


def _compiled(raw: dict[str, Any]) -> Any:
    (rule,) = parse_rules([raw], VERSIONS)
    return compile_rule(rule, coverage_salt(uuid.uuid4(), rule.name))


def test_conditions_are_anded() -> None:
    rule = _compiled(
        {
            "name": "r",
            "traffic": ALL_TO_V5,
            "when": [
                {"attribute": "locale", "op": "eq", "value": "de-DE"},
                {"attribute": "cart_value", "op": "gte", "value": 50},
            ],
        }
    )
    assert rule.admits("u", {"locale": "de-DE", "cart_value": 60})
    assert not rule.admits("u", {"locale": "de-DE", "cart_value": 10})
    assert not rule.admits("u", {"locale": "en-US", "cart_value": 60})
    assert not rule.admits("u", {"locale": "de-DE", "cart_value": "60"})


def test_empty_when_matches_everyone() -> None:
    assert _compiled({"name": "all", "traffic": ALL_TO_V5}).admits("u", {})


def test_coverage_bounds() -> None:
    nobody = _compiled({"name": "none", "traffic": ALL_TO_V5, "coverage": 0})
    everybody = _compiled({"name": "all", "traffic": ALL_TO_V5, "coverage": 100})
    users = [f"user-{i}" for i in range(500)]
    assert not any(nobody.admits(user, {}) for user in users)
    assert all(everybody.admits(user, {}) for user in users)


def test_coverage_admits_a_stable_subset_that_grows_with_coverage() -> None:
    prompt = uuid.uuid4()
    users = [f"user-{i}" for i in range(2000)]
    admitted: list[set[str]] = []
    for coverage in (10, 30, 60):
        (rule,) = parse_rules([{"name": "r", "traffic": ALL_TO_V5, "coverage": coverage}], VERSIONS)
        compiled = compile_rule(rule, coverage_salt(prompt, "r"))
        admitted.append({user for user in users if compiled.admits(user, {})})
    assert admitted[0] <= admitted[1] <= admitted[2]
    assert 0 < len(admitted[0]) < len(admitted[1]) < len(admitted[2]) < len(users)
