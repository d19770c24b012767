import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from promptline.http.errors import (
    DEFAULT_DIALECT,
    ApiError,
    ErrorKind,
    error_middleware,
    error_response,
)
from promptline.http.families import TEMPLATES_DIALECT, dialect_for


def _body(response_body: object) -> dict[str, dict[str, str]]:
    assert isinstance(response_body, bytes)
    parsed: dict[str, dict[str, str]] = orjson.loads(response_body)
    return parsed


def test_envelope_has_code_message_and_docs_link() -> None:
    error = ApiError(ErrorKind.WEIGHT_MISMATCH, "Traffic weights must sum to 100. Got 95.")
    response = error_response(error, DEFAULT_DIALECT)
    assert response.status == 422
    assert _body(response.body) == {
        "error": {
            "code": "weight_mismatch",
            "message": "Traffic weights must sum to 100. Got 95.",
            "docs": "https://promptline.dev/docs/errors#weight_mismatch",
        }
    }


def test_templates_family_spells_codes_in_upper_case() -> None:
    assert TEMPLATES_DIALECT.code(ErrorKind.INVALID_REQUEST) == "VALIDATION_ERROR"
    assert TEMPLATES_DIALECT.code(ErrorKind.VALIDATION) == "VALIDATION_ERROR"
    assert TEMPLATES_DIALECT.code(ErrorKind.UNAUTHORIZED) == "UNAUTHORIZED"
    assert TEMPLATES_DIALECT.code(ErrorKind.RATE_LIMITED) == "RATE_LIMIT_EXCEEDED"
    assert DEFAULT_DIALECT.code(ErrorKind.RATE_LIMITED) == "rate_limited"


def test_rate_limit_sets_retry_after_in_whole_seconds_rounded_up() -> None:
    error = ApiError(ErrorKind.RATE_LIMITED, "Too many requests.", retry_after=1.2)
    response = error_response(error, DEFAULT_DIALECT)
    assert response.status == 429
    assert response.headers["Retry-After"] == "2"
    tiny = error_response(ApiError(ErrorKind.RATE_LIMITED, "x", retry_after=0.01), DEFAULT_DIALECT)
    assert tiny.headers["Retry-After"] == "1"


def test_field_is_named_when_known() -> None:
    error = ApiError(ErrorKind.VALIDATION, "value: bad", field="value")
    assert _body(error_response(error, DEFAULT_DIALECT).body)["error"]["field"] == "value"


def test_retry_after_never_rounds_down() -> None:
    error = ApiError(ErrorKind.RATE_LIMITED, "x", retry_after=2.001)
    assert error_response(error, DEFAULT_DIALECT).headers["Retry-After"] == "3"
    exact = ApiError(ErrorKind.RATE_LIMITED, "x", retry_after=2.0)
    assert error_response(exact, DEFAULT_DIALECT).headers["Retry-After"] == "2"


async def _crash(_request: web.Request) -> web.Response:
    raise RuntimeError("secret internals: /srv/app/db.py line 12")


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def test_a_crash_is_a_500_envelope_in_each_family_without_the_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = web.Application(middlewares=[error_middleware(dialect_for)])
    app.router.add_get("/v1/prompts/boom", _crash)
    app.router.add_get("/api/v1/prompt-templates/boom", _crash)
    app.router.add_get("/v1/only-get", _ok)
    async with TestClient(TestServer(app)) as client:
        for path, code in (
            ("/v1/prompts/boom", "internal_error"),
            ("/api/v1/prompt-templates/boom", "INTERNAL_ERROR"),
        ):
            response = await client.get(path)
            assert response.status == 500
            text = await response.text()
            assert "secret internals" not in text and "Traceback" not in text
            error = orjson.loads(text)["error"]
            assert error["code"] == code
            assert error["message"] == "Something went wrong on our end."
        assert "secret internals" in caplog.text  # logged for operators, not answered

        not_allowed = await client.post("/v1/only-get")
        assert not_allowed.status == 405
        assert "GET" in not_allowed.headers["Allow"]
        assert (await not_allowed.json())["error"]["code"] == "method_not_allowed"
