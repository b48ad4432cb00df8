"""Events are validated on construction, and their helpers build correct replies."""

from __future__ import annotations

from typing import Any

import pytest
from trio_rest_protocol import (
    Auth,
    Cancel,
    ConnectionClosed,
    Notification,
    Ping,
    Pong,
    Request,
    Response,
    default_error_code,
    reason_phrase,
)

INVALID: list[tuple[type, dict[str, Any]]] = [
    (Request, {"method": "FETCH", "url": "/"}),
    (Request, {"method": "get", "url": "/"}),  # the event holds the canonical upper case
    (Request, {"method": "GET", "url": "user"}),
    (Request, {"method": "GET", "url": "/", "args": []}),
    (Request, {"method": "GET", "url": "/", "id": True}),
    (Request, {"method": "GET", "url": "/", "id": 2**64}),
    (Request, {"method": "GET", "url": "/", "timeout": 0}),
    (Request, {"method": "GET", "url": "/", "timeout": float("inf")}),
    (Request, {"method": "SUBSCRIBE", "url": "/"}),
    (Request, {"method": "GET", "url": "/", "extras": {"id": 1}}),
    (Response, {"status": 99}),
    (Response, {"status": 404}),  # an error needs code and detail
    (Response, {"status": 200, "event_name": 3}),
    (Notification, {"seq": -1}),
    (Notification, {"final": True}),  # only a subscription's notification can be final
    (Cancel, {"id": None}),
    (Ping, {"id": 1.5}),
    (Pong, {"id": [1]}),
    (Auth, {"token": ""}),
    (ConnectionClosed, {"code": 999}),
]


@pytest.mark.parametrize(("cls", "fields"), INVALID)
def test_invalid_events_cannot_exist(cls: type, fields: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        cls(**fields)


def test_events_are_frozen() -> None:
    request = Request(method="GET", url="/")
    with pytest.raises(AttributeError):
        request.url = "/other"  # type: ignore[misc]


def test_request_helpers_echo_id_and_event_name() -> None:
    request = Request(
        method="PUT", url="/user/6?expand=addresses&x=1", args={"x": "2"}, id=17, event_name="e"
    )
    assert request.path == "/user/6"
    assert request.merged_args() == {"expand": "addresses", "x": "2"}
    assert request.response(status=201, data={"id": 6}) == Response(
        id=17, event_name="e", status=201, data={"id": 6}
    )
    error = request.error(404)
    assert (error.id, error.event_name, error.code, error.detail) == (17, "e", "not_found", "Not Found")
    custom = request.error(400, code="invalid", detail="Invalid input.", errors={"name": ["Required."]})
    assert custom.errors == {"name": ["Required."]}
    with pytest.raises(ValueError):
        request.response(status=500)
    with pytest.raises(ValueError):
        request.error(200)


def test_auth_and_ping_helpers() -> None:
    assert Auth(token="t", id=1).response() == Response(id=1, status=200)
    assert Auth(token="t").error().code == "not_authenticated"
    assert Ping(id="p").pong() == Pong(id="p")


@pytest.mark.parametrize(
    ("status", "code", "phrase"),
    [
        (404, "not_found", "Not Found"),
        (499, "cancelled", "Client Closed Request"),
        (504, "timeout", "Gateway Timeout"),
        (460, "error", "Client Error"),
        (599, "error", "Server Error"),
        (999, "error", "Unknown Status"),
    ],
)
def test_defaults_by_status(status: int, code: str, phrase: str) -> None:
    assert default_error_code(status) == code
    assert reason_phrase(status) == phrase
