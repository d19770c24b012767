import math
import uuid

import pytest
from pydantic import ValidationError

from schemas.analytics import AnalyticsEventIn

PROMPT = str(uuid.uuid4())


def test_seed_example_is_valid_and_unknown_fields_are_ignored() -> None:
    event = AnalyticsEventIn.model_validate(
        {
            "prompt_id": PROMPT,
            "version_hash": "string",
            "latency_ms": 0,
            "cost_usd": 0,
            "score": 0,
            "extra": "ignored",
        }
    )
    assert event.prompt_id == PROMPT  # a reference, resolved to the prompt by the edge
    assert (event.latency_ms, event.cost_usd, event.score) == (0, 0, 0)


def test_only_prompt_id_and_version_hash_are_required() -> None:
    event = AnalyticsEventIn.model_validate({"prompt_id": PROMPT, "version_hash": "h"})
    assert event.latency_ms is None and event.cost_usd is None and event.score is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version_hash": "h"}, "prompt_id"),
        ({"prompt_id": "", "version_hash": "h"}, "prompt_id"),
        ({"prompt_id": 5, "version_hash": "h"}, "prompt_id"),
        ({"prompt_id": "n" * 201, "version_hash": "h"}, "prompt_id"),
        ({"prompt_id": PROMPT}, "version_hash"),
        ({"prompt_id": PROMPT, "version_hash": ""}, "version_hash"),
        ({"prompt_id": PROMPT, "version_hash": "h", "latency_ms": -1}, "latency_ms"),
        ({"prompt_id": PROMPT, "version_hash": "h", "cost_usd": -0.01}, "cost_usd"),
        ({"prompt_id": PROMPT, "version_hash": "h", "score": math.inf}, "score"),
        ({"prompt_id": PROMPT, "version_hash": "h", "latency_ms": math.nan}, "latency_ms"),
        ({"prompt_id": PROMPT, "version_hash": "h", "latency_ms": "fast"}, "latency_ms"),
    ],
)
def test_bad_events_name_the_field_at_fault(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AnalyticsEventIn.model_validate(body)
    assert caught.value.errors()[0]["loc"] == (field,)
