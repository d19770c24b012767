"""Local resolve on its own (no server package): shapes, lookups, rules, text, errors.

The equivalence with the server's engine is tested in the repository's ``tests/sdk``;
these pin what the SDK must do on machines where only the SDK is installed.
"""

from __future__ import annotations

import copy
from typing import Any

import mmh3
import pytest
from fake_server import PROMPT_HEX, PROMPT_UUID, make_config

from promptline_sdk.resolve import ConfigError, ResolveError, compile_config, resolve, to_text


def config_with(**prompt: Any) -> dict[str, Any]:
    raw = make_config()
    raw["prompts"][0].update(prompt)
    return raw


def bucket(salt: str, user: str) -> int:
    return mmh3.hash(f"{salt}:{user}", 0, False) % 10_000


def test_every_id_shape_and_the_name_find_the_prompt() -> None:
    config = compile_config(make_config())
    for ref in (
        "support-bot",
        "prm_" + PROMPT_HEX,
        "pmt_" + PROMPT_HEX,
        "tmpl-" + PROMPT_UUID,
        PROMPT_UUID,
        PROMPT_HEX.upper(),
        "{" + PROMPT_UUID + "}",
    ):
        answer = resolve(config, ref, "u", {"company": "A"})
        assert answer["prompt"] == "support-bot" and answer["content"] == "v1 for A."
    with pytest.raises(ResolveError) as error:
        resolve(config, "prm_" + "0" * 32, "u")
    assert (error.value.code, error.value.status, error.value.field) == ("not_found", 404, "prompt")


def test_a_split_follows_the_bucket_layout_in_version_order() -> None:
    traffic = [{"version": "v2", "weight": 30}, {"version": "v1", "weight": 70}]
    config = compile_config(config_with(traffic=traffic))
    for user in (f"user-{i}" for i in range(300)):
        expected = "v1" if bucket(PROMPT_HEX, user) < 7000 else "v2"
        decision = config.decide("support-bot", user, {})
        assert decision.version.version == expected and decision.by_split


def test_rules_coverage_and_the_rule_that_decided() -> None:
    rules = [
        {
            "name": "eu",
            "when": [{"attribute": "locale", "op": "starts_with", "value": "de"}],
            "traffic": [{"version": "v2", "weight": 100}],
            "coverage": 50,
        },
        {
            "name": "vip",
            "when": [{"attribute": "user.tier", "op": "in", "value": ["gold", 3]}],
            "traffic": [{"version": "v2", "weight": 100}],
        },
    ]
    config = compile_config(config_with(rules=rules))
    for user in (f"user-{i}" for i in range(200)):
        covered = bucket(f"{PROMPT_HEX}:coverage:eu", user) < 5000
        decision = config.decide("support-bot", user, {"locale": "de-DE"})
        assert decision.traffic_rule == ("eu" if covered else "stable")
        assert decision.by_split is not covered
    assert config.decide("support-bot", "u", {"user": {"tier": 3}}).traffic_rule == "vip"
    assert config.decide("support-bot", "u", {"user": {"tier": True}}).traffic_rule == "stable"
    assert config.decide("support-bot", "u", {"user": {"tier": "3"}}).traffic_rule == "stable"


def test_a_never_deployed_prompt_serves_its_latest_version_not_by_split() -> None:
    config = compile_config(
        config_with(
            deployment_id=None, traffic_rule="latest", traffic=[{"version": "v2", "weight": 100}]
        )
    )
    decision = config.decide("support-bot", "u", {})
    assert (decision.traffic_rule, decision.by_split, decision.version.number) == (
        "latest",
        False,
        2,
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (None, "null"),
        (42, "42"),
        (42.5, "42.5"),
        (1e16, "1e+16"),
        (1e-5, "0.00001"),
        (1.234e-5, "0.00001234"),
        (1e-6, "1e-6"),
        (2.5e-7, "2.5e-7"),
        (float("nan"), "null"),
        (["a", 1, {"b": None}], '["a",1,{"b":null}]'),
        ({"é": "😀\n"}, '{"é":"😀\\n"}'),
        # Past 64 bits the server's parser (orjson) reads a JSON integer as a double.
        (2**64, "1.8446744073709552e+19"),
        ([2**64], "[1.8446744073709552e+19]"),
        (-(2**63) - 1, "-9.223372036854776e+18"),
        ({1: 2}, "{1: 2}"),
        ("\ud800", "\ud800"),
        (["\ud800"], "['\\ud800']"),
    ],
)
def test_values_are_written_as_the_servers_orjson_writes_them(value: Any, text: str) -> None:
    assert to_text(value) == text


def test_missing_variables_are_left_as_written_and_strict_refuses_them() -> None:
    content = "Hi {{ name }} from {{company}}, {{name}} again; {{user.country}}."
    raw = config_with(versions=[dict(make_config()["prompts"][0]["versions"][0], content=content)])
    config = compile_config(raw)
    answer = resolve(config, "support-bot", "u", {"company": "{{name}}", "user": {"country": None}})
    assert answer["content"] == "Hi {{ name }} from {{name}}, {{name}} again; {{user.country}}."
    assert answer["missing_variables"] == ["name", "user.country"]
    with pytest.raises(ResolveError) as error:
        resolve(config, "support-bot", "u", {}, True)
    assert error.value.message == "Missing template variables: name, company, user.country."
    assert (error.value.code, error.value.field) == ("invalid_request", "context")


@pytest.mark.parametrize(
    ("prompt", "user", "context", "message"),
    [
        ("", "u", None, "prompt: String should have at least 1 character"),
        ("p" * 201, "u", None, "prompt: String should have at most 200 characters"),
        ("support-bot", 5, None, "user_id: Input should be a valid string"),
        ("support-bot", "u" * 1001, None, "user_id: String should have at most 1000 characters"),
        ("support-bot", "u", [1], "context: Input should be a valid dictionary"),
    ],
)
def test_bad_input_is_the_routes_400(prompt: Any, user: Any, context: Any, message: str) -> None:
    with pytest.raises(ResolveError) as error:
        compile_config(make_config()).decide(prompt, user, context)
    assert (error.value.code, error.value.status, error.value.message) == (
        "invalid_request",
        400,
        message,
    )


def test_an_unusable_configuration_is_refused_and_a_broken_prompt_is_not_served() -> None:
    with pytest.raises(ConfigError):
        compile_config({**make_config(), "hashing": {"algorithm": "sha1"}})
    with pytest.raises(ConfigError):
        compile_config({"prompts": "no"})
    raw = copy.deepcopy(make_config())
    raw["prompts"][0]["traffic"] = [{"version": "v1", "weight": 90}]
    config = compile_config(raw)
    with pytest.raises(ResolveError) as error:
        config.decide("support-bot", "u")
    assert error.value.code == "not_found"
