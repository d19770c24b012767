"""The SDK's local resolve answers exactly what the server's resolve answers.

For generated projects (splits, rules with every operator and attribute kind, partial
coverage, never-deployed prompts), users and contexts, the SDK's ``resolve`` over the
server's own configuration body (``controlplane.sdk_config``, through JSON) equals the
server's answer (the route's checks, prompt lookup, engine and encoder, in process):
the same version, content, rule, ids, missing variables and ``split``; the same errors
(code, message, field) for bad input, unknown prompts and strict misses. ``resolved_at``
is left out.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.api.resolve_io import Answers, parse_resolve, prompt_name
from controlplane.catalog import Catalog
from controlplane.resolve import MissingVariablesError, resolve
from promptline.http.errors import ApiError
from promptline_sdk.resolve import CompiledConfig, ResolveError, compile_config
from tests.controlplane.test_resolve_fuzz import JSON, TEXT
from tests.sdk.deployments import (
    random_context,
    random_project,
    random_user,
    sdk_config,
    server_catalog,
)

ANSWERS = Answers()
PROJECT = uuid.UUID("0193b2c4-d5e6-7f0a-8b9c-0d1e2f3a4b5c")

Outcome = tuple[Any, ...]


def server_answer(
    catalog: Catalog, prompt: Any, user_id: Any, context: Any, strict: Any
) -> Outcome:
    """What ``POST /v1/resolve`` answers for this body (error: code, message, field).

    The body goes through JSON as a client sends it and the route reads it (Python's
    encoder, orjson's parser: an integer past 64 bits arrives as a double).
    """
    sent = {"prompt": prompt, "user_id": user_id, "context": context, "strict": strict}
    body = orjson.loads(json.dumps(sent))
    try:
        ref, user, ctx, is_strict = parse_resolve(body)
        name = prompt_name(catalog, PROJECT, ref)
        resolution = resolve(catalog, PROJECT, name, user, ctx, is_strict)
    except ApiError as error:
        return ("error", error.kind.value, error.message, error.field)
    except MissingVariablesError as error:
        return ("error", "invalid_request", str(error), "context")
    if resolution is None:
        message = f"Prompt '{prompt}' not found, or it has no version to serve yet."
        return ("error", "not_found", message, "prompt")
    answer = orjson.loads(ANSWERS.encode(resolution))
    del answer["resolved_at"]
    return ("ok", answer, resolution.by_split)


def sdk_answer(
    config: CompiledConfig, prompt: Any, user_id: Any, context: Any, strict: Any
) -> Outcome:
    """The same question asked of the SDK."""
    try:
        decision = config.decide(prompt, user_id, context, strict)
    except ResolveError as error:
        return ("error", error.code, error.message, error.field)
    from promptline_sdk.resolve import answer

    body = answer(decision, "")
    del body["resolved_at"]
    return ("ok", body, decision.by_split)


def refs(rng: random.Random, config: dict[str, Any]) -> list[str]:
    """Ways to name the project's prompts (every id shape, names) and names of none."""
    names = ["missing", "prm_" + "0" * 32, str(uuid.uuid4())]
    for prompt in config["prompts"]:
        hex_id = uuid.UUID(prompt["prompt_uuid"]).hex
        names += [
            prompt["name"],
            prompt["prompt_id"],
            "pmt_" + hex_id,
            "tmpl-" + prompt["prompt_uuid"],
            prompt["prompt_uuid"],
            hex_id.upper(),
            "{" + prompt["prompt_uuid"] + "}",
        ]
    return names


def check_project(seed: int, cases: int) -> int:
    """Compare the two over one random project; the number of answers compared."""
    rng = random.Random(seed)
    specs = random_project(rng, prompts=rng.randint(1, 4))
    catalog = server_catalog(PROJECT, specs)
    raw = sdk_config(catalog, PROJECT)
    config = compile_config(raw)
    names = refs(rng, raw) + [spec.name for spec in specs]
    for _ in range(cases):
        prompt = rng.choice(names)
        user = random_user(rng)
        context = random_context(rng)
        strict = rng.random() < 0.3
        expected = server_answer(catalog, prompt, user, context, strict)
        got = sdk_answer(config, prompt, user, context, strict)
        assert got == expected, (seed, prompt, user, context, strict)
    return cases


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_sdk_resolves_as_the_server_does(seed: int) -> None:
    assert check_project(seed, cases=60) == 60


KEYS = st.sampled_from(["locale", "cart_value", "tags", "user", "company", "plan", "beta", "a"])


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    user=TEXT | JSON,
    context=st.dictionaries(KEYS | TEXT, JSON, max_size=6) | JSON,
    strict=st.booleans() | JSON,
)
def test_any_input_answers_as_the_server_does(
    seed: int, user: Any, context: Any, strict: Any
) -> None:
    """Any JSON the caller could send: the same answer, or the same error."""
    rng = random.Random(seed)
    specs = random_project(rng, prompts=2)
    catalog = server_catalog(PROJECT, specs)
    config = compile_config(sdk_config(catalog, PROJECT))
    for prompt in ("prompt-0", "prompt-1"):
        expected = server_answer(catalog, prompt, user, context, strict)
        assert sdk_answer(config, prompt, user, context, strict) == expected


def test_a_deployment_with_every_operator() -> None:
    """The server's own fuzzed deployment (every operator, three attributes each)."""
    from tests.controlplane.test_resolve_fuzz import CATALOG
    from tests.controlplane.test_resolve_fuzz import PROJECT as FUZZ_PROJECT

    raw = orjson.loads(orjson.dumps(build_body(CATALOG, FUZZ_PROJECT)))
    config = compile_config(raw)
    rng = random.Random(7)
    for _ in range(2_000):
        user = random_user(rng)
        context = random_context(rng)
        expected = server_answer_in(CATALOG, FUZZ_PROJECT, "fuzzed", user, context)
        got = sdk_answer(config, "fuzzed", user, context, False)
        assert got == expected


def build_body(catalog: Catalog, project_id: uuid.UUID) -> dict[str, Any]:
    from controlplane.sdk_config import build_config

    return build_config(catalog, project_id).body("2026-01-01T00:00:00Z")


def server_answer_in(
    catalog: Catalog, project_id: uuid.UUID, prompt: str, user: str, context: dict[str, Any]
) -> Outcome:
    received = orjson.loads(json.dumps(context))  # as the route reads it (server_answer)
    resolution = resolve(catalog, project_id, prompt, user, received, False)
    assert resolution is not None
    answer = orjson.loads(ANSWERS.encode(resolution))
    del answer["resolved_at"]
    return ("ok", answer, resolution.by_split)
