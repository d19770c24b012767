"""A prompt's compiled routing: the deployment in force, ready for resolve to read.

The catalog builds one :class:`Routing` per prompt when it loads, so resolve does no
parsing: it evaluates precompiled rules, hashes the user at most twice and bisects.

A prompt that was never deployed serves its latest version to everyone, with
``traffic_rule`` ``"latest"``: pushing a first version is enough to start resolving it,
and once any deployment exists only deployments decide (a new version is not served
until it is deployed, as seed 001 says).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.ids import IdShape, encode
from controlplane.resolve.buckets import BucketRanges
from controlplane.resolve.conditions import CompiledRule
from controlplane.resolve.hashing import coverage_salt, variant_salt
from controlplane.resolve.interpolate import Template, compile_template
from controlplane.resolve.rules import ParsedRule, compile_rule, parse_rules
from controlplane.resolve.traffic import (
    TrafficSplit,
    VersionSet,
    parse_traffic,
    single_version,
)

UNDEPLOYED_RULE = "latest"
"""``traffic_rule`` of a prompt that has versions but no deployment."""


@dataclass(frozen=True, slots=True)
class ServedVersion:
    """A version that resolve can answer with: its identity, content and template."""

    id: uuid.UUID
    number: int
    content_hash: str
    content: str
    variables: tuple[str, ...] = ()
    template: Template = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "template", compile_template(self.content))


@dataclass(frozen=True, slots=True)
class ParsedDeployment:
    """A deployment's traffic and rules, validated against the prompt's versions."""

    id: uuid.UUID | None
    label: str
    traffic: TrafficSplit
    rules: tuple[ParsedRule, ...] = ()

    @property
    def traffic_rule(self) -> str:
        """What answers name when no rule decided: the label, else the public id."""
        if self.label:
            return self.label
        return encode(IdShape.DEPLOYMENT, self.id) if self.id is not None else UNDEPLOYED_RULE

    @property
    def version_numbers(self) -> frozenset[int]:
        """Every version this deployment can serve: their content must be loaded."""
        numbers = set(self.traffic.numbers)
        for rule in self.rules:
            numbers |= rule.traffic.numbers
        return frozenset(numbers)


def parse_deployment(
    deployment_id: uuid.UUID, label: str, traffic: Any, rules: Any, versions: VersionSet
) -> ParsedDeployment:
    """Validate a stored deployment row; raises the errors of parse_traffic/parse_rules."""
    return ParsedDeployment(
        deployment_id, label, parse_traffic(traffic, versions), parse_rules(rules, versions)
    )


def undeployed(versions: VersionSet) -> ParsedDeployment | None:
    """The routing of a never-deployed prompt: its latest version; None without versions."""
    latest = versions.latest
    if latest is None:
        return None
    return ParsedDeployment(None, UNDEPLOYED_RULE, single_version(latest))


@dataclass(frozen=True, slots=True)
class Routing:
    """What resolve reads for one prompt."""

    deployment_id: uuid.UUID | None
    traffic_rule: str
    ranges: BucketRanges
    rules: tuple[CompiledRule, ...]
    versions: Mapping[int, ServedVersion]
    salt: str
    source: ParsedDeployment | None = field(default=None, repr=False, compare=False)
    """The deployment this was compiled from (traffic and rules as stored), for the SDK
    configuration (``controlplane.sdk_config``); resolve never reads it."""

    def route(self, user_id: str, context: Mapping[str, Any]) -> tuple[int, str]:
        """The version number for this user and the rule or label that decided it.

        When the split decided, the name is this routing's own ``traffic_rule`` object, so
        ``name is routing.traffic_rule`` tells the split from a rule of the same name.
        """
        for rule in self.rules:
            if rule.admits(user_id, context):
                return rule.ranges.draw(self.salt, user_id), rule.name
        return self.ranges.draw(self.salt, user_id), self.traffic_rule


def compile_routing(
    prompt_id: uuid.UUID, deployment: ParsedDeployment, served: Mapping[int, ServedVersion]
) -> Routing:
    """Lay out the buckets and compile the rules; ``served`` must hold every version used.

    Raises KeyError naming a version whose content is missing from ``served``.
    """
    needed = deployment.version_numbers
    for number in needed:
        if number not in served:
            raise KeyError(f"content of version {number} was not loaded")
    return Routing(
        deployment_id=deployment.id,
        traffic_rule=deployment.traffic_rule,
        ranges=deployment.traffic.layout(),
        rules=tuple(
            compile_rule(rule, coverage_salt(prompt_id, rule.name)) for rule in deployment.rules
        ),
        versions={number: served[number] for number in needed},
        salt=variant_salt(prompt_id),
        source=deployment,
    )
