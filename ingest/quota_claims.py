"""Which signals of a reservation are charged: a retried idempotency key is charged once.

A signal sent again with the same idempotency key is the same signal (the warehouse keeps
one row per project, prompt and key), so it must not cost a second unit of the monthly
quota. The quota therefore remembers, per month, the keyed signals it charged, with the id
and receive time the first request was answered; a retry is a *repeat*: not charged, and
answered that same id and time. A reservation is a list of *claims*, one per signal:
``None`` for a signal without a key, a :class:`KeyedSignal` otherwise. This module is the
decision, shared by the store-backed quota and the in-memory one:

- a claim whose identity was charged before (this month) is a repeat of that signal;
- among the claims of one reservation, a later claim with the identity of an earlier one
  shares the earlier one's fate (a repeat of it if it is charged, refused if it is not);
- every other claim is *chargeable*; the quota grants as many as are left, first come
  first served, and the rest are over the limit (their keys are not remembered).

A charged key is forgotten again when its signal is released (Kafka refused it), unless
a repeat was answered with it meanwhile: that repeat's own record may have reached Kafka,
so the unit stays charged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

Identity = tuple[uuid.UUID, uuid.UUID, str]
"""(project, prompt, idempotency key): what the warehouse stores one signal for."""


@dataclass(frozen=True, slots=True)
class KeyedSignal:
    """A signal with an idempotency key, as the quota remembers it once charged.

    ``signal_id``, ``value`` and ``created_ms`` (Unix milliseconds) are what its request
    is answered, and so what every retry with the same key is answered.
    """

    project_id: uuid.UUID
    prompt_id: uuid.UUID
    key: str
    signal_id: int
    value: str
    created_ms: int

    @property
    def identity(self) -> Identity:
        """The project, prompt and key that name the signal."""
        return (self.project_id, self.prompt_id, self.key)


class GrantKind(StrEnum):
    """What became of one claim."""

    CHARGED = "charged"
    REPEAT = "repeat"
    OVER_LIMIT = "over_limit"


@dataclass(frozen=True, slots=True)
class Grant:
    """One claim's outcome; a repeat names the signal its key was first charged for."""

    kind: GrantKind
    first: KeyedSignal | None = None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def to_millis(moment: datetime) -> int:
    """Unix milliseconds of a receive time (which has millisecond precision)."""
    return (moment - EPOCH) // MILLISECOND


def from_millis(millis: int) -> datetime:
    """The receive time that :func:`to_millis` gave ``millis`` for, in UTC."""
    return EPOCH + millis * MILLISECOND


CHARGED = Grant(GrantKind.CHARGED)
OVER_LIMIT = Grant(GrantKind.OVER_LIMIT)


def first_claims(claims: Sequence[KeyedSignal | None]) -> dict[Identity, tuple[KeyedSignal, int]]:
    """Each identity's first claim, and how many later claims have that identity."""
    firsts: dict[Identity, tuple[KeyedSignal, int]] = {}
    for claim in claims:
        if claim is None:
            continue
        seen = firsts.get(claim.identity)
        firsts[claim.identity] = (claim, 0) if seen is None else (seen[0], seen[1] + 1)
    return firsts


class ClaimPlan:
    """The claims of one reservation, judged against the keys already remembered."""

    def __init__(
        self, claims: Sequence[KeyedSignal | None], remembered: Mapping[Identity, KeyedSignal]
    ) -> None:
        self._claims = list(claims)
        self._remembered = remembered
        self._leader: list[int | None] = []  # the earlier claim this one repeats, if any
        leaders: dict[Identity, int] = {}
        for position, claim in enumerate(self._claims):
            if claim is None or claim.identity in remembered:
                self._leader.append(None)
            else:
                self._leader.append(leaders.get(claim.identity))
                leaders.setdefault(claim.identity, position)
        self.chargeable = sum(
            1
            for position, claim in enumerate(self._claims)
            if self._leader[position] is None
            and (claim is None or claim.identity not in remembered)
        )
        """How many units the reservation asks the counter for."""

    def grants(self, granted: int) -> list[Grant]:
        """One grant per claim, in order, once the counter has granted ``granted`` units."""
        grants: list[Grant] = []
        left = granted
        for position, claim in enumerate(self._claims):
            leader = self._leader[position]
            if claim is not None and claim.identity in self._remembered:
                grants.append(Grant(GrantKind.REPEAT, self._remembered[claim.identity]))
            elif leader is not None:
                led = grants[leader]
                first = self._claims[leader]
                charged = led.kind is GrantKind.CHARGED
                grants.append(Grant(GrantKind.REPEAT, first) if charged else OVER_LIMIT)
            elif left > 0:
                left -= 1
                grants.append(CHARGED)
            else:
                grants.append(OVER_LIMIT)
        return grants

    def charged_keys(self, grants: Sequence[Grant]) -> list[KeyedSignal]:
        """The keyed claims that were charged: the keys to remember."""
        return [
            claim
            for claim, grant in zip(self._claims, grants, strict=True)
            if claim is not None and grant.kind is GrantKind.CHARGED
        ]

    def refused_keys(self, grants: Sequence[Grant]) -> list[KeyedSignal]:
        """Keyed claims that would have been new but went over the limit: not to remember."""
        return [
            claim
            for position, (claim, grant) in enumerate(zip(self._claims, grants, strict=True))
            if claim is not None
            and grant.kind is GrantKind.OVER_LIMIT
            and self._leader[position] is None
        ]


def split_charged(
    claims: Sequence[KeyedSignal | None], grants: Sequence[Grant]
) -> tuple[int, list[KeyedSignal]]:
    """Of the charged claims: how many have no key, and the keyed ones (to give back)."""
    unkeyed = 0
    keyed: list[KeyedSignal] = []
    for claim, grant in zip(claims, grants, strict=True):
        if grant.kind is not GrantKind.CHARGED:
            continue
        if claim is None:
            unkeyed += 1
        else:
            keyed.append(claim)
    return unkeyed, keyed
