"""Property tests: every valid event reads back equal; no input crashes a reader."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_rest_protocol import (
    NEED_DATA,
    Cancel,
    Codec,
    Connection,
    Event,
    Notification,
    RemoteProtocolError,
    Request,
    Response,
    Role,
)

from .strategies import client_events, json_objects, json_values, server_events

CODECS = [Codec.JSON, Codec.MSGPACK]
FAST = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def _receive_one(conn: Connection, wire: str | bytes) -> Event:
    conn.receive_data(wire)
    event = conn.next_event()
    assert conn.next_event() is NEED_DATA
    return event  # type: ignore[return-value]


def _prepare(client: Connection, server: Connection, event: Event) -> None:
    """Put both sides in the state in which `event` may be sent."""
    if isinstance(event, Cancel):  # a cancel of an unknown id is (rightly) swallowed
        _receive_one(server, client.send(Request(method="GET", url="/", id=event.id)))
    if isinstance(event, Response):
        _receive_one(server, client.send(Request(method="GET", url="/", id=event.id)))
    if isinstance(event, Notification) and event.id is not None:
        request = _receive_one(server, client.send(Request(method="SUBSCRIBE", url="/", id=event.id)))
        assert isinstance(request, Request)
        _receive_one(client, server.send(request.response()))


@pytest.mark.parametrize("codec", CODECS)
@FAST
@given(event=client_events)
def test_client_events_round_trip(codec: Codec, event: Event) -> None:
    client, server = Connection(Role.CLIENT, codec=codec), Connection(Role.SERVER, codec=codec)
    _prepare(client, server, event)
    wire = client.send(event)
    assert isinstance(wire, str if codec is Codec.JSON else bytes)
    assert _receive_one(server, wire) == event


@pytest.mark.parametrize("codec", CODECS)
@FAST
@given(event=server_events)
def test_server_events_round_trip(codec: Codec, event: Event) -> None:
    client, server = Connection(Role.CLIENT, codec=codec), Connection(Role.SERVER, codec=codec)
    _prepare(client, server, event)
    assert _receive_one(client, server.send(event)) == event


def _assert_only_documented_errors(conn: Connection, message: str | bytes) -> None:
    conn.receive_data(message)
    try:
        event = conn.next_event()
    except RemoteProtocolError as exc:
        hint = exc.event_hint
        assert isinstance(hint, Response) and hint.is_error
        assert hint.status == exc.error_status_hint and hint.code == exc.code
        assert conn.send(hint)  # the hint is always sendable
    else:
        assert event is NEED_DATA or not isinstance(event, Response)
        if isinstance(event, Request):
            conn.send(event.error(500))
    assert conn.next_event() is NEED_DATA


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=500, deadline=None)
@given(message=st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_input_raises_only_remote_protocol_error(codec: Codec, message: str | bytes) -> None:
    _assert_only_documented_errors(Connection(Role.SERVER, codec=codec), message)


envelope_like = st.dictionaries(
    st.sampled_from(["type", "method", "url", "args", "data", "event_name", "id", "timeout", "token", "x"]),
    json_values | st.sampled_from(["request", "cancel", "ping", "auth", "GET", "get", "/a", "SUBSCRIBE"]),
    max_size=8,
)


@settings(max_examples=800, deadline=None)
@given(envelope=envelope_like | json_objects | json_values)
def test_arbitrary_json_raises_only_remote_protocol_error(envelope: Any) -> None:
    import orjson

    _assert_only_documented_errors(Connection(Role.SERVER), orjson.dumps(envelope).decode())


@settings(max_examples=300, deadline=None)
@given(message=st.binary(max_size=200) | st.text(max_size=200))
def test_client_role_raises_only_remote_protocol_error(message: str | bytes) -> None:
    conn = Connection(Role.CLIENT)
    conn.receive_data(message)
    try:
        conn.next_event()
    except RemoteProtocolError as exc:
        assert exc.event_hint is None
