"""Throughput and latency of the pure resolve engine over a 1,000-prompt catalog.

Run: ``.venv/bin/python -m bench.resolve_engine [--prompts N] [--calls N]``. No database,
no HTTP: this is the ceiling the resolve route can approach on one core. The catalog mixes
what production holds: full deployments (no hash needed), canaries, and rule-targeted
splits with variables to fill.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.figures import add_json_option, figure, write_json
from controlplane.catalog import Catalog, DeploymentRecord, VersionRecord, build_prompt_entry
from controlplane.resolve import resolve

NOW = datetime(2025, 5, 8, tzinfo=UTC)
ROUNDS = 3
CONTENT = (
    "You are a helpful checkout assistant for {{store}}. The user {{user.name}} has "
    "{{cart_value}} in their cart. Answer in {{locale}}. " + "Be concise and friendly. " * 20
)
RULES: list[dict[str, Any]] = [
    {
        "name": "eu-users",
        "when": [{"attribute": "locale", "op": "in", "value": ["de-DE", "fr-FR", "es-ES"]}],
        "traffic": [{"version": "v3", "weight": 100}],
    },
    {
        "name": "small-carts",
        "when": [
            {"attribute": "cart_value", "op": "lt", "value": 50},
            {"attribute": "plan", "op": "eq", "value": "pro"},
        ],
        "traffic": [{"version": "v2", "weight": 50}, {"version": "v3", "weight": 50}],
        "coverage": 50,
    },
]


def build(prompts: int, rng: random.Random) -> tuple[Catalog, uuid.UUID, list[str]]:
    """A catalog of ``prompts`` prompts in one project, a third of each deployment kind."""
    project = uuid.uuid4()
    entries = {}
    names = []
    for index in range(prompts):
        prompt_id, name = uuid.uuid4(), f"prompt-{index}"
        versions = [VersionRecord(uuid.uuid4(), n, f"v{n} {index} " + CONTENT) for n in range(1, 4)]
        kind = index % 3
        rules: list[dict[str, Any]]
        if kind == 0:
            traffic, rules = [{"version": "v3", "weight": 100}], []
        elif kind == 1:
            traffic, rules = [{"version": "v2", "weight": 90}, {"version": "v3", "weight": 10}], []
        else:
            traffic, rules = (
                [{"version": "v1", "weight": 80}, {"version": "v2", "weight": 20}],
                RULES,
            )
        record = DeploymentRecord(uuid.uuid4(), "canary", traffic, rules, NOW)
        entries[prompt_id] = build_prompt_entry(prompt_id, project, name, versions, [record])
        names.append(name)
    rng.shuffle(names)
    return Catalog(revision=1, principals={}, prompts=entries), project, names


def requests(names: list[str], count: int, rng: random.Random) -> list[tuple[str, str, Any]]:
    """Request tuples built up front, so only resolve is timed."""
    locales = ["en-US", "de-DE", "fr-FR", "ja-JP"]
    return [
        (
            rng.choice(names),
            f"usr_{rng.randrange(1_000_000)}",
            {
                "store": "Acme",
                "user": {"name": "Ada"},
                "cart_value": round(rng.uniform(0, 200), 2),
                "locale": rng.choice(locales),
                "plan": rng.choice(["free", "pro"]),
            },
        )
        for _ in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1_000)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    add_json_option(parser)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    started = time.perf_counter()
    catalog, project, names = build(args.prompts, rng)
    compile_ms = (time.perf_counter() - started) * 1000
    work = requests(names, args.calls, rng)
    for name, user, context in work[:10_000]:  # warm up
        resolve(catalog, project, name, user, context)

    rates = []
    for _ in range(ROUNDS):
        gc.collect()
        started = time.perf_counter()
        for name, user, context in work:
            resolve(catalog, project, name, user, context)
        rates.append(args.calls / (time.perf_counter() - started))

    clock = time.perf_counter_ns
    samples = []
    for name, user, context in work:
        before = clock()
        resolve(catalog, project, name, user, context)
        samples.append(clock() - before)
    cuts = statistics.quantiles(samples, n=1000)
    print(f"catalog: {args.prompts} prompts compiled in {compile_ms:.0f} ms")
    print(
        f"resolves/second: {statistics.median(rates):,.0f} median of {ROUNDS} rounds "
        f"(best {max(rates):,.0f}; one core, {args.calls:,} calls each)"
    )
    print(
        f"latency: p50 {cuts[499] / 1000:.2f} us, p99 {cuts[989] / 1000:.2f} us, "
        f"p99.9 {cuts[998] / 1000:.2f} us"
    )
    write_json(
        args.json,
        "resolve_engine",
        [
            figure("resolves/s, one core", statistics.median(rates), "/s"),
            figure("resolve p50", cuts[499] / 1000, "us"),
            figure("resolve p99", cuts[989] / 1000, "us"),
        ],
    )


if __name__ == "__main__":
    main()
