"""Resolve: deterministic traffic splits, targeting rules and template interpolation.

The public API for routes. ``resolve`` answers ``POST /v1/resolve`` from a catalog
snapshot; ``parse_traffic`` and ``parse_rules`` validate what the deploy route stores.
Modules: hashing (buckets), traffic (refs, splits, layout; validation), buckets (a layout
and its draw), rules (validation), conditions (rules as resolve evaluates them),
interpolate, routing (the compiled per-prompt table), engine (resolve itself).
"""

from controlplane.resolve.conditions import Op
from controlplane.resolve.engine import Resolution, resolve
from controlplane.resolve.errors import (
    DeploymentSpecError,
    InvalidRule,
    InvalidTraffic,
    MissingVariablesError,
    UnknownVersion,
    WeightMismatch,
)
from controlplane.resolve.interpolate import compile_template
from controlplane.resolve.routing import UNDEPLOYED_RULE, ParsedDeployment, ServedVersion
from controlplane.resolve.rules import ConditionSpec, ParsedRule, RuleSpec, parse_rules
from controlplane.resolve.traffic import (
    TrafficEntrySpec,
    TrafficSplit,
    VersionSet,
    format_version,
    parse_traffic,
    parse_version_ref,
)

__all__ = [
    "UNDEPLOYED_RULE",
    "ConditionSpec",
    "DeploymentSpecError",
    "InvalidRule",
    "InvalidTraffic",
    "MissingVariablesError",
    "Op",
    "ParsedDeployment",
    "ParsedRule",
    "Resolution",
    "RuleSpec",
    "ServedVersion",
    "TrafficEntrySpec",
    "TrafficSplit",
    "UnknownVersion",
    "VersionSet",
    "WeightMismatch",
    "compile_template",
    "format_version",
    "parse_rules",
    "parse_traffic",
    "parse_version_ref",
    "resolve",
]
