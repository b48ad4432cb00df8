from __future__ import annotations

import pickle

import pytest
import trio_rest_protocol

from trio_rest._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    MethodNotAllowedError,
    NoReverseMatchError,
    NotFound,
    NotFoundError,
    PermissionDenied,
    PermissionDeniedError,
    ServiceUnavailableError,
    ThrottledError,
    TrioRestError,
    ValidationError,
    reason_phrase,
)


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (400, "Bad Request"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (413, "Request Entity Too Large"),
        (429, "Too Many Requests"),
        (499, "Client Closed Request"),
        (500, "Internal Server Error"),
        (504, "Gateway Timeout"),
        (460, "Client Error"),
        (599, "Server Error"),
        (999, "Unknown Status"),
        (-1, "Unknown Status"),
    ],
)
def test_reason_phrase(status: int, phrase: str) -> None:
    assert reason_phrase(status) == phrase


def test_reason_phrase_has_one_home() -> None:
    # The framework's default detail and the protocol's are the same function.
    assert reason_phrase is trio_rest_protocol.reason_phrase


@pytest.mark.parametrize(
    ("cls", "status", "code", "detail"),
    [
        (APIError, 500, "error", "Internal Server Error"),
        (BadRequestError, 400, "bad_request", "Bad Request"),
        (ValidationError, 400, "invalid", "Invalid input."),
        (AuthenticationError, 401, "not_authenticated", "Unauthorized"),
        (PermissionDeniedError, 403, "permission_denied", "Forbidden"),
        (NotFoundError, 404, "not_found", "Not Found"),
        (MethodNotAllowedError, 405, "method_not_allowed", "Method not allowed."),
        (ConflictError, 409, "conflict", "Conflict"),
        (ThrottledError, 429, "throttled", "Too Many Requests"),
        (ServiceUnavailableError, 503, "unavailable", "Service Unavailable"),
    ],
)
def test_defaults(cls: type[APIError], status: int, code: str, detail: str) -> None:
    exc = cls()
    assert (exc.status, exc.code, exc.detail) == (status, code, detail)
    assert (cls.status, cls.code) == (status, code)
    assert str(exc) == detail
    assert isinstance(exc, APIError)
    assert isinstance(exc, TrioRestError)


def test_plain_errors_default_to_none() -> None:
    assert NotFoundError().errors is None
    assert ValidationError().errors is None


def test_overrides() -> None:
    exc = APIError("teapot", status=418, code="teapot", errors={"why": ["short and stout"]})
    assert (exc.status, exc.code, exc.detail) == (418, "teapot", "teapot")
    assert exc.errors == {"why": ["short and stout"]}
    # The override is per instance; the class keeps its default.
    assert APIError.status == 500


def test_status_override_sets_default_detail() -> None:
    assert APIError(status=499, code="cancelled").detail == "Client Closed Request"
    assert APIError(status=504, code="timeout").detail == "Gateway Timeout"
    assert NotFoundError(status=410).detail == "Gone"


@pytest.mark.parametrize("status", [200, 204, 302, 399, 600, 0])
def test_status_must_be_an_error(status: int) -> None:
    with pytest.raises(ValueError, match="400-599"):
        APIError(status=status)


def test_validation_error_errors() -> None:
    errors = {"name": ["This field is required."]}
    exc = ValidationError(errors=errors)
    assert exc.errors == errors
    assert exc.detail == "Invalid input."


def test_validation_error_accepts_mapping_as_detail() -> None:
    exc = ValidationError({"name": ["This field is required."]})
    assert exc.errors == {"name": ["This field is required."]}
    assert exc.detail == "Invalid input."
    assert ValidationError("Bad name.").detail == "Bad name."


def test_validation_error_rejects_two_mappings() -> None:
    with pytest.raises(TypeError):
        ValidationError({"a": ["x"]}, errors={"b": ["y"]})


def test_method_not_allowed_names_allowed_methods() -> None:
    exc = MethodNotAllowedError(allowed=["GET", "PUT"], method="DELETE")
    assert exc.allowed == ("GET", "PUT")
    assert exc.method == "DELETE"
    assert exc.detail == 'Method "DELETE" not allowed. Allowed: GET, PUT.'
    assert exc.errors == {"allowed": ["GET", "PUT"]}


def test_method_not_allowed_without_method() -> None:
    exc = MethodNotAllowedError(allowed=("POST",))
    assert exc.detail == "Method not allowed. Allowed: POST."
    assert MethodNotAllowedError("nope", allowed=("GET",)).detail == "nope"


def test_throttled_retry_after() -> None:
    assert ThrottledError(retry_after=2.5).retry_after == 2.5
    assert ThrottledError().retry_after is None


def test_aliases() -> None:
    assert NotFound is NotFoundError
    assert PermissionDenied is PermissionDeniedError


def test_hierarchy() -> None:
    assert issubclass(ConfigurationError, TrioRestError)
    assert not issubclass(ConfigurationError, APIError)
    assert issubclass(NoReverseMatchError, TrioRestError)
    assert issubclass(NoReverseMatchError, LookupError)
    assert issubclass(TrioRestError, Exception)


@pytest.mark.parametrize(
    "exc",
    [
        NotFoundError("no such user"),
        APIError("x", status=418, code="teapot", errors=[1, 2]),
        ValidationError({"name": ["required"]}),
        MethodNotAllowedError(allowed=("GET",), method="PUT"),
        ThrottledError(retry_after=1.0),
    ],
)
def test_pickle_round_trip(exc: APIError) -> None:
    # Errors cross process boundaries (workers, brokers): every attribute survives.
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert vars(copy) == vars(exc)
    assert str(copy) == str(exc)


def test_repr() -> None:
    expected = "NotFoundError('gone', status=404, code='not_found', errors=None)"
    assert repr(NotFoundError("gone")) == expected
