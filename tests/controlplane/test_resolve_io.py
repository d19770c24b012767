"""The resolve route's hand-written body check and answer encoding."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson
import pytest

from controlplane.api.resolve_io import Answers, parse_resolve
from controlplane.ids import IdShape, encode
from controlplane.resolve import Resolution
from promptline.http.errors import ApiError

TIMESTAMP = re.compile(rb'"resolved_at":"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)"')


def _resolution(**changes: Any) -> Resolution:
    fields: dict[str, Any] = {
        "prompt_id": uuid.uuid4(),
        "prompt_name": "checkout-assistant",
        "version_number": 4,
        "version_id": uuid.uuid4(),
        "content_hash": "sha256:" + "a" * 64,
        "content": 'Help "Ada" \u00e9 with {{cart}}\n',
        "traffic_rule": "experiment-april",
        "deployment_id": uuid.uuid4(),
        "missing_variables": ("cart",),
        "by_split": True,
    }
    return Resolution(**(fields | changes))


def _as_dict(resolution: Resolution, resolved_at: str) -> dict[str, Any]:
    deployment = resolution.deployment_id
    return {
        "prompt": resolution.prompt_name,
        "version": resolution.version,
        "content": resolution.content,
        "resolved_at": resolved_at,
        "traffic_rule": resolution.traffic_rule,
        "prompt_id": encode(IdShape.PROMPT, resolution.prompt_id),
        "prompt_uuid": str(resolution.prompt_id),
        "version_id": encode(IdShape.VERSION, resolution.version_id),
        "content_hash": resolution.content_hash,
        "deployment_id": encode(IdShape.DEPLOYMENT, deployment) if deployment else None,
        "missing_variables": list(resolution.missing_variables),
    }


@pytest.mark.parametrize(
    "changes",
    [{}, {"deployment_id": None, "traffic_rule": "latest"}, {"missing_variables": ()}],
)
def test_answers_are_byte_for_byte_the_dict_encoding(changes: dict[str, Any]) -> None:
    answers = Answers()
    resolution = _resolution(**changes)
    for _ in range(2):  # the second answer comes from the cached parts
        body = answers.encode(resolution)
        stamp = TIMESTAMP.search(body)
        assert stamp is not None
        assert body == orjson.dumps(_as_dict(resolution, stamp.group(1).decode()))


def test_cached_parts_never_leak_between_versions_or_rules() -> None:
    answers = Answers()
    first = _resolution()
    answers.encode(first)
    for other in (
        _resolution(prompt_id=first.prompt_id, traffic_rule="eu-users"),
        _resolution(prompt_id=first.prompt_id, version_id=first.version_id, deployment_id=None),
    ):
        assert orjson.loads(answers.encode(other))["traffic_rule"] == other.traffic_rule
        assert orjson.loads(answers.encode(other))["deployment_id"] == (
            encode(IdShape.DEPLOYMENT, other.deployment_id) if other.deployment_id else None
        )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"user_id": "u"}, "prompt", "prompt: Field required"),
        ({"prompt": None, "user_id": "u"}, "prompt", "prompt: Input should be a valid string"),
        ({"prompt": "p", "user_id": "x" * 1001}, "user_id", "at most 1000 characters"),
        ({"prompt": "p", "user_id": ""}, "user_id", "at least 1 character"),
        ({"prompt": "p", "user_id": "u", "context": []}, "context", "valid dictionary"),
        ({"prompt": "p", "user_id": "u", "strict": 1}, "strict", "valid boolean"),
    ],
)
def test_bad_bodies_name_the_field(body: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_resolve(body)
    assert refused.value.status == 400
    assert refused.value.field == field
    assert message in refused.value.message


def test_a_good_body_keeps_its_context_and_ignores_unknown_fields() -> None:
    checked = parse_resolve({"prompt": "p", "user_id": "u", "context": {"a": 1}, "extra": 0})
    assert checked == ("p", "u", {"a": 1}, False)
    assert parse_resolve({"prompt": "p", "user_id": "u", "context": None})[2] == {}
    assert parse_resolve({"prompt": "p", "user_id": "u", "strict": True}) == ("p", "u", {}, True)
    assert parse_resolve({"prompt": "p", "user_id": "u", "strict": None}) == ("p", "u", {}, False)


def test_resolved_at_follows_the_clock_second_by_second(monkeypatch: pytest.MonkeyPatch) -> None:
    answers, resolution = Answers(), _resolution()
    now = [1_746_714_181.2]  # 2025-05-08T14:23:01.2Z
    monkeypatch.setattr(time, "time", lambda: now[0])

    def stamp() -> bytes:
        found = TIMESTAMP.search(answers.encode(resolution))
        assert found is not None
        return found.group(1)

    assert stamp() == b"2025-05-08T14:23:01Z"
    now[0] += 0.7
    assert stamp() == b"2025-05-08T14:23:01Z"
    now[0] += 0.2
    assert stamp() == b"2025-05-08T14:23:02Z"
    now[0] += 3600
    assert stamp() == b"2025-05-08T15:23:02Z"
