"""Which ``Content-Encoding`` headers a body may carry, and how a refusal is answered."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from promptline.http.codings import unsupported_coding
from promptline.http.errors import ErrorKind


def _coding_of(*values: str) -> CIMultiDict[str]:
    """Headers with one ``Content-Encoding`` line per value."""
    return CIMultiDict([("Content-Encoding", value) for value in values])


@pytest.mark.parametrize(
    "values",
    [
        (),
        ("",),
        ("identity",),
        ("IDENTITY",),
        ("identity, identity",),
        ("identity", "identity"),
        ("gzip",),
        ("GZip",),
        ("deflate",),
        ("DEFLATE",),
    ],
)
def test_no_coding_identity_or_one_of_gzip_and_deflate_is_taken(values: tuple[str, ...]) -> None:
    request = make_mocked_request("POST", "/v1/resolve", headers=_coding_of(*values))
    assert unsupported_coding(request) is None


@pytest.mark.parametrize(
    ("values", "closes"),
    [
        (("br",), True),  # aiohttp decodes these itself: the connection is closed
        (("ZSTD",), True),
        (("compress",), False),  # these arrive as sent: the connection stays open
        (("x-gzip",), False),
        (("unknown-coding",), False),
        (("gzip, br",), False),
        (("gzip, gzip",), False),  # aiohttp decodes one coding only: a list is refused
        (("gzip, identity",), False),
        (("identity, deflate",), False),
        (("identity, br",), False),
        (("gzip", "br"), True),  # two header lines: aiohttp decodes one of them
        (("gzip", "gzip"), True),
        (("identity", "br"), True),
        (("g\u00fczip",), False),
    ],
)
def test_any_other_coding_is_415_naming_the_header_and_the_codings_taken(
    values: tuple[str, ...], closes: bool
) -> None:
    request = make_mocked_request("POST", "/v1/resolve", headers=_coding_of(*values))
    error = unsupported_coding(request)
    assert error is not None
    assert (error.kind, error.status, error.field) == (
        ErrorKind.UNSUPPORTED_MEDIA_TYPE,
        415,
        "Content-Encoding",
    )
    assert "gzip, deflate or identity" in error.message
    assert values[0] in error.message
    assert error.headers == {"Accept-Encoding": "gzip, deflate, identity"}
    assert error.close_connection is closes


def test_a_long_header_is_cut_short_in_the_message() -> None:
    request = make_mocked_request("POST", "/v1/resolve", headers=_coding_of("x" * 5000))
    error = unsupported_coding(request)
    assert error is not None
    assert "x" * 100 + "..." in error.message
    assert len(error.message) < 300
