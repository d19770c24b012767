"""Analytics events (seed 004): latency, cost and score of one prompt invocation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.domains import CostUsd, LatencyMs, Score
from schemas.idempotency import IdempotencyKey
from schemas.usage import PromptReference


class AnalyticsEventIn(BaseModel):
    """The request body of ``POST /api/v1/prompts/analytics``.

    Seed 004 does not forbid unknown fields, so they are ignored. Numbers must be JSON
    numbers (not strings or booleans, which would hide a client bug) within the domains
    the warehouse can hold (``schemas.domains``; latency and cost are never negative, as
    a negative cost is always a bug). ``null`` is the same as leaving a field out.
    ``idempotency_key`` is ours, beside the ``Idempotency-Key`` header: an open body
    would otherwise drop it silently, and a client that puts it there means it (the
    batch route takes it there too). ``prompt_id`` is any reference to the prompt (its
    ``prm_``, ``pmt_`` or ``tmpl-`` id, its UUID as seed 004 shows, or its name), as
    everywhere a prompt is taken; the edge resolves it to the UUID records carry.
    """

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    prompt_id: PromptReference
    version_hash: str = Field(min_length=1, max_length=128)
    latency_ms: LatencyMs | None = None
    cost_usd: CostUsd | None = None
    score: Score | None = None
    idempotency_key: IdempotencyKey | None = None
