"""Signatures as a receiver checks them, and the address rule's edge cases (no network)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from controlplane.webhooks.signing import new_secret, signature_header, verify_signature
from controlplane.webhooks.targets import TargetPolicy, TargetRefused, check_target, parse_target

BODY = b'{"id":"dlv_1","type":"rollout.step"}'


def test_a_signature_verifies_within_its_tolerance_only() -> None:
    secret = new_secret()
    header = signature_header(secret, 1_800_000_000, BODY)
    assert verify_signature(secret, header, BODY, 300, now=1_800_000_000 + 300)
    assert verify_signature(secret, header, BODY, 300, now=1_800_000_000 - 300)
    assert not verify_signature(secret, header, BODY, 300, now=1_800_000_000 + 301)


def test_any_v1_signature_of_a_header_may_match() -> None:
    secret = new_secret()
    good = signature_header(secret, 1_800_000_000, BODY).split(",")[1]
    header = f"t=1800000000,v1={'0' * 64},{good}"
    assert verify_signature(secret, header, BODY, now=1_800_000_000)


@pytest.mark.parametrize(
    "header", ["", "garbage", "t=abc,v1=00", "v1=00", "t=1800000000", "t=-5,v1=00", "t=1,,="]
)
def test_malformed_headers_do_not_verify(header: str) -> None:
    assert not verify_signature(new_secret(), header, BODY, now=1_800_000_000)


def test_secrets_are_random_and_prefixed() -> None:
    first, second = new_secret(), new_secret()
    assert first != second and first.startswith("whsec_") and len(first) == 6 + 64


async def test_a_host_that_does_not_resolve_in_time_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def never(*_args: Any, **_kwargs: Any) -> Any:
        await asyncio.Event().wait()

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", never)
    with pytest.raises(TargetRefused, match="did not resolve in time"):
        await check_target("https://slow.example/hook", TargetPolicy(resolve_timeout=0.01))


async def test_resolver_errors_of_every_kind_are_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    for error in (socket.gaierror(-2, "Name or service not known"), UnicodeError("label")):

        async def failing(*_args: Any, error: Exception = error, **_kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", failing)
        with pytest.raises(TargetRefused, match="does not resolve"):
            await check_target("https://gone.example/hook", TargetPolicy())


async def test_every_address_of_a_name_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    async def mixed(*_args: Any, **_kwargs: Any) -> Any:
        stream = socket.SOCK_STREAM
        return [
            (socket.AF_INET, stream, 6, "", ("1.1.1.1", 0)),
            (socket.AF_INET, stream, 6, "", ("10.0.0.1", 0)),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", mixed)
    with pytest.raises(TargetRefused, match=r"mixed\.example is 10\.0\.0\.1"):
        await check_target("https://mixed.example/hook", TargetPolicy())


@pytest.mark.parametrize(
    "url",
    [
        "https://" + "a" * 64 + ".example/",
        "https://a..b/",
        "https://-/",
        "http://[::1/",
        "x" * 2001,
    ],
)
def test_hosts_that_are_not_names_are_refused_before_any_lookup(url: str) -> None:
    with pytest.raises(TargetRefused):
        parse_target(url)
