"""Targeting conditions and rules in the form resolve evaluates: lookups and closures.

Built from validated rules (:mod:`controlplane.resolve.rules`) once per catalog load; the
semantics are documented there. Kept apart from the validation models, which are pydantic
classes, so that this module has no import-time machinery and can be compiled (mypyc: see
ARCHITECTURE.md, "Resolve's hot path is compiled").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controlplane.resolve.attributes import MISSING, nested, split_path
from controlplane.resolve.buckets import BucketRanges
from controlplane.resolve.hashing import BUCKETS, bucket

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


LIST_OPS = frozenset({Op.IN, Op.NOT_IN})
ORDER_OPS = frozenset({Op.LT, Op.LTE, Op.GT, Op.GTE})
STRING_OPS = frozenset({Op.STARTS_WITH, Op.ENDS_WITH})
PRESENCE_OPS = frozenset({Op.EXISTS, Op.NOT_EXISTS})
NEGATIVE_OPS = frozenset({Op.NEQ, Op.NOT_IN, Op.NOT_CONTAINS})

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


def compile_condition(attribute: str, op: Op, value: Any) -> CompiledCondition:
    """The lookup and test of one validated condition."""
    when_missing = op is Op.NOT_EXISTS
    test: Test
    if op in PRESENCE_OPS:
        test = _always(op is Op.EXISTS)
    elif op is Op.EQ or op is Op.NEQ:
        test = _equals(value)
    elif op is Op.IN or op is Op.NOT_IN:
        test = _member_of(value if isinstance(value, list) else [])
    elif op in ORDER_OPS:
        test = _compare(op, value)
    elif op is Op.CONTAINS or op is Op.NOT_CONTAINS:
        test = _contains(value)
    elif op is Op.STARTS_WITH:
        prefix = str(value)
        test = lambda v: isinstance(v, str) and v.startswith(prefix)  # noqa: E731
    else:
        suffix = str(value)
        test = lambda v: isinstance(v, str) and v.endswith(suffix)  # noqa: E731
    if op in NEGATIVE_OPS:
        test = _negate(test)
    return CompiledCondition(attribute, split_path(attribute), test, when_missing)


def is_number(value: object) -> bool:
    """A JSON number: an int or float that is not a bool."""
    return type(value) is int or type(value) is float


def _same(left: object, right: object) -> bool:
    """JSON equality: numbers by value (1 == 1.0), otherwise same type and value."""
    if is_number(left):
        return is_number(right) and left == right
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
    numbers = frozenset(v for v in values if is_number(v))
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
    same_kind: Test = is_number if is_number(bound) else (lambda v: type(v) is str)
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
