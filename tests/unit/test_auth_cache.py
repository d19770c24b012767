"""Authentication remembers valid headers per catalog snapshot, and only valid ones."""

from __future__ import annotations

import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from controlplane.api.auth import authenticate
from controlplane.catalog import MAX_REMEMBERED_CALLERS, Catalog, Principal
from controlplane.keys import digest
from promptline.http.errors import ApiError

KEY = "pl_sk_" + "k" * 32


def _catalog(*principals: tuple[str, Principal]) -> Catalog:
    return Catalog(revision=1, principals={digest(k): p for k, p in principals}, prompts={})


def _principal(*scopes: str) -> Principal:
    return Principal(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "free", frozenset(scopes))


def _request(header: str) -> web.Request:
    return make_mocked_request("POST", "/v1/resolve", headers={"Authorization": header})


def test_a_valid_header_is_remembered_and_scopes_still_checked() -> None:
    reader = _principal("read")
    catalog = _catalog((KEY, reader))
    header = f"Bearer {KEY}"
    assert authenticate(_request(header), catalog, "read") is reader
    assert catalog.callers == {header: reader}
    assert authenticate(_request(header), catalog, "read") is reader
    with pytest.raises(ApiError) as refused:
        authenticate(_request(header), catalog, "deploy")
    assert refused.value.status == 403


def test_unknown_keys_are_not_remembered_and_a_new_snapshot_forgets() -> None:
    catalog = _catalog((KEY, _principal("read")))
    for attempt in range(3):
        with pytest.raises(ApiError) as refused:
            authenticate(_request(f"Bearer pl_sk_wrong{attempt}"), catalog, "read")
        assert refused.value.status == 401
    assert catalog.callers == {}
    authenticate(_request(f"Bearer {KEY}"), catalog, "read")
    revoked = _catalog()  # the next snapshot, without the key
    with pytest.raises(ApiError) as gone:
        authenticate(_request(f"Bearer {KEY}"), revoked, "read")
    assert gone.value.status == 401


def test_the_memory_is_bounded() -> None:
    principal = _principal("read")
    catalog = _catalog()
    for index in range(MAX_REMEMBERED_CALLERS + 5):
        catalog.remember(f"Bearer {index}", principal)
    assert len(catalog.callers) <= MAX_REMEMBERED_CALLERS
