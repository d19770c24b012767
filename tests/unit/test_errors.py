import orjson

from promptline.http.errors import DEFAULT_DIALECT, ApiError, ErrorKind, error_response
from promptline.http.families import TEMPLATES_DIALECT


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
