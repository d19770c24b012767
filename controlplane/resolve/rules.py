"""Targeting rules: route a segment of users, picked by their context, to another split.

Stored in ``Deployment.rules`` and sent with a deploy, as JSON::

    {"name": "eu-users",
     "when": [{"attribute": "locale", "op": "eq", "value": "de-DE"}],
     "traffic": [{"version": "v5", "weight": 100}],
     "coverage": 100}

Rules are tried in order and the first that matches decides; all conditions of a rule
must hold (AND; an empty ``when`` matches everyone). ``coverage`` (percent, default 100)
admits only that share of the matching users, drawn with a salt of the rule's own, so
admission is independent of the version draw; users not admitted fall through to the
next rule. ``traffic_rule`` in the answer is the name of the rule that decided.

Operators (``value`` in brackets):

- ``eq``, ``neq`` [a string, number or boolean]
- ``in``, ``not_in`` [a list of those]; a list attribute matches if any element is in it
- ``lt``, ``lte``, ``gt``, ``gte`` [a number, or a string compared lexically]
- ``contains``, ``not_contains`` [a substring of a string attribute, or an element of a
  list attribute]
- ``starts_with``, ``ends_with`` [a string]
- ``exists``, ``not_exists`` [no value]

Aliases accepted on input and stored canonically: ``==``, ``!=``, ``ne``, ``<``,
``below``, ``<=``, ``>``, ``above``, ``>=``.

Semantics that never raise: types are JSON types and are not coerced, so ``"42"`` is not
``42``, and ``true`` is neither ``1`` nor a number. A condition whose attribute has the
wrong type is false (``cart_value lt 50`` is false for ``"cheap"``). An absent or null
attribute makes every condition false except ``not_exists``. The negative operators
(``neq``, ``not_in``, ``not_contains``) hold for a *present* attribute for which their
positive counterpart does not. The attribute ``user_id`` is always the request's user id.
Comparisons are case-sensitive. There is deliberately no regex operator: rules run on the
shared hot path and Python's ``re`` has no timeout, so one pathological pattern from one
tenant could stall every tenant's resolves.

This module validates rules (pydantic models); what resolve evaluates, conditions reduced
to lookups and closures, is built from them by :mod:`controlplane.resolve.conditions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from controlplane.resolve.conditions import (
    LIST_OPS,
    ORDER_OPS,
    PRESENCE_OPS,
    STRING_OPS,
    CompiledCondition,
    CompiledRule,
    Op,
    is_number,
)
from controlplane.resolve.conditions import compile_condition as condition_of
from controlplane.resolve.errors import DeploymentSpecError, InvalidRule
from controlplane.resolve.hashing import BUCKETS_PER_PERCENT
from controlplane.resolve.traffic import (
    TrafficEntrySpec,
    TrafficSplit,
    VersionSet,
    check_entries,
    first_error,
)

MAX_RULES = 50
MAX_CONDITIONS = 20
MAX_LIST_VALUES = 10_000


OP_ALIASES: dict[str, Op] = {
    "==": Op.EQ,
    "!=": Op.NEQ,
    "ne": Op.NEQ,
    "<": Op.LT,
    "below": Op.LT,
    "<=": Op.LTE,
    ">": Op.GT,
    "above": Op.GT,
    ">=": Op.GTE,
}

Scalar = StrictStr | StrictInt | StrictFloat | StrictBool


class ConditionSpec(BaseModel):
    """One condition: ``{"attribute": "cart_value", "op": "lt", "value": 50}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attribute: Annotated[str, Field(min_length=1, max_length=200)]
    op: Op
    value: Scalar | list[Scalar] | None = None

    @field_validator("op", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return OP_ALIASES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _value_fits_op(self) -> Self:
        value, op = self.value, self.op
        if op in PRESENCE_OPS:
            ok, want = value is None, "no value"
        elif op in LIST_OPS:
            ok, want = isinstance(value, list), "a list of strings, numbers or booleans"
            if ok and len(value) > MAX_LIST_VALUES:  # type: ignore[arg-type]
                raise ValueError(f"'{op}' takes at most {MAX_LIST_VALUES} values")
        elif op in ORDER_OPS:
            ok, want = is_number(value) or isinstance(value, str), "a number or a string"
        elif op in STRING_OPS:
            ok, want = isinstance(value, str), "a string"
        else:
            ok = value is not None and not isinstance(value, list)
            want = "a string, number or boolean"
        if not ok:
            raise ValueError(f"'{op}' takes {want}")
        return self

    def to_json(self) -> dict[str, Any]:
        """The canonical stored form; ``value`` is left out when there is none."""
        return self.model_dump(mode="json", exclude_none=True)


class RuleSpec(BaseModel):
    """One rule as sent and stored; see the module docstring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    when: Annotated[list[ConditionSpec], Field(max_length=MAX_CONDITIONS)] = []
    traffic: list[TrafficEntrySpec]
    coverage: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 100

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        """``null`` for ``when`` or ``coverage`` is the field left out, as on every route."""
        if not isinstance(data, dict):
            return data
        return {k: v for k, v in data.items() if v is not None or k not in ("when", "coverage")}


_RULES = TypeAdapter(list[RuleSpec])


@dataclass(frozen=True, slots=True)
class ParsedRule:
    """A validated rule, its traffic resolved to version numbers."""

    name: str
    when: tuple[ConditionSpec, ...]
    traffic: TrafficSplit
    coverage: float = 100

    def to_json(self) -> dict[str, Any]:
        """The canonical stored form (``coverage`` only when below 100)."""
        rule: dict[str, Any] = {
            "name": self.name,
            "when": [condition.to_json() for condition in self.when],
            "traffic": self.traffic.to_json(),
        }
        if self.coverage < 100:
            rule["coverage"] = self.coverage
        return rule


def parse_rules(raw: Any, versions: VersionSet, *, field: str = "rules") -> tuple[ParsedRule, ...]:
    """Validate a rule list as sent to the deploy route (or read back from storage).

    ``None`` means no rules. Raises :class:`InvalidRule` for a malformed rule or a repeated
    name, and the errors of :func:`~controlplane.resolve.traffic.parse_traffic` (with the
    rule named in the message) for a rule's traffic.
    """
    if raw is None:
        return ()
    try:
        specs = _RULES.validate_python(raw)
    except ValidationError as exc:
        message, path = first_error(exc, field)
        raise InvalidRule(message, field=path) from None
    if len(specs) > MAX_RULES:
        raise InvalidRule(f"At most {MAX_RULES} rules are allowed.", field=field)
    parsed: list[ParsedRule] = []
    names: set[str] = set()
    for index, spec in enumerate(specs):
        if spec.name in names:
            raise InvalidRule(
                f"Rule names must be unique; {spec.name!r} appears twice.",
                field=f"{field}[{index}].name",
            )
        names.add(spec.name)
        where = f"{field}[{index}].traffic"
        try:
            split = check_entries(spec.traffic, versions, field=where)
        except DeploymentSpecError as exc:
            # Same error class and code, the rule named so the user knows which split.
            raise type(exc)(f"Rule {spec.name!r}: {exc.message}", field=exc.field) from None
        parsed.append(ParsedRule(spec.name, tuple(spec.when), split, spec.coverage))
    return tuple(parsed)


def compile_rule(rule: ParsedRule, coverage_salt: str) -> CompiledRule:
    """Turn a parsed rule into closures and bucket ranges, once per catalog load."""
    return CompiledRule(
        name=rule.name,
        conditions=tuple(compile_condition(condition) for condition in rule.when),
        coverage_buckets=round(rule.coverage * BUCKETS_PER_PERCENT),
        coverage_salt=coverage_salt,
        ranges=rule.traffic.layout(),
    )


def compile_condition(spec: ConditionSpec) -> CompiledCondition:
    """The lookup and test of one validated condition."""
    return condition_of(spec.attribute, spec.op, spec.value)
