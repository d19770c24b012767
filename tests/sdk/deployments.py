"""Random projects, deployments, users and contexts, for holding the SDK to the server.

``random_project(rng)`` draws prompts with versions and a deployment each (splits over 1 to
5 versions, 0 to 6 rules using every operator and attribute kind, partial coverage, labels
or none, sometimes never deployed); ``server_catalog`` builds the server's in-memory catalog
of it, and ``sdk_config`` the ``GET /v1/sdk/config`` body the server would send for it.
``random_context(rng)`` draws a context that rules and templates read (and sometimes
values of the wrong type, nulls, nesting). Everything is drawn from one ``random.Random``
so a seed reproduces a case; the HTTP property test can reuse it as it is.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from controlplane.catalog import (
    Catalog,
    DeploymentRecord,
    PromptEntry,
    VersionRecord,
    build_prompt_entry,
)
from controlplane.resolve.conditions import Op
from controlplane.sdk_config import build_config

ATTRIBUTES = ["locale", "cart_value", "tags", "user.country", "user_id", "plan", "beta", "a.b"]
STRINGS = ["de-DE", "en-US", "fr", "pro", "free", "de", "US", "", "x.y", "usr_1"]
NUMBERS: list[int | float] = [0, 1, 3, 42, 49.5, 50, 100, -1, 1e-5, 2.5e-7, 10**17]
TEMPLATES = [
    "plain text, no variables",
    "You are a support agent for {{company}}. Be brief.",
    "Hi {{ user.country }} user with {{cart_value}} in cart; tags {{tags}} {{beta}}",
    "{{absent}} then {{company}} and {{ absent }} again, {{a.b}}, {{plan}}",
    "Nested {{user}} and {{locale}}: {{ user.name }}.",
    "Unicode é 😀 {{locale}} {{{company}}} }}{{",
]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class PromptSpec:
    """One prompt: its versions' contents and its deployments (JSON as the route stores)."""

    id: uuid.UUID
    name: str
    contents: list[str]
    deployments: list[dict[str, Any]] = field(default_factory=list)


def _value(rng: random.Random, op: Op) -> Any:
    if op in (Op.EXISTS, Op.NOT_EXISTS):
        return None
    if op in (Op.IN, Op.NOT_IN):
        pool: list[Any] = [*STRINGS, *NUMBERS, True, False]
        return rng.sample(pool, rng.randint(1, 5))
    if op in (Op.LT, Op.LTE, Op.GT, Op.GTE):
        return rng.choice([*NUMBERS, *STRINGS])
    if op in (Op.STARTS_WITH, Op.ENDS_WITH):
        return rng.choice(STRINGS)
    if op in (Op.CONTAINS, Op.NOT_CONTAINS):
        return rng.choice([*STRINGS, *NUMBERS, True])
    return rng.choice([*STRINGS, *NUMBERS, True, False])


def _split(rng: random.Random, numbers: list[int]) -> list[dict[str, Any]]:
    chosen = rng.sample(numbers, rng.randint(1, min(len(numbers), 4)))
    cuts = sorted(rng.randint(0, 100) for _ in range(len(chosen) - 1))
    weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    entries = [
        {"version": f"v{number}", "weight": weight}
        for number, weight in zip(chosen, weights, strict=True)
    ]
    rng.shuffle(entries)
    return entries


def _rule(rng: random.Random, index: int, numbers: list[int]) -> dict[str, Any]:
    conditions = []
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        op = rng.choice(list(Op))
        condition: dict[str, Any] = {"attribute": rng.choice(ATTRIBUTES), "op": op.value}
        value = _value(rng, op)
        if value is not None:
            condition["value"] = value
        conditions.append(condition)
    rule: dict[str, Any] = {
        "name": rng.choice([f"rule-{index}", "canary", f"segment {index}"]) + f"-{index}",
        "when": conditions,
        "traffic": _split(rng, numbers),
    }
    coverage = rng.choice([None, 100, 50, 0, 33.335, 12.5, 99.99, 0.01])
    if coverage is not None:
        rule["coverage"] = coverage
    return rule


def random_project(rng: random.Random, prompts: int = 3) -> list[PromptSpec]:
    """Prompts with versions and (mostly) a deployment each."""
    specs = []
    for index in range(prompts):
        contents = [rng.choice(TEMPLATES) + f" #{n}" for n in range(1, rng.randint(1, 5) + 1)]
        spec = PromptSpec(uuid.UUID(int=rng.getrandbits(128)), f"prompt-{index}", contents)
        numbers = list(range(1, len(contents) + 1))
        if rng.random() < 0.85:
            spec.deployments.append(
                {
                    "label": rng.choice(["", "stable", "canary-10", "canary"]),
                    "traffic": _split(rng, numbers),
                    "rules": [_rule(rng, i, numbers) for i in range(rng.choice([0, 1, 2, 4, 6]))],
                }
            )
        specs.append(spec)
    return specs


def prompt_entry(project_id: uuid.UUID, spec: PromptSpec) -> PromptEntry:
    """The server's compiled entry for one prompt."""
    versions = [
        VersionRecord(uuid.UUID(int=spec.id.int ^ number), number, content)
        for number, content in enumerate(spec.contents, start=1)
    ]
    records = [
        DeploymentRecord(
            uuid.UUID(int=spec.id.int ^ (1000 + index)),
            deployment["label"],
            deployment["traffic"],
            deployment["rules"],
            T0 + timedelta(minutes=index),
        )
        for index, deployment in enumerate(spec.deployments)
    ]
    return build_prompt_entry(spec.id, project_id, spec.name, versions, records)


def server_catalog(project_id: uuid.UUID, specs: list[PromptSpec]) -> Catalog:
    """The server's in-memory catalog holding the project's prompts."""
    prompts = {spec.id: prompt_entry(project_id, spec) for spec in specs}
    return Catalog(revision=1, principals={}, prompts=prompts)


def sdk_config(catalog: Catalog, project_id: uuid.UUID) -> dict[str, Any]:
    """What ``GET /v1/sdk/config`` answers for the project, through JSON and back."""
    body = build_config(catalog, project_id).body("2026-01-01T00:00:00Z")
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(body))
    return loaded


def random_context(rng: random.Random) -> dict[str, Any]:
    """A context for rules and templates: right types, wrong types, nulls and nesting."""
    scalars: list[Any] = [*STRINGS, *NUMBERS, True, False, None, 2**70, -0.0, 1e16]
    context: dict[str, Any] = {}
    for name in ["locale", "cart_value", "tags", "plan", "beta", "company", "user_id", "a.b"]:
        if rng.random() < 0.6:
            context[name] = rng.choice(
                [*scalars, rng.sample(scalars[:12], 2), {"k": rng.choice(scalars)}]
            )
    if rng.random() < 0.6:
        context["user"] = rng.choice(
            [
                {"country": rng.choice(scalars), "name": rng.choice(STRINGS)},
                {"country": None},
                "not an object",
                None,
            ]
        )
    if rng.random() < 0.3:
        context["a"] = {"b": rng.choice(scalars)}
    return context


def random_user(rng: random.Random) -> str:
    """A user id: mostly plain, sometimes unicode or long."""
    return rng.choice(
        [
            f"usr_{rng.randrange(10**6)}",
            f"user-{rng.random()}",
            "é😀" * rng.randint(1, 3),
            "x" * rng.randint(1, 1000),
        ]
    )
