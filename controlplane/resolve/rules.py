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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
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

from controlplane.resolve.attributes import MISSING, nested, split_path
from controlplane.resolve.errors import DeploymentSpecError, InvalidRule
from controlplane.resolve.hashing import BUCKETS, BUCKETS_PER_PERCENT, bucket
from controlplane.resolve.traffic import (
    BucketRanges,
    TrafficEntrySpec,
    TrafficSplit,
    VersionSet,
    check_entries,
    first_error,
)

MAX_RULES = 50
MAX_CONDITIONS = 20
MAX_LIST_VALUES = 10_000
USER_ID = "user_id"


class Op(StrEnum):
    """Condition operators."""

    EQ = "eq"
    NEQ = "neq"
    IN = "in"
    NOT_IN = "not_in"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"


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
_SCALAR_OPS = {Op.EQ, Op.NEQ, Op.CONTAINS, Op.NOT_CONTAINS}
_LIST_OPS = {Op.IN, Op.NOT_IN}
_ORDER_OPS = {Op.LT, Op.LTE, Op.GT, Op.GTE}
_STRING_OPS = {Op.STARTS_WITH, Op.ENDS_WITH}
_PRESENCE_OPS = {Op.EXISTS, Op.NOT_EXISTS}


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
        if op in _PRESENCE_OPS:
            ok, want = value is None, "no value"
        elif op in _LIST_OPS:
            ok, want = isinstance(value, list), "a list of strings, numbers or booleans"
            if ok and len(value) > MAX_LIST_VALUES:  # type: ignore[arg-type]
                raise ValueError(f"'{op}' takes at most {MAX_LIST_VALUES} values")
        elif op in _ORDER_OPS:
            ok, want = _is_number(value) or isinstance(value, str), "a number or a string"
        elif op in _STRING_OPS:
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


# --- compiled form: what resolve evaluates -------------------------------------------------

Test = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """A condition reduced to a lookup and a test of the value found."""

    attribute: str
    path: tuple[str, ...]
    test: Test
    when_missing: bool

    def holds(self, user_id: str, context: Mapping[str, Any]) -> bool:
        """Whether the condition is true for this request; never raises."""
        if self.attribute == USER_ID:
            value: Any = user_id
        else:
            value = context.get(self.attribute)  # the whole name as a key: the usual case
            if value is None:
                value = nested(context, self.path) if len(self.path) > 1 else MISSING
                if value is MISSING:
                    return self.when_missing
        return self.test(value)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to evaluate: its conditions, coverage and bucket layout."""

    name: str
    conditions: tuple[CompiledCondition, ...]
    coverage_buckets: int
    coverage_salt: str
    ranges: BucketRanges

    def admits(self, user_id: str, context: Mapping[str, Any]) -> bool:
        """All conditions hold and the user is inside the rule's coverage."""
        for condition in self.conditions:
            if not condition.holds(user_id, context):
                return False
        if self.coverage_buckets >= BUCKETS:
            return True
        return bucket(self.coverage_salt, user_id) < self.coverage_buckets


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
    """The lookup and test of one condition."""
    op, value = spec.op, spec.value
    when_missing = op is Op.NOT_EXISTS
    test: Test
    if op in _PRESENCE_OPS:
        test = _always(op is Op.EXISTS)
    elif op is Op.EQ or op is Op.NEQ:
        test = _equals(value)
    elif op is Op.IN or op is Op.NOT_IN:
        test = _member_of(value if isinstance(value, list) else [])
    elif op in _ORDER_OPS:
        test = _compare(op, value)
    elif op is Op.CONTAINS or op is Op.NOT_CONTAINS:
        test = _contains(value)
    elif op is Op.STARTS_WITH:
        prefix = str(value)
        test = lambda v: isinstance(v, str) and v.startswith(prefix)  # noqa: E731
    else:
        suffix = str(value)
        test = lambda v: isinstance(v, str) and v.endswith(suffix)  # noqa: E731
    if op in (Op.NEQ, Op.NOT_IN, Op.NOT_CONTAINS):
        test = _negate(test)
    return CompiledCondition(spec.attribute, split_path(spec.attribute), test, when_missing)


def _is_number(value: object) -> bool:
    """A JSON number: an int or float that is not a bool."""
    return type(value) is int or type(value) is float


def _same(left: object, right: object) -> bool:
    """JSON equality: numbers by value (1 == 1.0), otherwise same type and value."""
    if _is_number(left):
        return _is_number(right) and left == right
    return type(left) is type(right) and left == right


def _always(result: bool) -> Test:
    return lambda _value: result


def _negate(test: Test) -> Test:
    return lambda value: not test(value)


def _equals(expected: object) -> Test:
    if isinstance(expected, str):
        return lambda value: type(value) is str and value == expected
    return lambda value: _same(value, expected)


def _member_of(values: list[Any]) -> Test:
    """Membership in sets split by JSON type, so ``true`` never matches ``1``."""
    strings = frozenset(v for v in values if isinstance(v, str))
    numbers = frozenset(v for v in values if _is_number(v))
    booleans = frozenset(v for v in values if isinstance(v, bool))

    def scalar_in(value: Any) -> bool:
        kind = type(value)
        if kind is str:
            return value in strings
        if kind is int or kind is float:
            return value in numbers
        if kind is bool:
            return value in booleans
        return False

    def test(value: Any) -> bool:
        if type(value) is str:  # the usual case, without a second call
            return value in strings
        if type(value) is list:
            return any(scalar_in(element) for element in value)
        return scalar_in(value)

    return test


def _compare(op: Op, bound: Any) -> Test:
    """Ordering against a number (numbers only) or a string (strings only)."""
    same_kind: Test = _is_number if _is_number(bound) else (lambda v: type(v) is str)
    if op is Op.LT:
        return lambda v: same_kind(v) and v < bound
    if op is Op.LTE:
        return lambda v: same_kind(v) and v <= bound
    if op is Op.GT:
        return lambda v: same_kind(v) and v > bound
    return lambda v: same_kind(v) and v >= bound


def _contains(needle: Any) -> Test:
    def test(value: Any) -> bool:
        if type(value) is str:
            return isinstance(needle, str) and needle in value
        if type(value) is list:
            return any(_same(element, needle) for element in value)
        return False

    return test
