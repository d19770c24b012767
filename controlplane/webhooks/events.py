"""The event types a webhook can subscribe to, one per decision a project wants to hear of."""

from __future__ import annotations

DEPLOYMENT_CREATED = "deployment.created"
DEPLOYMENT_ROLLED_BACK = "deployment.rolled_back"
ROLLOUT_STARTED = "rollout.started"
ROLLOUT_STEP = "rollout.step"
ROLLOUT_ROLLED_BACK = "rollout.rolled_back"
ROLLOUT_COMPLETED = "rollout.completed"
ROLLOUT_HELD = "rollout.held"
ROLLOUT_STOPPED = "rollout.stopped"
ROLLOUT_SAMPLE_RATIO_MISMATCH = "rollout.sample_ratio_mismatch"

EVENT_TYPES: tuple[str, ...] = (
    DEPLOYMENT_CREATED,
    DEPLOYMENT_ROLLED_BACK,
    ROLLOUT_STARTED,
    ROLLOUT_STEP,
    ROLLOUT_ROLLED_BACK,
    ROLLOUT_COMPLETED,
    ROLLOUT_HELD,
    ROLLOUT_STOPPED,
    ROLLOUT_SAMPLE_RATIO_MISMATCH,
)

ALL_EVENTS = "*"
"""A subscription to every type, including types added after the webhook was registered."""


def subscribed(events: list[str], event_type: str) -> bool:
    """Whether a webhook subscribed to ``events`` receives ``event_type``."""
    return ALL_EVENTS in events or event_type in events
