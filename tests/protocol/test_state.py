"""The state rules of `Connection` (docs/protocol.md §4)."""

from __future__ import annotations

import pytest
from trio_rest_protocol import (
    NEED_DATA,
    Auth,
    Cancel,
    Connection,
    ConnectionClosed,
    ConnectionState,
    LocalProtocolError,
    Notification,
    Ping,
    Pong,
    RemoteProtocolError,
    Request,
    Response,
    Role,
)
from trio_rest_protocol._state import TRANSITIONS, Trigger, render_table

from ._harness import deliver, drain, pair


def _serve(server: Connection, message: str) -> Request:
    server.receive_data(message)
    event = server.next_event()
    assert isinstance(event, Request)
    return event


def _rejected(server: Connection, message: str) -> Response:
    server.receive_data(message)
    with pytest.raises(RemoteProtocolError) as info:
        server.next_event()
    hint = info.value.event_hint
    assert hint is not None
    server.send(hint)
    return hint


def test_duplicate_in_flight_id_is_409_and_does_not_answer_the_original() -> None:
    server = Connection(Role.SERVER)
    first = _serve(server, '{"method": "GET", "url": "/a", "id": 1}')
    hint = _rejected(server, '{"method": "GET", "url": "/b", "id": 1, "event_name": "b"}')
    assert (hint.status, hint.code, hint.id, hint.event_name) == (409, "duplicate_id", 1, "b")
    assert server.is_in_flight(1)
    server.send(first.response())
    assert not server.is_in_flight(1)
    # Once answered, the id is free again.
    _serve(server, '{"method": "GET", "url": "/c", "id": 1}')


@pytest.mark.parametrize("method", ["GET", "SUBSCRIBE"])
def test_the_id_of_an_active_subscription_is_not_reused(method: str) -> None:
    server = Connection(Role.SERVER)
    subscribe = _serve(server, '{"method": "SUBSCRIBE", "url": "/a", "id": "s"}')
    server.send(subscribe.response())  # accepted: no longer in flight, but active
    hint = _rejected(server, f'{{"method": "{method}", "url": "/b", "id": "s"}}')
    assert (hint.status, hint.code, hint.id) == (409, "duplicate_id", "s")
    assert server.is_subscribed("s")
    server.receive_data('{"type": "cancel", "id": "s"}')
    assert isinstance(server.next_event(), Cancel)
    _serve(server, f'{{"method": "{method}", "url": "/c", "id": "s"}}')  # free once it ended


def test_response_for_unknown_id_is_a_local_error() -> None:
    server = Connection(Role.SERVER)
    with pytest.raises(LocalProtocolError, match="not in flight"):
        server.send(Response(id=5, status=200))
    request = _serve(server, '{"method": "GET", "url": "/", "id": 5}')
    server.send(request.response())
    with pytest.raises(LocalProtocolError):
        server.send(request.response())  # a request is answered exactly once


def test_anonymous_requests_are_counted() -> None:
    server = Connection(Role.SERVER)
    first = _serve(server, '{"method": "GET", "url": "/"}')
    second = _serve(server, '{"method": "GET", "url": "/"}')
    assert server.in_flight == 2
    server.send(second.response())
    server.send(first.error(500))
    assert server.in_flight == 0
    with pytest.raises(LocalProtocolError):
        server.send(first.response())


def test_in_flight_limit_is_429() -> None:
    server = Connection(Role.SERVER, max_in_flight=2)
    _serve(server, '{"method": "GET", "url": "/", "id": 1}')
    _serve(server, '{"method": "GET", "url": "/"}')
    hint = _rejected(server, '{"method": "GET", "url": "/", "id": 3}')
    assert (hint.status, hint.code, hint.id) == (429, "too_many_requests", 3)


def test_cancel_of_unknown_id_is_ignored() -> None:
    server = Connection(Role.SERVER)
    server.receive_data('{"type": "cancel", "id": 99}')
    assert server.next_event() is NEED_DATA


def test_cancel_of_in_flight_request_is_delivered_and_reply_still_owed() -> None:
    client, server = pair()
    request = deliver(client, server, Request(method="GET", url="/slow", id=1))[0]
    assert deliver(client, server, Cancel(id=1)) == [Cancel(id=1)]
    assert server.is_in_flight(1) and client.is_in_flight(1)
    assert isinstance(request, Request)
    reply = deliver(server, client, request.error(499))
    assert reply[0].code == "cancelled"  # type: ignore[union-attr]
    assert client.in_flight == 0


def test_subscription_lifecycle() -> None:
    client, server = pair()
    subscribe = deliver(client, server, Request(method="SUBSCRIBE", url="/user/1", id="s"))[0]
    with pytest.raises(LocalProtocolError, match="no active subscription"):
        server.send(Notification(id="s", data=1))  # not before the 200
    assert isinstance(subscribe, Request)
    deliver(server, client, subscribe.response())
    assert server.is_subscribed("s") and client.is_subscribed("s")
    assert deliver(server, client, Notification(id="s", seq=1, data=1))[0].seq == 1  # type: ignore[union-attr]
    assert deliver(client, server, Cancel(id="s")) == [Cancel(id="s")]
    assert not server.is_subscribed("s") and not client.is_subscribed("s")
    with pytest.raises(LocalProtocolError):
        server.send(Notification(id="s", data=2))


def test_server_ends_a_subscription_with_a_final_notification() -> None:
    client, server = pair()
    subscribe = deliver(client, server, Request(method="SUBSCRIBE", url="/t", id=3))[0]
    assert isinstance(subscribe, Request)
    deliver(server, client, subscribe.response())
    deliver(server, client, Notification(id=3, data=None, final=True))
    assert not server.is_subscribed(3) and not client.is_subscribed(3)


def test_refused_subscription_is_not_active() -> None:
    client, server = pair()
    subscribe = deliver(client, server, Request(method="SUBSCRIBE", url="/t", id=3))[0]
    assert isinstance(subscribe, Request)
    deliver(server, client, subscribe.error(403))
    assert not server.is_subscribed(3) and not client.is_subscribed(3)


def test_topic_notifications_need_no_subscription() -> None:
    client, server = pair()
    assert deliver(server, client, Notification(topic="news", data="hi")) == [
        Notification(topic="news", data="hi")
    ]


def test_in_band_authentication() -> None:
    client, server = pair(require_auth=True)
    assert server.state is ConnectionState.AUTHENTICATING
    hint = _rejected(server, '{"method": "GET", "url": "/", "id": 1}')
    assert (hint.status, hint.code) == (401, "not_authenticated")
    auth = deliver(client, server, Auth(token="bad", id="a1"))[0]
    assert isinstance(auth, Auth)
    deliver(server, client, auth.error())
    assert server.state is ConnectionState.AUTHENTICATING
    with pytest.raises(LocalProtocolError):
        server.send(Notification(topic="x"))  # nothing is pushed before authentication
    auth = deliver(client, server, Auth(token="good"))[0]
    assert deliver(server, client, Ping(id=9).pong()) == [Pong(id=9)]  # pings flow meanwhile
    assert isinstance(auth, Auth)
    deliver(server, client, auth.response(data={"user": "ada"}))
    assert server.state is ConnectionState.OPEN
    _serve(server, '{"method": "GET", "url": "/", "id": 1}')


def test_closing_refuses_new_work_and_finishes_old() -> None:
    client, server = pair()
    request = deliver(client, server, Request(method="GET", url="/", id=1))[0]
    assert server.send(ConnectionClosed(code=1001)) == ""
    assert server.state is ConnectionState.CLOSING
    hint = _rejected(server, '{"method": "GET", "url": "/", "id": 2}')
    assert (hint.status, hint.code) == (503, "closing")
    assert isinstance(request, Request)
    deliver(server, client, request.response())
    server.receive_data(None, code=1001, reason="going away")
    assert drain(server) == [ConnectionClosed(code=1001, reason="going away")]
    assert server.state is ConnectionState.CLOSED
    assert server.next_event() == ConnectionClosed(code=1001, reason="going away")


def test_transport_gone_after_queued_messages() -> None:
    server = Connection(Role.SERVER)
    server.receive_data('{"method": "GET", "url": "/", "id": 1}')
    server.receive_data(None)
    assert isinstance(server.next_event(), Request)
    assert server.next_event() == ConnectionClosed(code=1006)
    assert server.in_flight == 0
    with pytest.raises(LocalProtocolError):
        server.receive_data("{}")
    with pytest.raises(LocalProtocolError):
        server.send(Pong())


def test_client_cannot_send_after_closing() -> None:
    client = Connection(Role.CLIENT)
    client.send(ConnectionClosed())
    with pytest.raises(LocalProtocolError, match="state CLOSING"):
        client.send(Request(method="GET", url="/"))


@pytest.mark.parametrize(
    ("role", "event"),
    [
        (Role.SERVER, Request(method="GET", url="/")),
        (Role.SERVER, Cancel(id=1)),
        (Role.CLIENT, Response(status=200)),
        (Role.CLIENT, Notification()),
    ],
)
def test_role_rules(role: Role, event: object) -> None:
    with pytest.raises(LocalProtocolError, match="role cannot send"):
        Connection(role).send(event)  # type: ignore[arg-type]


def test_client_tracks_and_checks_replies() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request(method="GET", url="/", id=1))
    with pytest.raises(LocalProtocolError, match="already in flight"):
        client.send(Request(method="GET", url="/", id=1))
    client.receive_data('{"type": "response", "id": 2, "status": 200, "data": 1}')
    with pytest.raises(RemoteProtocolError, match="not in flight"):
        client.next_event()
    # An error for something never tracked (e.g. a frame the server could not parse) passes.
    client.receive_data(
        '{"type": "response", "id": null, "status": 400, "code": "parse_error", "detail": "x"}'
    )
    assert isinstance(client.next_event(), Response)
    client.receive_data('{"type": "response", "id": 1, "status": 200, "data": 1}')
    assert client.next_event() == Response(id=1, status=200, data=1)


def test_require_auth_is_server_only() -> None:
    with pytest.raises(ValueError):
        Connection(Role.CLIENT, require_auth=True)


def test_every_state_has_a_way_out_to_closed() -> None:
    for state in ConnectionState:
        assert TRANSITIONS[(state, Trigger.TRANSPORT_GONE)] is ConnectionState.CLOSED


def test_docs_print_the_transition_table() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()
    assert render_table() in doc, "docs/protocol.md §4 is out of date: paste render_table()'s output"


def test_an_unencodable_reply_leaves_the_request_in_flight() -> None:
    server = Connection(Role.SERVER)
    request = _serve(server, '{"method": "GET", "url": "/", "id": 1}')
    with pytest.raises(LocalProtocolError, match="cannot encode"):
        server.send(request.response(data=object()))
    assert server.is_in_flight(1)
    server.send(request.error(500))
    assert not server.is_in_flight(1)


@pytest.mark.parametrize("text", ["a" * 100, "é" * 40])  # 100 bytes either way, once encoded
def test_a_message_larger_than_max_send_size_is_refused_before_it_counts(text: str) -> None:
    client = Connection(Role.CLIENT, max_send_size=100)
    with pytest.raises(LocalProtocolError, match="max_send_size"):
        client.send(Request(method="POST", url="/x", data=text, id=1))
    # Nothing changed: the same id can be sent again, small enough this time.
    client.send(Request(method="POST", url="/x", data="ok", id=1))
    with pytest.raises(ValueError, match="positive"):
        Connection(Role.CLIENT, max_send_size=0)
