"""Route templates: their syntax, parsing, and the converters of their parameters.

A template is an absolute path whose segments are literal text or a whole-segment
parameter: ``{name}`` (any non-empty segment, as ``str``), ``{name:int}``
(ASCII digits, as ``int``), ``{name:uuid}`` (the canonical 8-4-4-4-12 form in
either case, as `uuid.UUID`) or ``{name:path}`` (the non-empty rest of the path,
slashes included; last segment only). One trailing slash is ignored on both
templates and request paths, so ``/user/list`` and ``/user/list/`` are one route
(docs/protocol.md, "Client to server": ``url``).

``int`` accepts only what fits a signed 64-bit integer, 0 to 2**63 - 1 (leading
zeros allowed): that is the widest integer column SQL databases have, so a
larger number could name no row. It does not match, like any other segment the
converter refuses, so ``/user/99999999999999999999`` on ``/user/{id:int}`` is a
404, never a database error.

A converter turns one segment into a value, or refuses it (None); `format_path`
goes the other way, for `SimpleRouter.reverse`. Matching a request path against
the parsed templates is the router's job (`_routing`).
"""

from __future__ import annotations

import keyword
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import quote

import attrs

from ._errors import ConfigurationError, NoReverseMatchError

__all__ = [
    "INT_DIGITS",
    "INT_MAX",
    "Part",
    "format_path",
    "parse_template",
    "to_int",
    "to_uuid",
]

_UUID_RE: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Characters RFC 3986 allows unescaped in a path segment besides the ones
# `quote` always keeps; leaving them readable makes reversed URLs prettier.
_SEGMENT_SAFE: Final = "!$&'()*+,;=:@"
# The largest value of the int converter: a signed 64-bit integer, the widest
# integer column SQL databases have. A larger id names no row, and passing it
# to the database would fail (an OverflowError, a 500) instead of a 404.
INT_MAX: Final = 2**63 - 1
# Digits of INT_MAX: a segment longer than this (leading zeros aside) is out
# of range without converting it.
INT_DIGITS: Final = 19


def to_int(text: str) -> int | None:
    """Convert an ``int`` segment: ASCII digits up to `INT_MAX`, or None when refused."""
    # isdigit() alone accepts non-ASCII digits such as "²", which int() rejects.
    if not (text.isdigit() and text.isascii()):
        return None
    if len(text) > INT_DIGITS:
        text = text.lstrip("0") or "0"
        if len(text) > INT_DIGITS:
            return None
    value = int(text)
    return value if value <= INT_MAX else None


def to_uuid(text: str) -> uuid.UUID | None:
    """Convert a ``uuid`` segment in the canonical 8-4-4-4-12 form, or None when refused."""
    if len(text) != 36 or _UUID_RE.fullmatch(text) is None:
        return None
    return uuid.UUID(text)


def _to_str(text: str) -> str | None:
    return text or None


_CONVERTERS: Final[dict[str, Callable[[str], Any]]] = {
    "int": to_int,
    "uuid": to_uuid,
    "str": _to_str,
}


@attrs.frozen
class Part:
    """One template segment: ``kind`` is "static" (``text`` is the literal) or a converter."""

    kind: str
    text: str


def _parse_segment(template: str, seg: str) -> Part:
    if not (seg.startswith("{") and seg.endswith("}")):
        if "{" in seg or "}" in seg:
            raise ConfigurationError(f"route {template!r}: a parameter must be a whole segment, not {seg!r}")
        return Part("static", seg)
    name, sep, converter = seg[1:-1].partition(":")
    if not sep:
        converter = "str"
    # Parameters become keyword arguments of the view, hence identifiers.
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ConfigurationError(f"route {template!r}: bad parameter name in {seg!r}")
    if converter not in ("str", "int", "uuid", "path"):
        raise ConfigurationError(f"route {template!r}: unknown converter {converter!r}")
    return Part(converter, name)


def parse_template(template: str) -> tuple[Part, ...]:
    """Split a template into parts; a trailing slash is dropped.

    Raises:
        ConfigurationError: if the template is malformed.
    """
    if not isinstance(template, str) or not template.startswith("/"):
        raise ConfigurationError(f"route template must start with '/': {template!r}")
    if "//" in template or "?" in template or "#" in template:
        raise ConfigurationError(f"route {template!r}: empty segments, '?' and '#' are not allowed")
    body = template[1:].removesuffix("/")
    if not body:
        return ()
    segments = body.split("/")
    parts = tuple(_parse_segment(template, seg) for seg in segments)
    names = [part.text for part in parts if part.kind != "static"]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"route {template!r}: duplicate parameter names")
    if any(part.kind == "path" for part in parts[:-1]):
        raise ConfigurationError(f"route {template!r}: a path parameter must be the last segment")
    return parts


def _format_value(part: Part, value: Any) -> str:
    """Write one parameter value as a URL segment (or segments, for `path`).

    Raises:
        NoReverseMatchError: if the value does not fit the converter.
    """
    text = str(value)
    if part.kind == "path":
        if not text:
            raise NoReverseMatchError(f"parameter {part.text!r} must not be empty")
        if text.endswith("/"):
            # A literal trailing slash would be dropped as the route's optional
            # one; escaping it keeps reverse -> resolve a round trip.
            return quote(text[:-1], safe=_SEGMENT_SAFE + "/") + "%2F"
        return quote(text, safe=_SEGMENT_SAFE + "/")
    if _CONVERTERS[part.kind](text) is None:
        raise NoReverseMatchError(f"parameter {part.text!r}: {value!r} is not a valid {part.kind} segment")
    return quote(text, safe=_SEGMENT_SAFE)


def format_path(parts: tuple[Part, ...], params: Mapping[str, Any], *, trailing_slash: bool) -> str:
    """Write a parsed template back as a URL path, with one value per parameter.

    Args:
        parts: the template, as `parse_template` returns it.
        params: parameter name -> value, for every parameter of `parts`.
        trailing_slash: whether the template was registered with a trailing slash.

    Returns:
        The URL path, e.g. ``"/user/6"``; it resolves back to the same values.

    Raises:
        NoReverseMatchError: if a value does not fit its converter.
    """
    pieces = [
        quote(part.text, safe=_SEGMENT_SAFE)
        if part.kind == "static"
        else _format_value(part, params[part.text])
        for part in parts
    ]
    url = "/" + "/".join(pieces)
    return url + "/" if trailing_slash and pieces else url
