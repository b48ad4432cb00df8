"""MessagePack test vectors for the JavaScript client's codec, made by Python's ``msgpack``.

``python tests/js/msgpack_vectors.py`` prints one JSON document:

- ``valid``: ``{"name", "hex", "value", "same"}`` for values at every format boundary, where
  ``hex`` is what ``msgpack.packb`` writes for them (as the server does: ``use_bin_type=True``),
  ``value`` the value in a tagged JSON form (below), and ``same`` whether the JavaScript encoder
  must write exactly these bytes for the value the JavaScript decoder reads back (not for floats
  that hold an integer, which JavaScript cannot tell from integers, float 32 and timestamps).
- ``invalid``: ``{"name", "hex", "error"}``, input the decoder must refuse, and a pattern of
  its error.

Tagged values: ``{"int": "decimal"}``, ``{"float": "repr"}``, ``{"bin": "hex"}``,
``{"array": [...]}``, ``{"map": [[key, value], ...]}``, ``{"timestamp": [seconds, nanoseconds]}``;
null, booleans and strings stand for themselves.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import msgpack


def tag(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"float": "NaN"}
        if math.isinf(value):
            return {"float": "Infinity" if value > 0 else "-Infinity"}
        return {"float": repr(value)}
    if isinstance(value, bytes):
        return {"bin": value.hex()}
    if isinstance(value, list):
        return {"array": [tag(item) for item in value]}
    if isinstance(value, dict):
        return {"map": [[tag(key), tag(item)] for key, item in value.items()]}
    if isinstance(value, msgpack.Timestamp):
        return {"timestamp": [value.seconds, value.nanoseconds]}
    raise TypeError(type(value))


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def float32(x: float) -> tuple[bytes, float]:
    """What msgpack writes for `x` as a float 32, and the float it reads back."""
    data = msgpack.packb(x, use_single_float=True)
    return data, msgpack.unpackb(data)


def same_in_javascript(x: float) -> bool:
    """Whether the JavaScript encoder writes this float as a float 64 (not an integer)."""
    return not (x.is_integer() and abs(x) < 2**53) or math.copysign(1.0, x) < 0


def valid() -> list[dict[str, Any]]:
    cases: list[tuple[str, Any, bool]] = [
        ("nil", None, True),
        ("false", False, True),
        ("true", True, True),
    ]
    # Integers: both sides of every boundary between formats, up to the 64-bit limits.
    edges = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32]
    edges += [2**53 - 1, 2**53, 2**53 + 1, 2**63, 2**64 - 1]
    edges += [-1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1]
    edges += [-(2**53) + 1, -(2**53), -(2**63)]
    cases += [(f"int {n}", n, True) for n in edges]
    floats = [0.5, -1.5, 1e300, -2.5e-308, 5e-324, math.inf, -math.inf, math.nan, 2.0**53 + 2, 1.0, 0.0, -0.0]
    cases += [(f"float 64 {x!r}", x, same_in_javascript(x)) for x in floats]
    # Strings: lengths at every header boundary (fixstr < 32, str 8 < 256, str 16 < 65536, str 32).
    for length in (0, 31, 32, 255, 256, 65535, 65536):
        cases.append((f"str of {length} bytes", "s" * length, True))
    cases += [
        ("str, two-byte UTF-8", "é" * 16, True),  # 16 characters, 32 bytes: str 8
        ("str, astral characters", "😀 ok 𝄞", True),
        ("str, a leading byte-order mark is kept", "\ufeffx", True),
        ("str, NUL", "a\x00b", True),
    ]
    for length in (0, 1, 255, 256, 65535, 65536):
        cases.append(
            (f"bin of {length} bytes", bytes(range(256)) * (length // 256) + bytes(length % 256), True)
        )
    for count in (0, 15, 16, 65535, 65536):
        cases.append((f"array of {count}", list(range(count)), True))
        cases.append((f"map of {count}", {f"k{i}": i for i in range(count)}, True))
    cases += [
        ("nested", {"a": [1, {"b": [None, True, "x", 1.5]}], "c": {}, "d": []}, True),
        (
            "an envelope",
            {"type": "response", "id": 17, "status": 200, "data": {"id": 6}, "event_name": None},
            True,
        ),
    ]
    cases += [
        (f"timestamp {seconds}.{nanoseconds:09d}", msgpack.Timestamp(seconds, nanoseconds), False)
        for seconds, nanoseconds in [
            (0, 0),  # timestamp 32
            (2**32 - 1, 0),  # timestamp 32, its largest
            (1, 999_999_999),  # timestamp 64
            (2**34 - 1, 5_000_000),  # timestamp 64, its largest seconds
            (-1, 500_000_000),  # timestamp 96
            (8_640_000_000_000, 0),  # timestamp 96: the last second a Date holds
        ]
    ]
    vectors = [
        {"name": name, "hex": pack(value).hex(), "value": tag(value), "same": same}
        for name, value, same in cases
    ]
    # Bytes that packb does not write for any one value.
    for x in (0.25, -3.0, 0.1, math.inf):
        data, read = float32(x)
        vectors.append({"name": f"float 32 {x!r}", "hex": data.hex(), "value": tag(read), "same": False})
    header = pack({"a": 0, "b": 0})[:1]  # a fixmap of two entries
    duplicate = header + pack("k") + pack(1) + pack("k") + pack(2)
    vectors.append(
        {
            "name": "a duplicate key: the later wins",
            "hex": duplicate.hex(),
            "value": tag({"k": 2}),
            "same": False,
        }
    )
    return vectors


def invalid() -> list[dict[str, Any]]:
    # 100,000 arrays, each the only item of the one around it: a decoder that recursed without a
    # limit would overflow its stack.
    deep = pack([None])[:1] * 100_000 + pack(None)
    # The format bytes of the 32-bit headers, as msgpack writes them.
    str32 = pack("s" * 65536)[0]
    bin32 = pack(b"b" * 65536)[0]
    array32 = pack([0] * 65536)[0]
    map32 = pack({str(i): 0 for i in range(65536)})[0]
    # ExtType refuses the timestamp's type (-1): take it, and the headers, from what msgpack writes.
    timestamp_type = pack(msgpack.Timestamp(0, 0))[1]
    fixext2 = pack(msgpack.ExtType(5, b"xx"))[0]
    timestamp96 = pack(msgpack.Timestamp(-1, 0))[:3]  # ext 8, 12 bytes, type -1
    cases = [
        ("empty", b"", "truncated"),
        ("a truncated int 64", pack(2**63)[:-1], "truncated"),
        ("a truncated float 64", pack(0.5)[:-1], "truncated"),
        ("a truncated str", pack("hello")[:-1], "truncated"),
        ("a truncated str 16 header", pack("s" * 300)[:2], "truncated"),
        ("a truncated array", pack([1, 2, 3])[:-1], "truncated"),
        ("a truncated map", pack({"a": 1})[:-1], "truncated"),
        # A 5-byte header that claims 4 GiB: refused from the header, nothing allocated.
        (
            "a str 32 of 2^32 - 1 bytes, none there",
            struct.pack(">BI", str32, 2**32 - 1),
            "a string at byte 5 needs 4294967295 bytes, 0 remain",
        ),
        (
            "a bin 32 of 2^32 - 1 bytes, none there",
            struct.pack(">BI", bin32, 2**32 - 1),
            "a byte array at byte 5 needs 4294967295 bytes, 0 remain",
        ),
        (
            "an array 32 of 2^32 - 1 items, none there",
            struct.pack(">BI", array32, 2**32 - 1),
            "an array of 4294967295 items, 0 bytes remain",
        ),
        (
            "a map 32 of 2^32 - 1 entries, none there",
            struct.pack(">BI", map32, 2**32 - 1),
            "a map of 4294967295 entries, 0 bytes remain",
        ),
        # 16 entries need 32 bytes at least: refused although 16 bytes follow.
        (
            "a map 16 of 16 entries, 16 bytes there",
            pack({str(i): 0 for i in range(16)})[:3] + bytes(16),
            "a map of 16 entries, 16 bytes remain",
        ),
        ("two values", pack(1) + pack(2), "follow the value"),
        ("an int key", pack({1: "one"}), "map keys must be strings"),
        ("a nil key", pack({None: 1}), "map keys must be strings"),
        ("a bin key", pack({b"k": 1}), "map keys must be strings"),
        ("invalid UTF-8 in a str", msgpack.packb(b"\xff", use_bin_type=False), "not valid UTF-8"),
        (
            "a lone surrogate in a str",
            msgpack.packb("\ud800".encode("utf-8", "surrogatepass"), use_bin_type=False),
            "not valid UTF-8",
        ),
        ("an unknown extension", pack(msgpack.ExtType(5, b"x")), "extension type 5"),
        ("a timestamp of 2 bytes", bytes([fixext2, timestamp_type]) + b"xx", "timestamp of 2 bytes"),
        ("a timestamp beyond a Date", pack(msgpack.Timestamp(8_640_000_000_001, 0)), "beyond the range"),
        ("a timestamp with a billion nanoseconds", timestamp96 + struct.pack(">Iq", 10**9, 0), "nanoseconds"),
        ("the format byte 0xc1, which the spec never uses", bytes([0xC1]), "no MessagePack format"),
        ("100,000 levels deep", deep, "nests deeper than 512"),
    ]
    vectors: list[dict[str, Any]] = [
        {"name": name, "hex": data.hex(), "error": error} for name, data, error in cases
    ]
    # Six levels, the sixth empty: refused by maxDepth 5, read with 6.
    vectors.append(
        {
            "name": "deeper than maxDepth 5",
            "hex": pack([[[[[[]]]]]]).hex(),
            "error": "nests deeper than 5",
            "maxDepth": 5,
        }
    )
    return vectors


if __name__ == "__main__":
    print(json.dumps({"valid": valid(), "invalid": invalid()}))
