"""Local resolve: the server's ``POST /v1/resolve``, answered from a project's configuration.

Pure and without I/O. :func:`compile_config` turns the JSON of ``GET /v1/sdk/config`` into a
:class:`CompiledConfig` once (bucket ranges laid out, rules reduced to closures, templates
split at their placeholders), so each resolve is a dict lookup, the rules' checks, at most
two MurmurHash3 draws, a bisect and a join.

It is a port of the server's algorithm (``controlplane/resolve/``: hashing, buckets,
traffic layout, rules, conditions, attributes, interpolate, routing, engine, and the
route's checks and prompt lookup in ``controlplane/api/resolve_io.py``), not a copy of its
code: the SDK does not depend on the server. ``tests/sdk/`` in the repository holds the
two together (the same answer for generated deployments, users and contexts).

- A user's bucket is ``mmh3_32(f"{salt}:{user_id}", seed=0) % 10000``; the version draw
  is salted with the prompt's UUID hex, a rule's coverage draw with
  ``"{prompt uuid hex}:coverage:{rule name}"``.
- A split is laid over the buckets in ascending version number order, ``weight * 100``
  buckets each.
- Rules are tried in order; all conditions must hold; coverage admits a share of the
  matching users; the first rule that admits the user decides.
- ``{{name}}`` placeholders are filled from the context: strings as they are, anything
  else as compact JSON written as the server's ``orjson`` writes it; a missing (or null)
  variable is left as written and named in ``missing_variables``.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, cast

import mmh3

__all__ = [
    "CompiledConfig",
    "CompiledPrompt",
    "CompiledVersion",
    "ConfigError",
    "Decision",
    "ResolveError",
    "compile_config",
    "resolve",
    "to_text",
]

BUCKETS: Final = 10_000
MAX_NAME_LENGTH: Final = 200
MAX_USER_ID_LENGTH: Final = 1_000
SHORTEST_ID: Final = 32
"""No prompt id spelling (UUID, ``prm_``, ``pmt_``, ``tmpl-``) is shorter than 32 hex digits."""
USER_ID: Final = "user_id"
UNDEPLOYED_RULE: Final = "latest"
HASH_ALGORITHM: Final = "murmur3_x86_32"
HASH_INPUT: Final = "{salt}:{user_id}"
PROMPT_ID_PREFIXES: Final = ("prm_", "pmt_", "tmpl-")
VARIABLE_PATTERN: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
"""The server's ``controlplane.versions.VARIABLE_PATTERN``."""


class ConfigError(ValueError):
    """A configuration this SDK cannot use (a shape or hashing scheme it does not know)."""


class ResolveError(Exception):
    """Why a resolve has no answer, as the server's route would have said it.

    ``code`` and ``status`` are the server's (``invalid_request`` 400, ``not_found`` 404),
    ``field`` the request field at fault. The SDK adds ``unavailable`` (no configuration
    yet, status None): the server would have answered, the SDK could not ask it.
    """

    def __init__(
        self, code: str, message: str, *, field: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status

    def __repr__(self) -> str:
        return f"ResolveError({self.code!r}, {self.message!r}, field={self.field!r})"

    def to_dict(self) -> dict[str, Any]:
        """``{"code", "message", "field"}`` as the server's error envelope names them."""
        return {"code": self.code, "message": self.message, "field": self.field}


def _invalid(field_name: str, message: str) -> ResolveError:
    return ResolveError("invalid_request", f"{field_name}: {message}", field=field_name, status=400)


# --- hashing --------------------------------------------------------------------------


def bucket(salt: str, key: str) -> int:
    """The bucket in ``[0, 10000)`` of ``key`` under ``salt`` (the server's ``bucket``)."""
    return mmh3.hash(f"{salt}:{key}", 0, False) % BUCKETS


@dataclass(frozen=True, slots=True)
class BucketRanges:
    """A split laid over the buckets: exclusive upper bounds and the version owning each."""

    upper: tuple[int, ...]
    numbers: tuple[int, ...]
    single: int | None

    def draw(self, salt: str, key: str) -> int:
        """The version number for ``key``: at most one hash and one bisect."""
        single = self.single
        if single is not None:
            return single
        return self.numbers[
            bisect_right(self.upper, mmh3.hash(f"{salt}:{key}", 0, False) % BUCKETS)
        ]


_NUMBER_REF = re.compile(r"[vV]?([1-9][0-9]{0,8})")
_HASH_REF = re.compile(r"sha256:[0-9a-f]{64}")


def _version_number(ref: Any, by_hash: Mapping[str, int]) -> int:
    """A stored traffic entry's version (``"v4"``, ``4``, ``"4"``, ``"sha256:..."``)."""
    if isinstance(ref, bool):
        raise ConfigError(f"bad version reference {ref!r}")
    if isinstance(ref, int):
        if ref < 1:
            raise ConfigError(f"bad version reference {ref!r}")
        return ref
    if isinstance(ref, str):
        if match := _NUMBER_REF.fullmatch(ref.strip()):
            return int(match.group(1))
        text = ref.strip().lower()
        if _HASH_REF.fullmatch(text) and text in by_hash:
            return by_hash[text]
    raise ConfigError(f"bad version reference {ref!r}")


def layout(traffic: Any, by_hash: Mapping[str, int]) -> BucketRanges:
    """Ranges in ascending version order, ``weight * 100`` buckets each (the server's)."""
    if not isinstance(traffic, list) or not traffic:
        raise ConfigError("a split is a non-empty list of {version, weight}")
    pairs: list[tuple[int, int]] = []
    for entry in traffic:
        if not isinstance(entry, dict):
            raise ConfigError("a split entry is an object")
        weight = entry.get("weight")
        if type(weight) is not int or weight < 0:
            raise ConfigError(f"bad weight {weight!r}")
        pairs.append((_version_number(entry.get("version"), by_hash), weight))
    if len({number for number, _ in pairs}) != len(pairs):
        raise ConfigError("a version appears twice in a split")
    upper: list[int] = []
    numbers: list[int] = []
    total = 0
    for number, weight in sorted(pairs):
        if weight > 0:
            total += weight * (BUCKETS // 100)
            upper.append(total)
            numbers.append(number)
    if total != BUCKETS:
        raise ConfigError(f"weights sum to {total // 100}, not 100")
    return BucketRanges(tuple(upper), tuple(numbers), numbers[0] if len(numbers) == 1 else None)


# --- context lookups ------------------------------------------------------------------

MISSING: Final = object()
"""An absent (or null) value; compare with ``is``."""


def _nested(context: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a dotted name's path in nested objects, or :data:`MISSING`."""
    value = context.get(path[0])
    for part in path[1:]:
        if not isinstance(value, dict):
            return MISSING
        value = value.get(part)
    if value is None:
        return MISSING
    if type(value) is int and not _I64_MIN <= value <= _U64_MAX:
        return _wide(value)
    return value


def _wide(value: int) -> float:
    """An integer past 64 bits as the server holds it: its JSON parser (orjson) reads such a
    number as a double, so a context sent over HTTP reaches resolve with the float. One
    past a double's range the server refuses (400); here it is a ValueError."""
    try:
        return float(value)
    except OverflowError as error:
        raise ValueError("integer beyond the range of a double") from error


# --- conditions and rules -------------------------------------------------------------

Test = Callable[[Any], bool]

OP_ALIASES: Final = {
    "==": "eq",
    "!=": "neq",
    "ne": "neq",
    "<": "lt",
    "below": "lt",
    "<=": "lte",
    ">": "gt",
    "above": "gt",
    ">=": "gte",
}
OPS: Final = frozenset(
    {
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
)
_NEGATIVE_OPS: Final = frozenset({"neq", "not_in", "not_contains"})


def _is_number(value: object) -> bool:
    return type(value) is int or type(value) is float


def _same(left: object, right: object) -> bool:
    if _is_number(left):
        return _is_number(right) and left == right
    return type(left) is type(right) and left == right


@dataclass(frozen=True, slots=True)
class Condition:
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
            value = context.get(self.attribute)
            if value is None:
                value = _nested(context, self.path) if len(self.path) > 1 else MISSING
                if value is MISSING:
                    return self.when_missing
        return self.test(value)


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule ready to evaluate: its conditions, coverage and bucket layout."""

    name: str
    conditions: tuple[Condition, ...]
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


def compile_condition(raw: Any) -> Condition:
    """A stored condition ``{"attribute", "op", "value"?}`` as lookups and a closure."""
    if not isinstance(raw, dict):
        raise ConfigError("a condition is an object")
    attribute = raw.get("attribute")
    op = raw.get("op")
    value = raw.get("value")
    if not isinstance(attribute, str) or not attribute:
        raise ConfigError(f"bad attribute {attribute!r}")
    if isinstance(op, str):
        op = OP_ALIASES.get(op, op)
    if op not in OPS:
        raise ConfigError(f"unknown operator {op!r}")
    test: Test
    if op in ("exists", "not_exists"):
        test = _always(op == "exists")
    elif op in ("eq", "neq"):
        test = _equals(value)
    elif op in ("in", "not_in"):
        test = _member_of(value if isinstance(value, list) else [])
    elif op in ("lt", "lte", "gt", "gte"):
        test = _compare(op, value)
    elif op in ("contains", "not_contains"):
        test = _contains(value)
    elif op == "starts_with":
        prefix = str(value)
        test = lambda v: isinstance(v, str) and v.startswith(prefix)  # noqa: E731
    else:
        suffix = str(value)
        test = lambda v: isinstance(v, str) and v.endswith(suffix)  # noqa: E731
    if op in _NEGATIVE_OPS:
        test = _negate(test)
    return Condition(attribute, tuple(attribute.split(".")), test, op == "not_exists")


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
        if type(value) is str:
            return value in strings
        if type(value) is list:
            return any(scalar_in(element) for element in value)
        return scalar_in(value)

    return test


def _compare(op: str, bound: Any) -> Test:
    """Ordering against a number (numbers only) or a string (strings only)."""
    same_kind: Test = _is_number if _is_number(bound) else (lambda v: type(v) is str)
    if op == "lt":
        return lambda v: same_kind(v) and v < bound
    if op == "lte":
        return lambda v: same_kind(v) and v <= bound
    if op == "gt":
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


def compile_rule(raw: Any, prompt_hex: str, by_hash: Mapping[str, int]) -> Rule:
    """A stored rule ``{"name", "when", "traffic", "coverage"?}``, ready to evaluate."""
    if not isinstance(raw, dict):
        raise ConfigError("a rule is an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"bad rule name {name!r}")
    when = raw.get("when") or []
    if not isinstance(when, list):
        raise ConfigError(f"rule {name!r}: 'when' is a list")
    coverage = raw.get("coverage")
    if coverage is None:
        coverage = 100
    if not _is_number(coverage) or not 0 <= coverage <= 100:
        raise ConfigError(f"rule {name!r}: bad coverage {coverage!r}")
    return Rule(
        name=name,
        conditions=tuple(compile_condition(condition) for condition in when),
        # The server validates coverage as a float, then rounds (half to even) per bucket.
        coverage_buckets=round(float(coverage) * (BUCKETS // 100)),
        coverage_salt=f"{prompt_hex}:coverage:{name}",
        ranges=layout(raw.get("traffic"), by_hash),
    )


# --- templates ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    """One placeholder: its variable name, path segments and the original text."""

    name: str
    path: tuple[str, ...]
    raw: str


@dataclass(frozen=True, slots=True)
class Template:
    """``literals[0] slot[0] literals[1] ... slot[n-1] literals[n]``, compiled once."""

    source: str
    first: str
    steps: tuple[tuple[Slot, str], ...]

    def render(self, context: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        """The filled-in text and the names of the variables the context lacked."""
        if not self.steps:
            return self.source, ()
        out = [self.first]
        missing: list[str] | None = None
        for slot, literal in self.steps:
            value = context.get(slot.name)
            if value is None and len(slot.path) > 1:
                value = _nested(context, slot.path)
            if value is None or value is MISSING:
                out.append(slot.raw)
                if missing is None:
                    missing = [slot.name]
                elif slot.name not in missing:
                    missing.append(slot.name)
            else:
                out.append(value if type(value) is str else to_text(value))
            out.append(literal)
        return "".join(out), (tuple(missing) if missing else ())


def compile_template(content: str) -> Template:
    """Split ``content`` at its placeholders, once."""
    literals: list[str] = []
    slots: list[Slot] = []
    start = 0
    for match in VARIABLE_PATTERN.finditer(content):
        literals.append(content[start : match.start()])
        name = match.group(1)
        slots.append(Slot(name, tuple(name.split(".")), match.group(0)))
        start = match.end()
    literals.append(content[start:])
    return Template(content, literals[0], tuple(zip(slots, literals[1:], strict=True)))


_I64_MIN: Final = -(2**63)
_U64_MAX: Final = 2**64 - 1
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def to_text(value: Any) -> str:
    """A context value as prompt text: strings verbatim, anything else as compact JSON.

    Written as the server's ``orjson.dumps`` writes it (floats in the shortest form that
    round-trips, exponents without a leading zero, 1e-5 to 1e-6 in plain decimals; NaN and
    infinities as ``null``); what orjson refuses (integers past 64 bits, non-string keys,
    lone surrogates, other types) is ``str(value)``, as on the server.
    """
    if isinstance(value, str):
        return value
    try:
        return _json(value)
    except (TypeError, ValueError):
        return str(value)


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        value.encode()  # lone surrogates raise (a ValueError), as orjson refuses them
        return _encode_string(value)
    if isinstance(value, int):
        if not _I64_MIN <= value <= _U64_MAX:
            return _float(_wide(value))
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(item) for item in value) + "]"
    if isinstance(value, dict):
        parts: list[str] = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("Dict key must be str")
            parts.append(_json(key) + ":" + _json(item))
        return "{" + ",".join(parts) + "}"
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _float(value: float) -> str:
    if not math.isfinite(value):
        return "null"
    text = float.__repr__(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = int(exponent)
    if power < 0:
        if power == -5:  # orjson writes 1e-5 as 0.00001, and 1e-6 as 1e-6
            sign = "-" if mantissa.startswith("-") else ""
            return sign + "0.0000" + mantissa.lstrip("-").replace(".", "")
        return f"{mantissa}e-{-power}"
    return f"{mantissa}e+{power}"


# --- the compiled configuration -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledVersion:
    """A version resolve can answer with, its answer's fixed fields and its template."""

    number: int
    version: str
    version_id: str
    content_hash: str
    content: str
    template: Template


@dataclass(frozen=True, slots=True)
class CompiledPrompt:
    """One prompt's routing: the deployment in force, compiled."""

    name: str
    prompt_id: str
    prompt_uuid: str
    uuid_int: int
    deployment_id: str | None
    traffic_rule: str
    salt: str
    ranges: BucketRanges | None
    """None: the prompt has nothing to serve (no version yet, or a broken deployment)."""
    rules: tuple[Rule, ...]
    versions: Mapping[int, CompiledVersion]


@dataclass(slots=True)
class Decision:
    """What resolve decided: the prompt, version, filled-in content and the rule."""

    prompt: CompiledPrompt
    version: CompiledVersion
    content: str
    traffic_rule: str
    missing_variables: tuple[str, ...]
    by_split: bool
    """The deployment's weighted split decided (not a rule, not a never-deployed prompt's
    latest version): the exposure's ``split``, as the server records it."""


@dataclass(frozen=True, slots=True)
class CompiledConfig:
    """A project's configuration, ready to resolve from."""

    project_id: str
    etag: str
    generated_at: str
    prompts: tuple[CompiledPrompt, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    """The JSON it was compiled from (what the disk cache saves)."""
    _refs: dict[str, CompiledPrompt] = field(repr=False, compare=False, default_factory=dict)
    _by_uuid: dict[int, CompiledPrompt] = field(repr=False, compare=False, default_factory=dict)

    def find(self, ref: str) -> CompiledPrompt | None:
        """The prompt ``ref`` names: an id (``prm_``, ``pmt_``, ``tmpl-``, UUID), else a name.

        Ids are tried first, as on the server; a reference shorter than 32 characters can
        only be a name.
        """
        found = self._refs.get(ref)
        if found is not None or len(ref) < SHORTEST_ID:
            return found
        prompt_uuid = _decode_prompt_id(ref)
        return self._by_uuid.get(prompt_uuid) if prompt_uuid is not None else None

    def unit_key(self, ref: str) -> str:
        """The prompt's UUID if ``ref`` names one, else ``ref``: one key for all spellings."""
        found = self.find(ref)
        return found.prompt_uuid if found is not None else ref

    def decide(
        self,
        prompt: str,
        user_id: str,
        context: Mapping[str, Any] | None = None,
        strict: bool = False,
    ) -> Decision:
        """Which version ``user_id`` gets, its content filled in; raises :class:`ResolveError`
        where the server's route answers an error (400 for a bad field or a strict miss,
        404 for an unknown prompt)."""
        if (
            type(prompt) is not str
            or not 0 < len(prompt) <= MAX_NAME_LENGTH
            or type(user_id) is not str
            or not 0 < len(user_id) <= MAX_USER_ID_LENGTH
        ):
            _check_text("prompt", prompt, MAX_NAME_LENGTH)
            _check_text("user_id", user_id, MAX_USER_ID_LENGTH)
        given = cast("object", context)  # callers are not always typed
        if given is None:
            context = {}
        elif isinstance(given, Mapping):
            context = given
        else:
            raise _invalid("context", "Input should be a valid dictionary")
        given = cast("object", strict)
        if type(given) is not bool:
            if given is not None:
                raise _invalid("strict", "Input should be a valid boolean")
            strict = False
        entry = self._refs.get(prompt)
        if entry is None:
            entry = self.find(prompt)
        if entry is None or entry.ranges is None:
            raise ResolveError(
                "not_found",
                f"Prompt '{prompt}' not found, or it has no version to serve yet.",
                field="prompt",
                status=404,
            )
        for rule in entry.rules:
            if rule.admits(user_id, context):
                number = rule.ranges.draw(entry.salt, user_id)
                decided = rule.name
                by_split = False
                break
        else:
            number = entry.ranges.draw(entry.salt, user_id)
            decided = entry.traffic_rule
            by_split = entry.deployment_id is not None
        version = entry.versions[number]
        content, missing = version.template.render(context)
        if strict and missing:
            raise ResolveError(
                "invalid_request",
                "Missing template variables: " + ", ".join(missing) + ".",
                field="context",
                status=400,
            )
        return Decision(
            entry,
            version,
            content,
            decided,
            missing,
            by_split,
        )


def _check_text(name: str, value: Any, max_length: int) -> None:
    """The route's field checks, in its order and words."""
    if type(value) is not str:
        raise _invalid(name, "Input should be a valid string")
    if not value:
        raise _invalid(name, "String should have at least 1 character")
    if len(value) > max_length:
        raise _invalid(name, f"String should have at most {max_length} characters")


def _decode_prompt_id(text: str) -> int | None:
    """The UUID (as an int) behind ``prm_``/``pmt_``/``tmpl-`` ids or a bare UUID."""
    for prefix in PROMPT_ID_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    try:
        return uuid.UUID(text).int
    except ValueError:
        return None


def _text_field(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value


def _compile_prompt(raw: Any) -> CompiledPrompt:
    if not isinstance(raw, dict):
        raise ConfigError("a prompt is an object")
    name = _text_field(raw, "name")
    prompt_uuid = uuid.UUID(_text_field(raw, "prompt_uuid"))
    prompt_id = raw.get("prompt_id") or "prm_" + prompt_uuid.hex
    deployment_id = raw.get("deployment_id")
    if deployment_id is not None and not isinstance(deployment_id, str):
        raise ConfigError(f"bad deployment_id {deployment_id!r}")
    traffic_rule = raw.get("traffic_rule")
    if not isinstance(traffic_rule, str) or not traffic_rule:
        traffic_rule = deployment_id or UNDEPLOYED_RULE
    versions: dict[int, CompiledVersion] = {}
    for version in raw.get("versions") or []:
        if not isinstance(version, dict):
            raise ConfigError("a version is an object")
        number = version.get("number")
        if number is None:
            number = _version_number(version.get("version"), {})
        if type(number) is not int:
            raise ConfigError(f"bad version number {number!r}")
        content = _text_field(version, "content")
        versions[number] = CompiledVersion(
            number,
            f"v{number}",
            _text_field(version, "version_id"),
            _text_field(version, "content_hash"),
            content,
            compile_template(content),
        )
    by_hash = {version.content_hash: number for number, version in versions.items()}
    hex_id = prompt_uuid.hex
    salt = raw.get("variant_salt") or hex_id
    traffic = raw.get("traffic")
    ranges: BucketRanges | None = None
    rules: tuple[Rule, ...] = ()
    if traffic:
        ranges = layout(traffic, by_hash)
        rules = tuple(compile_rule(rule, hex_id, by_hash) for rule in raw.get("rules") or [])
        needed = set(ranges.numbers)
        for rule in rules:
            needed.update(rule.ranges.numbers)
        lacking = needed - versions.keys()
        if lacking:
            raise ConfigError(f"prompt {name!r}: no content for versions {sorted(lacking)}")
    return CompiledPrompt(
        name=name,
        prompt_id=prompt_id,
        prompt_uuid=str(prompt_uuid),
        uuid_int=prompt_uuid.int,
        deployment_id=deployment_id,
        traffic_rule=traffic_rule,
        salt=salt,
        ranges=ranges,
        rules=rules,
        versions=versions,
    )


def compile_config(data: object) -> CompiledConfig:
    """Compile ``GET /v1/sdk/config``'s JSON; raises :class:`ConfigError` if unusable.

    A prompt whose deployment cannot be compiled is kept with nothing to serve (resolve
    answers it 404, as the server does for a prompt it cannot serve) rather than failing
    the whole configuration.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("the configuration is a JSON object")
    hashing = data.get("hashing")
    if isinstance(hashing, Mapping):
        algorithm = hashing.get("algorithm", HASH_ALGORITHM)
        if (
            algorithm != HASH_ALGORITHM
            or hashing.get("seed", 0) != 0
            or hashing.get("buckets", BUCKETS) != BUCKETS
            or hashing.get("input", HASH_INPUT) != HASH_INPUT
        ):
            raise ConfigError(f"unsupported hashing scheme {dict(hashing)!r}")
    raw_prompts = data.get("prompts")
    if not isinstance(raw_prompts, list):
        raise ConfigError("prompts must be a list")
    prompts: list[CompiledPrompt] = []
    for raw in raw_prompts:
        try:
            prompts.append(_compile_prompt(raw))
        except ConfigError:
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                raise
            prompts.append(_unservable(raw))
        except ValueError as error:  # a malformed UUID
            raise ConfigError(str(error)) from None
    by_uuid = {prompt.uuid_int: prompt for prompt in prompts}
    refs: dict[str, CompiledPrompt] = {}
    for prompt in prompts:  # an id wins over a name, as on the server: a name that spells
        named = prompt  # another prompt's id names that prompt
        if len(prompt.name) >= SHORTEST_ID:
            decoded = _decode_prompt_id(prompt.name)
            if decoded is not None and decoded in by_uuid:
                named = by_uuid[decoded]
        refs[prompt.name] = named
    for prompt in prompts:
        hex_id = uuid.UUID(int=prompt.uuid_int).hex
        for spelling in (
            "prm_" + hex_id,
            "pmt_" + hex_id,
            "tmpl-" + prompt.prompt_uuid,
            prompt.prompt_uuid,
            hex_id,
        ):
            refs[spelling] = prompt
    return CompiledConfig(
        project_id=str(data.get("project_id") or ""),
        etag=str(data.get("etag") or ""),
        generated_at=str(data.get("generated_at") or ""),
        prompts=tuple(prompts),
        raw=data,
        _refs=refs,
        _by_uuid=by_uuid,
    )


def _unservable(raw: Mapping[str, Any]) -> CompiledPrompt:
    """A prompt kept by name and id, with nothing to serve."""
    try:
        prompt_uuid = uuid.UUID(str(raw.get("prompt_uuid")))
    except ValueError:
        raise ConfigError(f"prompt {raw.get('name')!r}: bad prompt_uuid") from None
    return CompiledPrompt(
        name=str(raw["name"]),
        prompt_id="prm_" + prompt_uuid.hex,
        prompt_uuid=str(prompt_uuid),
        uuid_int=prompt_uuid.int,
        deployment_id=None,
        traffic_rule=UNDEPLOYED_RULE,
        salt=prompt_uuid.hex,
        ranges=None,
        rules=(),
        versions={},
    )


# --- the answer -----------------------------------------------------------------------


def iso_seconds(moment: float) -> str:
    """``resolved_at`` as the server writes it: UTC, to the second, with a ``Z``."""
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def answer(decision: Decision, resolved_at: str) -> dict[str, Any]:
    """Seed 001's resolve answer, in the server's field order."""
    prompt, version = decision.prompt, decision.version
    return {
        "prompt": prompt.name,
        "version": version.version,
        "content": decision.content,
        "resolved_at": resolved_at,
        "traffic_rule": decision.traffic_rule,
        "prompt_id": prompt.prompt_id,
        "prompt_uuid": prompt.prompt_uuid,
        "version_id": version.version_id,
        "content_hash": version.content_hash,
        "deployment_id": prompt.deployment_id,
        "missing_variables": list(decision.missing_variables),
    }


def resolve(
    config: CompiledConfig,
    prompt: str,
    user_id: str,
    context: Mapping[str, Any] | None = None,
    strict: bool = False,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """The server's ``POST /v1/resolve`` answer (a dict), or :class:`ResolveError`."""
    decision = config.decide(prompt, user_id, context, strict)
    return answer(decision, iso_seconds(time.time() if now is None else now))
