"""The two encodings of an envelope: JSON (text frames) and MessagePack (binary).

Decoding enforces what the codec libraries do not: a nesting limit, 64-bit
integers (orjson silently turns a larger integer into a float), finite numbers
and JSON-shaped values (MessagePack can carry bytes, ext types and non-string
keys, which a JSON peer could not read back). Every failure is a
`DecodeError` naming the reason; `Connection` turns it into a 400 reply.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import math
import re
import uuid
from typing import Any

import orjson

from ._events import INT_MAX, INT_MIN

try:  # MessagePack is an optional extra: `pip install trio-rest-protocol[msgpack]`.
    import msgpack
except ImportError:  # pragma: no cover - exercised only without the extra
    msgpack = None

__all__ = [
    "Codec",
    "DecodeError",
    "check_json_ints",
    "decode",
    "decode_json",
    "encode",
    "msgpack_available",
    "to_plain",
]


class Codec(enum.Enum):
    """How envelopes are encoded on one connection (chosen by subprotocol)."""

    JSON = "trio-rest.json"
    MSGPACK = "trio-rest.msgpack"


def msgpack_available() -> bool:
    """Tell whether the MessagePack codec can be used (the extra is installed)."""
    return msgpack is not None


class DecodeError(Exception):
    """A message could not be decoded into a JSON-shaped value.

    Attributes:
        code: ``"parse_error"`` or ``"too_deep"``.
        detail: the human-readable reason.
        value: what the message decoded to when the failure was found after
            decoding (a nesting too deep, an integer beyond 64 bits, a value
            that is not JSON-shaped), or by the lenient parser that reads a
            JSON text the strict one refused (NaN); None when nothing could be
            decoded. The error reply echoes the id read from it
            (docs/protocol.md §3).
    """

    def __init__(self, detail: str, code: str = "parse_error", value: Any = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.value = value


# An integer literal of 19 or more digits may be out of 64-bit range (the
# smallest overflow, -9223372036854775809, has 19). The pattern also matches
# digits inside strings, so a match only triggers the exact (slow) check; an
# envelope without such a run never pays for it.
_LONG_INT_TEXT = re.compile(r"[0-9]{19}")
_LONG_INT_BYTES = re.compile(rb"[0-9]{19}")


def _reject_big_int(literal: str) -> int:
    value = int(literal)
    if not INT_MIN <= value <= INT_MAX:
        raise DecodeError("Integers must fit in 64 bits.")
    return value


def check_json_ints(message: str | bytes, value: Any = None) -> None:
    """Raise `DecodeError` if a JSON message holds an integer beyond 64 bits.

    `decode_json(..., check_ints=False)` leaves this check to its caller, for
    a caller that can tell from the decoded value that no number could hide
    one (docs/protocol.md §2).

    Args:
        message: the JSON message.
        value: what orjson decoded it to, carried by the `DecodeError`.
    """
    pattern: Any = _LONG_INT_TEXT if isinstance(message, str) else _LONG_INT_BYTES
    if pattern.search(message) is None:
        return
    # The stdlib parser hands every integer literal (and only those) to
    # parse_int, so this finds exactly the literals orjson turned into floats.
    try:
        json.loads(message, parse_int=_reject_big_int)
    except DecodeError as exc:
        exc.value = value
        raise


def _small_int(literal: str) -> int | None:
    # An id is at most 20 digits and a sign; a longer literal is no id, and
    # int() of one past 4300 digits would raise (sys.get_int_max_str_digits).
    return int(literal) if len(literal) <= 21 else None


def _json_error(message: str | bytes, exc: orjson.JSONDecodeError) -> DecodeError:
    """Explain why orjson refused a message, with what a lenient parser reads of it.

    The stdlib parser accepts what orjson rightly refuses (NaN, Infinity, a
    float that overflows, an escaped lone surrogate), so a message refused
    only for one of those still yields the id to echo (docs/protocol.md §3).
    This runs on the error path only.
    """
    if isinstance(message, bytes):
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError:
            return DecodeError("The message is not valid UTF-8.")
    else:
        text = message
    reason = str(exc)
    constants: list[str] = []

    def constant(name: str) -> None:
        constants.append(name)

    try:
        # The C scanner recurses: a message nested past orjson's own limit
        # may hit the recursion limit here, and then nothing can be read.
        value = json.loads(text, parse_int=_small_int, parse_constant=constant)
    except (ValueError, RecursionError):
        value = None
    if "surrogates" in reason:
        return DecodeError("The message is not valid UTF-8.", value=value)
    if constants or "infinity" in reason:
        return DecodeError("Numbers must be finite.", value=value)
    return DecodeError(f"The message is not valid JSON: {reason}.", value=value)


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Tell whether containers nest deeper than `limit` (the envelope is depth 1)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if type(item) is dict:
            stack.extend((child, depth + 1) for child in item.values() if type(child) in (dict, list))
        elif type(item) is list:
            stack.extend((child, depth + 1) for child in item if type(child) in (dict, list))
    return False


def decode_json(message: str | bytes, max_depth: int, *, check_ints: bool = True) -> Any:
    """Decode a JSON message; see `decode`. `check_ints=False` skips `check_json_ints`."""
    try:
        value = orjson.loads(message)
    except orjson.JSONDecodeError as exc:
        raise _json_error(message, exc) from None
    # Counting brackets (strings included) is a cheap upper bound of the depth:
    # only a message that could be too deep is walked.
    if isinstance(message, str):
        brackets = message.count("{") + message.count("[")
    else:
        brackets = message.count(b"{") + message.count(b"[")
    if brackets > max_depth and _depth_exceeds(value, max_depth):
        raise DecodeError(f"The message nests deeper than {max_depth} levels.", "too_deep", value)
    if check_ints:
        check_json_ints(message, value)
    return value


def _check_msgpack_value(value: Any, max_depth: int) -> None:
    """Walk a MessagePack value: depth, finite floats, JSON-shaped types only."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        cls = type(item)
        if cls is dict or cls is list:
            if depth > max_depth:
                raise DecodeError(f"The message nests deeper than {max_depth} levels.", "too_deep")
            if cls is dict:
                if any(type(key) is not str for key in item):
                    raise DecodeError("Map keys must be strings.")
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
        elif cls is float:
            if not math.isfinite(item):
                raise DecodeError("Numbers must be finite.")
        elif cls not in (str, int, bool) and item is not None:
            raise DecodeError(f"MessagePack values must be JSON-shaped; got {cls.__name__}.")


def _decode_msgpack(message: bytes, max_depth: int) -> Any:
    assert msgpack is not None  # Connection refuses the codec without the extra
    try:
        value = msgpack.unpackb(message, raw=False, strict_map_key=False, timestamp=0)
    except ValueError as exc:  # includes invalid UTF-8 in a str (UnicodeDecodeError)
        if isinstance(exc, UnicodeDecodeError):
            raise DecodeError("The message is not valid UTF-8.") from None
        raise DecodeError(f"The message is not valid MessagePack: {exc}.") from None
    except Exception as exc:  # msgpack's own errors share no base but Exception
        raise DecodeError(f"The message is not valid MessagePack: {type(exc).__name__}.") from None
    try:
        _check_msgpack_value(value, max_depth)
    except DecodeError as exc:
        exc.value = value
        raise
    return value


def decode(message: str | bytes, codec: Codec, max_depth: int) -> Any:
    """Decode one WebSocket message into a JSON-shaped value.

    A text message is always JSON; a binary message is JSON or MessagePack,
    as the connection's codec says.

    Args:
        message: the complete message.
        codec: the connection's codec.
        max_depth: the deepest container nesting allowed (the envelope is 1).

    Returns:
        The decoded value (not yet checked to be an envelope).

    Raises:
        DecodeError: for anything that is not a valid, bounded value.
    """
    if codec is Codec.MSGPACK and isinstance(message, bytes):
        return _decode_msgpack(message, max_depth)
    return decode_json(message, max_depth)


def to_plain(value: Any) -> Any:
    """Encode the types a view commonly returns and a codec does not know."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def encode(obj: dict[str, Any], codec: Codec) -> str | bytes:
    """Encode an envelope for the wire.

    Args:
        obj: the envelope as a dict.
        codec: the connection's codec.

    Returns:
        A str (a text frame) for JSON, bytes (a binary frame) for MessagePack.

    Raises:
        TypeError: a value cannot be encoded (the event is not sent).
    """
    if codec is Codec.JSON:
        return orjson.dumps(obj, default=to_plain).decode()
    assert msgpack is not None
    return msgpack.packb(obj, use_bin_type=True, default=to_plain)  # type: ignore[no-any-return]
