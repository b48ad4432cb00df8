"""Each kind of bad input gets its exact error reply, and the connection goes on."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from trio_rest_protocol import NEED_DATA, Codec, Connection, RemoteProtocolError, Request, Response, Role


def _reject(message: str | bytes, **options: Any) -> Response:
    conn = Connection(Role.SERVER, **options)
    conn.receive_data(message)
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    hint = info.value.event_hint
    assert isinstance(hint, Response)
    conn.send(hint)
    # The connection survives: the next message is served normally.
    conn.receive_data('{"method": "GET", "url": "/ok", "id": "next"}')
    assert conn.next_event() == Request(method="GET", url="/ok", id="next")
    return hint


BAD_INPUTS = [
    # (name, message, status, code, echoed id)
    ("invalid utf-8", b'{"method": "GET", "url": "/\xff"}', 400, "parse_error", None),
    ("lone surrogate", '{"method": "GET", "url": "/\udc00"}', 400, "parse_error", None),
    ("invalid json", '{"method": "GET", "url": ', 400, "parse_error", None),
    ("empty message", "", 400, "parse_error", None),
    ("json array", '[{"method": "GET", "url": "/"}]', 400, "invalid_envelope", None),
    ("json string", '"GET /"', 400, "invalid_envelope", None),
    ("missing method", '{"url": "/user/1", "id": 1}', 400, "invalid_envelope", 1),
    ("missing url", '{"method": "GET", "id": 2}', 400, "invalid_envelope", 2),
    ("mistyped url", '{"method": "GET", "url": 5, "id": 3}', 400, "invalid_envelope", 3),
    ("mistyped args", '{"method": "GET", "url": "/", "args": [1], "id": 4}', 400, "invalid_envelope", 4),
    (
        "mistyped event_name",
        '{"method": "GET", "url": "/", "event_name": 1, "id": 5}',
        400,
        "invalid_envelope",
        5,
    ),
    ("mistyped id", '{"method": "GET", "url": "/", "id": [1]}', 400, "invalid_envelope", None),
    ("boolean id", '{"method": "GET", "url": "/", "id": true}', 400, "invalid_envelope", None),
    ("bad timeout", '{"method": "GET", "url": "/", "timeout": -1, "id": 6}', 400, "invalid_envelope", 6),
    ("unknown type", '{"type": "launch", "id": 7}', 400, "invalid_envelope", 7),
    ("server-only type", '{"type": "response", "id": 8}', 400, "invalid_envelope", 8),
    ("bad method", '{"method": "FETCH", "url": "/", "id": 9}', 400, "invalid_envelope", 9),
    ("url without slash", '{"method": "GET", "url": "user/1", "id": 10}', 400, "invalid_envelope", 10),
    ("subscribe without id", '{"method": "SUBSCRIBE", "url": "/user/1"}', 400, "invalid_envelope", None),
    ("cancel without id", '{"type": "cancel"}', 400, "invalid_envelope", None),
    ("auth without token", '{"type": "auth", "id": 11}', 400, "invalid_envelope", 11),
    ("NaN", '{"method": "POST", "url": "/", "data": NaN, "id": 12}', 400, "parse_error", None),
    ("Infinity", '{"method": "POST", "url": "/", "data": Infinity}', 400, "parse_error", None),
    ("overflowing float", '{"method": "POST", "url": "/", "data": 1e400}', 400, "parse_error", None),
    (
        "int beyond 64 bits",
        '{"method": "POST", "url": "/", "data": 18446744073709551616}',
        400,
        "parse_error",
        None,
    ),
    (
        "negative int beyond 64 bits",
        '{"method": "POST", "url": "/", "data": [-9223372036854775809]}',
        400,
        "parse_error",
        None,
    ),
    (
        "id beyond 64 bits",
        '{"method": "GET", "url": "/", "id": 99999999999999999999999}',
        400,
        "parse_error",
        None,
    ),
    # A plain GET skips the integer scan, so every other place a number can hide is covered.
    (
        "int beyond 64 bits in args",
        '{"method": "GET", "url": "/", "args": {"page": 99999999999999999999999}, "id": 15}',
        400,
        "parse_error",
        None,
    ),
    (
        "int beyond 64 bits in an extra key",
        '{"method": "GET", "url": "/", "token": 99999999999999999999999}',
        400,
        "parse_error",
        None,
    ),
    (
        "timeout beyond 64 bits",
        '{"method": "GET", "url": "/", "timeout": 99999999999999999999999}',
        400,
        "parse_error",
        None,
    ),
    ("cancel id beyond 64 bits", '{"type": "cancel", "id": 18446744073709551616}', 400, "parse_error", None),
    (
        "too deep",
        '{"method": "POST", "url": "/", "id": 13, "data": ' + "[" * 40 + "]" * 40 + "}",
        400,
        "too_deep",
        None,
    ),
    (
        "too large",
        '{"method": "POST", "url": "/", "id": 14, "data": "' + "x" * 2**20 + '"}',
        413,
        "too_large",
        None,
    ),
    (
        "too large, multi-byte",
        '{"method": "POST", "url": "/", "data": "' + "é" * 600_000 + '"}',
        413,
        "too_large",
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "message", "status", "code", "echoed"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_gets_its_documented_reply(
    name: str, message: str | bytes, status: int, code: str, echoed: object
) -> None:
    hint = _reject(message)
    assert (hint.status, hint.code, hint.id) == (status, code, echoed)
    assert hint.detail


def test_field_errors_are_all_reported_at_once() -> None:
    hint = _reject(
        '{"method": "FETCH", "url": "x", "args": 1, "timeout": "soon", "id": "a", "event_name": "e"}'
    )
    assert hint.event_name == "e"
    assert sorted(hint.errors) == ["args", "method", "timeout", "url"]
    assert hint.errors["url"] == ["Must be an absolute path starting with '/'."]


def test_missing_field_message() -> None:
    assert _reject('{"url": "/"}').errors == {"method": ["This field is required."]}


def test_within_the_limits_passes() -> None:
    conn = Connection(Role.SERVER)
    deep = "[" * 30 + "]" * 30
    conn.receive_data('{"method": "POST", "url": "/", "data": ' + deep + ', "n": 18446744073709551615}')
    event = conn.next_event()
    assert isinstance(event, Request) and event.extras == {"n": 2**64 - 1}
    conn.receive_data('{"method": "POST", "url": "/", "data": "12345678901234567890123 in a string"}')
    assert isinstance(conn.next_event(), Request)
    brackets_in_strings = '{"method": "POST", "url": "/", "data": "' + "[" * 100 + '"}'
    conn.receive_data(brackets_in_strings)
    assert isinstance(conn.next_event(), Request)


@pytest.mark.parametrize(
    ("option", "message", "code"),
    [
        ({"max_message_size": 64}, '{"method": "GET", "url": "/' + "a" * 64 + '"}', "too_large"),
        ({"max_depth": 2}, '{"method": "POST", "url": "/", "data": [[1]]}', "too_deep"),
    ],
)
def test_limits_are_configurable(option: dict[str, int], message: str, code: str) -> None:
    assert _reject(message, **option).code == code


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Connection(Role.SERVER, max_depth=0)


MSGPACK_BAD = [
    ("truncated", msgpack.packb({"method": "GET", "url": "/"})[:-2], "parse_error"),
    (
        "non-string key",
        msgpack.packb({1: "x", "method": "GET", "url": "/"}, strict_types=False),
        "parse_error",
    ),
    (
        "binary value",
        msgpack.packb({"method": "GET", "url": "/", "data": b"\x00"}, use_bin_type=True),
        "parse_error",
    ),
    ("NaN", msgpack.packb({"method": "GET", "url": "/", "data": float("nan")}), "parse_error"),
    (
        "ext type",
        msgpack.packb({"method": "GET", "url": "/", "data": msgpack.ExtType(5, b"x")}),
        "parse_error",
    ),
    ("invalid utf-8", b"\x81\xa3url\xa2/\xff", "parse_error"),
    (
        "too deep",
        msgpack.packb(
            {
                "method": "GET",
                "url": "/",
                "data": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
            }
        ),
        "too_deep",
    ),
]


@pytest.mark.parametrize(("name", "message", "code"), MSGPACK_BAD, ids=[b[0] for b in MSGPACK_BAD])
def test_bad_msgpack(name: str, message: bytes, code: str) -> None:
    hint = _reject(message, codec=Codec.MSGPACK)
    assert (hint.status, hint.code) == (400, code)


def test_text_frames_are_json_even_on_a_msgpack_connection() -> None:
    conn = Connection(Role.SERVER, codec=Codec.MSGPACK)
    conn.receive_data('{"method": "GET", "url": "/", "id": 1}')
    request = conn.next_event()
    assert isinstance(request, Request)
    assert msgpack.unpackb(conn.send(request.response(data=[1]))) == {
        "type": "response",
        "id": 1,
        "event_name": None,
        "status": 200,
        "data": [1],
    }


def test_binary_json_on_a_json_connection() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b'{"method": "GET", "url": "/"}')
    assert conn.next_event() == Request(method="GET", url="/")
    assert conn.next_event() is NEED_DATA
