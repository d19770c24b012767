"""Names refuse every control character, C1 (U+0080 to U+009F) as well as C0 and DEL.

Each route that creates a named prompt answers with its family's validation status and
code, naming the field, and stores nothing; characters just past the control ranges
(``~``, no-break space, letters with accents) are still names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.controlplane.test_api_harness import Api, Tenant


@dataclass(frozen=True)
class NamingRoute:
    """A route that takes a name, its family's answer to a bad field, and its listing."""

    path: str
    extra: dict[str, Any]
    status: int
    code: str
    listing: str

    def names(self, body: Any) -> list[str]:
        """The names in a reply of ``listing``."""
        rows = body if isinstance(body, list) else body.get("prompts", body.get("data"))
        return [row["name"] for row in rows]


ROUTES = [
    NamingRoute("/v1/prompts", {}, 400, "invalid_request", "/v1/prompts"),
    NamingRoute(
        "/dashboard/prompts",
        {"version": 1, "content": "c"},
        422,
        "validation_error",
        "/dashboard/prompts",
    ),
    NamingRoute(
        "/dashboard/prompts/",
        {"version": 1, "content": "c"},
        422,
        "validation_error",
        "/dashboard/prompts/",
    ),
    NamingRoute(
        "/api/v1/prompt-templates",
        {"content": "c"},
        400,
        "VALIDATION_ERROR",
        "/api/v1/prompt-templates",
    ),
]
C1 = ["\x80", "\x85", "\x8d", "\x9b", "\x9f"]
"""The first and last of C1, NEL (a line break to some), RI and CSI (terminal escapes)."""


@pytest.mark.parametrize("route", ROUTES, ids=[route.path for route in ROUTES])
@pytest.mark.parametrize(
    "name",
    [
        *(f"bot{control}name" for control in C1),
        "\x85bot",  # NEL is also whitespace to str.strip(): refused at the edge of a name too
        "bot\x9f",
        "bot\x01name",  # C0 and DEL, refused as before
        "bot\x7fname",
    ],
    ids=repr,
)
async def test_a_name_with_a_control_character_is_refused_naming_the_field(
    api: Api, tenant: Tenant, route: NamingRoute, name: str
) -> None:
    reply = await api.call("POST", route.path, tenant.key, json={"name": name, **route.extra})
    assert (reply.status, reply.code) == (route.status, route.code), reply.body
    assert reply.body["error"]["field"] == "name"
    listed = await api.call("GET", route.listing, tenant.key)
    assert route.names(listed.body) == []


@pytest.mark.parametrize("route", ROUTES, ids=[route.path for route in ROUTES])
async def test_characters_next_to_the_control_ranges_are_names(
    api: Api, tenant: Tenant, route: NamingRoute
) -> None:
    names = ["bot~name", "bot\xa0name", "caf\xe9-bot", "\u00a1hola"]
    for name in names:
        reply = await api.call("POST", route.path, tenant.key, json={"name": name, **route.extra})
        assert reply.status == 201, (name, reply.body)
    listed = await api.call("GET", route.listing, tenant.key)
    assert sorted(route.names(listed.body)) == sorted(names)


async def test_the_message_says_why(api: Api, tenant: Tenant) -> None:
    reply = await api.call("POST", "/v1/prompts", tenant.key, json={"name": "bot\x9bname"})
    assert reply.status == 400
    assert "control characters" in reply.body["error"]["message"]
