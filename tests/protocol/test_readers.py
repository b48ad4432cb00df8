"""Each kind of bad input gets its exact error reply, and the connection goes on."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trio_rest_protocol import NEED_DATA, Codec, Connection, RemoteProtocolError, Request, Response, Role
from trio_rest_protocol._events import INT_MAX, INT_MIN


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
    # (name, message, status, code, echoed id). docs/protocol.md §3: the id is
    # echoed whenever it could be read from a decoded object; otherwise null.
    ("invalid utf-8", b'{"id": 1, "method": "GET", "url": "/\xff"}', 400, "parse_error", None),
    ("lone surrogate", '{"method": "GET", "url": "/\udc00", "id": 16}', 400, "parse_error", 16),
    ("invalid json", '{"id": 1, "method": "GET", "url": ', 400, "parse_error", None),
    ("empty message", "", 400, "parse_error", None),
    ("json array", '[{"method": "GET", "url": "/", "id": 1}]', 400, "invalid_envelope", None),
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
    ("NaN", '{"method": "POST", "url": "/", "data": NaN, "id": 12}', 400, "parse_error", 12),
    ("Infinity", '{"method": "POST", "url": "/", "data": Infinity, "id": "inf"}', 400, "parse_error", "inf"),
    (
        "-Infinity without an id",
        '{"method": "POST", "url": "/", "data": -Infinity}',
        400,
        "parse_error",
        None,
    ),
    (
        "NaN with a boolean id",
        '{"method": "POST", "url": "/", "data": NaN, "id": false}',
        400,
        "parse_error",
        None,
    ),
    (
        "NaN with an id beyond 64 bits",
        '{"method": "POST", "url": "/", "data": NaN, "id": 18446744073709551616}',
        400,
        "parse_error",
        None,
    ),
    ("NaN as the id", '{"method": "GET", "url": "/", "id": NaN}', 400, "parse_error", None),
    ("NaN outside an object", '[NaN, {"id": 1}]', 400, "parse_error", None),
    ("NaN in invalid json", '{"id": 1, "data": NaN, "url": ', 400, "parse_error", None),
    (
        "NaN nested past the parser's limit",
        '{"id": 1, "data": ' + "[" * 3000 + "NaN" + "]" * 3000 + "}",
        400,
        "parse_error",
        None,
    ),
    ("overflowing float", '{"method": "POST", "url": "/", "data": 1e400, "id": 17}', 400, "parse_error", 17),
    ("escaped lone surrogate", '{"method": "GET", "url": "/\\ud800", "id": 20}', 400, "parse_error", 20),
    ("escaped lone surrogate id", '{"method": "GET", "url": "/", "id": "\\udc00"}', 400, "parse_error", None),
    (
        "int beyond 64 bits",
        '{"method": "POST", "url": "/", "data": 18446744073709551616, "id": "big"}',
        400,
        "parse_error",
        "big",
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
        15,
    ),
    (
        "int beyond 64 bits in an extra key",
        '{"method": "GET", "url": "/", "token": 99999999999999999999999, "id": 18}',
        400,
        "parse_error",
        18,
    ),
    (
        "int beyond 64 bits in an extra key, no id",
        '{"method": "GET", "url": "/", "token": 99999999999999999999999}',
        400,
        "parse_error",
        None,
    ),
    (
        "timeout beyond 64 bits",
        '{"method": "GET", "url": "/", "timeout": 99999999999999999999999, "id": 19}',
        400,
        "parse_error",
        19,
    ),
    (
        "invalid envelope with an int beyond 64 bits",
        '{"method": "FETCH", "url": "/", "id": 21, "data": 18446744073709551616}',
        400,
        "parse_error",
        21,
    ),
    (
        "ping with an int beyond 64 bits",
        '{"type": "ping", "id": 22, "n": 18446744073709551616}',
        400,
        "parse_error",
        22,
    ),
    ("cancel id beyond 64 bits", '{"type": "cancel", "id": 18446744073709551616}', 400, "parse_error", None),
    (
        "too deep",
        '{"method": "POST", "url": "/", "id": 13, "data": ' + "[" * 40 + "]" * 40 + "}",
        400,
        "too_deep",
        13,
    ),
    (
        "too deep, id beyond 64 bits",
        '{"method": "POST", "url": "/", "id": 99999999999999999999, "data": ' + "[" * 40 + "]" * 40 + "}",
        400,
        "too_deep",
        None,
    ),
    # A message over the size limit is never decoded (that is what the limit is
    # for), so its id cannot be read.
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
    # (name, message, code, echoed id): as for JSON, the id is echoed whenever
    # the message decoded to an object with a readable id.
    ("truncated", msgpack.packb({"id": 1, "method": "GET", "url": "/"})[:-2], "parse_error", None),
    (
        "non-string key",
        msgpack.packb({1: "x", "method": "GET", "url": "/", "id": 2}, strict_types=False),
        "parse_error",
        2,
    ),
    (
        "binary value",
        msgpack.packb({"method": "GET", "url": "/", "data": b"\x00", "id": "b"}, use_bin_type=True),
        "parse_error",
        "b",
    ),
    (
        "binary id",
        msgpack.packb({"method": "GET", "url": "/", "id": b"b"}, use_bin_type=True),
        "parse_error",
        None,
    ),
    ("NaN", msgpack.packb({"method": "GET", "url": "/", "data": float("nan"), "id": 3}), "parse_error", 3),
    (
        "NaN without an id",
        msgpack.packb({"method": "GET", "url": "/", "data": float("nan")}),
        "parse_error",
        None,
    ),
    ("NaN id", msgpack.packb({"method": "GET", "url": "/", "id": float("nan")}), "parse_error", None),
    (
        "ext type",
        msgpack.packb({"method": "GET", "url": "/", "data": msgpack.ExtType(5, b"x"), "id": 2**64 - 1}),
        "parse_error",
        2**64 - 1,
    ),
    ("invalid utf-8", b"\x82\xa2id\x04\xa3url\xa2/\xff", "parse_error", None),
    ("not a map", msgpack.packb([{"id": 5}, float("inf")]), "parse_error", None),
    (
        "too deep",
        msgpack.packb(
            {
                "method": "GET",
                "url": "/",
                "id": -(2**63),
                "data": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
            }
        ),
        "too_deep",
        -(2**63),
    ),
]


@pytest.mark.parametrize(("name", "message", "code", "echoed"), MSGPACK_BAD, ids=[b[0] for b in MSGPACK_BAD])
def test_bad_msgpack(name: str, message: bytes, code: str, echoed: object) -> None:
    hint = _reject(message, codec=Codec.MSGPACK)
    assert (hint.status, hint.code, hint.id) == (400, code, echoed)


@pytest.mark.parametrize(
    ("message", "codec"),
    [
        ('{"method": "POST", "url": "/", "data": NaN, "id": 1, "event_name": "e"}', Codec.JSON),
        (
            '{"method": "POST", "url": "/", "data": 18446744073709551616, "id": 1, "event_name": "e"}',
            Codec.JSON,
        ),
        ('{"id": 1, "event_name": "e", "data": ' + "[" * 40 + "]" * 40 + "}", Codec.JSON),
        ('{"method": "FETCH", "url": "/", "id": 1, "event_name": "e"}', Codec.JSON),
        (
            msgpack.packb({"method": "GET", "url": "/", "id": 1, "event_name": "e", "data": b""}),
            Codec.MSGPACK,
        ),
    ],
)
def test_event_name_is_echoed_with_the_id(message: str | bytes, codec: Codec) -> None:
    hint = _reject(message, codec=codec)
    assert (hint.id, hint.event_name) == (1, "e")


@pytest.mark.parametrize(
    "event_name",
    ["5", "[1]", "true", '"\\ud800"'],
)
def test_an_unreadable_event_name_is_null(event_name: str) -> None:
    hint = _reject('{"method": "POST", "url": "/", "data": NaN, "id": 1, "event_name": ' + event_name + "}")
    assert (hint.id, hint.event_name) == (1, None)


# -- the echo, property-based -------------------------------------------------------------------

# Text that makes a decoded envelope fail after decoding (or makes orjson refuse
# what the lenient parser still reads), by the code of the reply.
POISONS = {
    "NaN": "parse_error",
    "Infinity": "parse_error",
    "-Infinity": "parse_error",
    "1e400": "parse_error",
    "18446744073709551616": "parse_error",
    "-9223372036854775809": "parse_error",
    '"\\udfff"': "parse_error",
    "[" * 40 + "]" * 40: "too_deep",
}
_PLACEHOLDER = "@@poison@@"

readable_ids = st.one_of(st.text(max_size=20), st.integers(INT_MIN, INT_MAX))
unreadable_ids = st.one_of(
    st.none(),
    st.booleans(),
    st.integers().filter(lambda n: not INT_MIN <= n <= INT_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(0, 9), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(0, 9), max_size=1),
)


def _expected_id(id_: Any) -> Any:
    return id_ if type(id_) is str or (type(id_) is int and INT_MIN <= id_ <= INT_MAX) else None


@st.composite
def _poisoned(draw: st.DrawFn) -> tuple[str, Any, Any]:
    """A JSON text holding one poison somewhere, with its id and event name (possibly unreadable)."""
    envelope: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["request", "cancel", "ping", "auth", "launch"]),
                "method": st.sampled_from(["GET", "post", "SUBSCRIBE", "FETCH"]),
                "url": st.sampled_from(["/", "/user/1", "user"]),
                "token": st.text(max_size=5),
            },
        )
    )
    has_id = draw(st.booleans())
    id_ = draw(readable_ids | unreadable_ids) if has_id else None
    if has_id:
        envelope["id"] = id_
    name = draw(st.none() | st.text(max_size=10) | st.integers(0, 9))
    if name is not None:
        envelope["event_name"] = name
    # Where the poison hides: the body (possibly nested), the args, or an extra key.
    where = draw(st.sampled_from(["data", "nested data", "args", "extra"]))
    if where == "data":
        envelope["data"] = _PLACEHOLDER
    elif where == "nested data":
        envelope["data"] = {"a": [1, {"b": _PLACEHOLDER}]}
    elif where == "args":
        envelope["args"] = {"page": _PLACEHOLDER}
    else:
        envelope["x"] = _PLACEHOLDER
    keys = list(envelope)
    order = draw(st.permutations(keys))
    text = json.dumps({key: envelope[key] for key in order})
    return text, _expected_id(id_), name if type(name) is str else None


@settings(max_examples=400, deadline=None)
@given(case=_poisoned(), poison=st.sampled_from(sorted(POISONS)), as_bytes=st.booleans())
def test_a_refused_message_echoes_whatever_id_could_be_read(
    case: tuple[str, Any, Any], poison: str, as_bytes: bool
) -> None:
    text, expected_id, expected_name = case
    message = text.replace(json.dumps(_PLACEHOLDER), poison)
    hint = _reject(message.encode() if as_bytes else message)
    assert (hint.code, hint.id, hint.event_name) == (POISONS[poison], expected_id, expected_name)


@settings(max_examples=200, deadline=None)
@given(
    # MessagePack cannot carry an integer beyond 64 bits at all.
    id_=readable_ids | unreadable_ids.filter(lambda v: type(v) is not int) | st.binary(max_size=3),
    poison=st.sampled_from(
        [
            float("nan"),
            float("-inf"),
            b"\x00",
            msgpack.ExtType(1, b""),
            [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
        ]
    ),
)
def test_a_refused_msgpack_message_echoes_whatever_id_could_be_read(id_: Any, poison: Any) -> None:
    message = msgpack.packb({"method": "GET", "url": "/", "id": id_, "data": poison}, use_bin_type=True)
    assert _reject(message, codec=Codec.MSGPACK).id == _expected_id(id_)


@settings(max_examples=300, deadline=None)
@given(message=st.text(max_size=60), id_=readable_ids | unreadable_ids)
def test_garbage_after_the_id_gives_a_null_id(message: str, id_: Any) -> None:
    """A text that no JSON parser reads as an object never echoes an id, whatever it holds."""
    text = json.dumps({"id": id_})[:-1] + ", " + message
    conn = Connection(Role.SERVER)
    conn.receive_data(text)
    try:
        conn.next_event()
    except RemoteProtocolError as exc:
        hint = exc.event_hint
        assert hint is not None
        try:
            decoded = json.loads(text)
        except ValueError:
            assert hint.id is None
        else:
            assert hint.id == _expected_id(decoded.get("id") if type(decoded) is dict else None)
        conn.send(hint)


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
