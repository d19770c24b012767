"""Public ids in each route family's shape, all derived from one internal UUID.

The seeds spell ids differently (``prm_abc123``, ``pmt_abc123``, ``tmpl-abc-123``, a
bare UUID), so nothing extra is stored: each shape encodes the same UUID reversibly.

- seed 001: ``prm_<32 hex>`` (prompt), ``ver_<32 hex>`` (version), ``dep_<32 hex>``;
  its webhooks (issue 15): ``whk_<32 hex>`` (webhook), ``dlv_<32 hex>`` (delivery);
  a guarded rollout: ``rol_<32 hex>``
- seed 000: ``pmt_<32 hex>`` (prompt)
- seed 003: ``tmpl-<uuid>`` (prompt), ``ver-<uuid>`` (version)
- seeds 002 and 004: the canonical UUID string
"""

from __future__ import annotations

import uuid
from enum import StrEnum


class IdShape(StrEnum):
    """The prefixes of public ids; each says what it names and in which family."""

    PROMPT = "prm_"
    SIGNAL_PROMPT = "pmt_"
    VERSION = "ver_"
    DEPLOYMENT = "dep_"
    WEBHOOK = "whk_"
    DELIVERY = "dlv_"
    ROLLOUT = "rol_"
    TEMPLATE = "tmpl-"
    TEMPLATE_VERSION = "ver-"


_HEX_SHAPES = {
    IdShape.PROMPT,
    IdShape.SIGNAL_PROMPT,
    IdShape.VERSION,
    IdShape.DEPLOYMENT,
    IdShape.WEBHOOK,
    IdShape.DELIVERY,
    IdShape.ROLLOUT,
}


def encode(shape: IdShape, value: uuid.UUID) -> str:
    """The public id of ``value`` in ``shape``."""
    return shape.value + (value.hex if shape in _HEX_SHAPES else str(value))


def decode(text: str, *shapes: IdShape) -> uuid.UUID | None:
    """The UUID behind a public id in one of ``shapes``, or a bare UUID; None otherwise."""
    for shape in shapes:
        if text.startswith(shape.value):
            return _uuid(text[len(shape.value) :])
    return _uuid(text)


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
