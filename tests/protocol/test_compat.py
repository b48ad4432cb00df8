"""aiorest-ws clients keep working: their envelopes parse and their replies have their keys."""

from __future__ import annotations

import orjson
from trio_rest_protocol import Connection, Request, Role


def _read(message: str) -> Request:
    conn = Connection(Role.SERVER)
    conn.receive_data(message)
    event = conn.next_event()
    assert isinstance(event, Request)
    return event


def test_aiorest_ws_envelope_with_top_level_token_and_format() -> None:
    # The shape aiorest-ws's JavaScript and Python clients sent: no type, no id,
    # a lower-case method, `token` at the top level, `format` in args.
    request = _read(
        '{"method": "get", "url": "/user/list/", "args": {"format": "json"},'
        ' "event_name": "list-users", "token": "abc"}'
    )
    assert request.method == "GET"
    assert request.url == "/user/list/"
    assert request.args == {"format": "json"}
    assert request.extras == {"token": "abc"}
    assert request.event_name == "list-users"


def test_success_reply_keeps_data_and_event_name() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data('{"method": "GET", "url": "/user/1", "event_name": "get-user"}')
    request = conn.next_event()
    assert isinstance(request, Request)
    reply = orjson.loads(conn.send(request.response(data={"id": 1})))
    assert reply["data"] == {"id": 1} and reply["event_name"] == "get-user"
    assert "detail" not in reply


def test_error_reply_keeps_detail() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data('{"method": "POST", "url": "/user/", "event_name": "create-user"}')
    request = conn.next_event()
    assert isinstance(request, Request)
    reply = orjson.loads(conn.send(request.error(400, detail="Invalid input.")))
    assert reply["detail"] == "Invalid input." and reply["event_name"] == "create-user"
