"""permessage-deflate (RFC 7692): what the server allows, and what it agrees with one client.

The compression itself is the engines' libraries' (websockets' ``PerMessageDeflate``,
wsproto's ``PerMessageDeflate``, both on zlib); this module holds what both engines share:

- ``DeflateOptions``: what the server allows, from ``Settings`` (off unless
  ``permessage_deflate`` is set; see docs/server.md for why).
- ``DeflateParameters``: the parameters agreed with one client, as the
  ``Sec-WebSocket-Extensions`` response header states them (RFC 7692 section 7.1).
- ``parse_extensions``: the request header's grammar (RFC 6455 section 9.1), for the
  wsproto engine, whose library has no parser for it (it splits on commas).
- ``negotiate``: the answer to a client's offers (RFC 7692 section 7.1), for the wsproto
  engine; the websockets engine leaves it to ``ServerPerMessageDeflateFactory``, and the
  tests check that both agree.

Rules the negotiation keeps, whatever the client offers:

- the server's LZ77 window is at most ``2 ** max_window_bits`` bytes, and so is the
  client's whenever the client lets the server choose (``client_max_window_bits`` in its
  offer; without it the client may use 32 KiB, which inflating then needs);
- without ``context_takeover`` both directions reset their context after each message
  (``server_no_context_takeover`` and ``client_no_context_takeover``), so no zlib state
  outlives a message, and what one message holds never shapes how another compresses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import attrs

__all__ = [
    "DEFLATE",
    "DeflateOptions",
    "DeflateParameters",
    "ExtensionOffer",
    "is_window_bits",
    "negotiate",
    "parse_extensions",
]

#: The extension's registered name.
DEFLATE = "permessage-deflate"

# RFC 7692 section 7.1.2: window sizes are 2**8 to 2**15 bytes. zlib cannot compress with
# a 256-byte raw window (it refuses wbits=-8), so the server's own window starts at 9.
_WINDOW_BITS = {str(bits): bits for bits in range(8, 16)}
_MIN_SERVER_BITS = 9


def is_window_bits(value: Any) -> bool:
    """Whether `value` can be the server's window size in bits: an integer from 9 to 15."""
    return not isinstance(value, bool) and isinstance(value, int) and _MIN_SERVER_BITS <= value <= 15


def _window_bits(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not is_window_bits(value):
        raise ValueError(f"{attribute.name} must be an integer from 9 to 15, not {value!r}")


def _positive_int(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive integer, not {value!r}")


@attrs.frozen(kw_only=True)
class DeflateOptions:
    """What the server allows of permessage-deflate; pass one to ``make_engine`` to allow it.

    Args:
        max_window_bits: The largest LZ77 window, as a power of two (9 to 15): the
            server's always, the client's when its offer lets the server choose.
            zlib's compressing context costs about ``2 ** (bits + 2)`` bytes plus its
            hash tables, the inflating one ``2 ** bits`` plus about 7 KiB.
        context_takeover: Keep each direction's compression context from one message to
            the next (better ratios on small, similar messages; the contexts then live as
            long as the connection). Off: both reset after every message.
        min_size: Outgoing messages shorter than this many bytes are sent uncompressed
            (RFC 7692 lets each message choose): on a short envelope the CPU spent
            outweighs the bytes saved.

    Raises:
        ValueError: When a value is out of its range.
    """

    max_window_bits: int = attrs.field(default=12, validator=_window_bits)
    context_takeover: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    min_size: int = attrs.field(default=256, validator=_positive_int)


@attrs.frozen(kw_only=True)
class DeflateParameters:
    """The permessage-deflate parameters agreed with one client (RFC 7692 section 7.1).

    Args:
        server_no_context_takeover: The server resets its compressor after each message.
        client_no_context_takeover: The client resets its compressor after each message.
        server_max_window_bits: The server's window size in bits, or None (15).
        client_max_window_bits: The client's window size in bits, or None: the server
            did not limit it (up to 15).
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None

    def header(self) -> str:
        """Return the ``Sec-WebSocket-Extensions`` value that states these parameters.

        Returns:
            ``"permessage-deflate"`` followed by each parameter, ``"; "``-separated.
        """
        parts = [DEFLATE]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is not None:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)

    @classmethod
    def from_header(cls, value: str) -> DeflateParameters | None:
        """Read the parameters back from a ``Sec-WebSocket-Extensions`` response value.

        Args:
            value: The header value a server answered.

        Returns:
            The parameters, or None when the value accepts no valid permessage-deflate.

        Raises:
            ValueError: When the value is malformed.
        """
        for offer in parse_extensions(value):
            if offer.name == DEFLATE:
                return _read_parameters(offer.params, response=True)
        return None


@attrs.frozen
class ExtensionOffer:
    """One extension of a ``Sec-WebSocket-Extensions`` header, with its parameters.

    Args:
        name: The extension's name (a token, as sent).
        params: ``(name, value)`` pairs in order; ``value`` is None for a bare parameter,
            and a quoted-string value is unquoted.
    """

    name: str
    params: tuple[tuple[str, str | None], ...]


# RFC 6455 section 9.1: extension-list = 1#extension; extension = token *( ";" param );
# param = token [ "=" ( token | quoted-string ) ]. Optional whitespace around separators.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = re.compile(rf"[ \t]*;[ \t]*({_TOKEN})(?:[ \t]*=[ \t]*({_TOKEN}|{_QUOTED}))?")
_NAME = re.compile(rf"[ \t]*({_TOKEN})")
_SEPARATOR = re.compile(r"[ \t]*(?:,|$)")


def parse_extensions(value: str) -> list[ExtensionOffer]:
    """Parse a ``Sec-WebSocket-Extensions`` value (RFC 6455 section 9.1).

    Args:
        value: The header's value (several headers joined with ``", "``).

    Returns:
        The extensions in order; empty list elements are skipped (RFC 9110 section 5.6.1).

    Raises:
        ValueError: When the value does not follow the grammar.
    """
    offers: list[ExtensionOffer] = []
    pos, end = 0, len(value)
    while pos < end:
        separator = _SEPARATOR.match(value, pos)
        if separator is not None and separator.end() > pos:  # an empty element
            pos = separator.end()
            continue
        name = _NAME.match(value, pos)
        if name is None:
            raise ValueError(f"invalid Sec-WebSocket-Extensions {value!r}")
        pos = name.end()
        params: list[tuple[str, str | None]] = []
        while (param := _PARAM.match(value, pos)) is not None:
            raw = param.group(2)
            if raw is not None and raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                if not re.fullmatch(_TOKEN, raw):  # RFC 6455 9.1: unquoted, it is a token
                    raise ValueError(f"invalid Sec-WebSocket-Extensions {value!r}")
            params.append((param.group(1), raw))
            pos = param.end()
        separator = _SEPARATOR.match(value, pos)
        if separator is None:
            raise ValueError(f"invalid Sec-WebSocket-Extensions {value!r}")
        pos = separator.end()
        offers.append(ExtensionOffer(name.group(1), tuple(params)))
    return offers


class _Decline(ValueError):
    """An offer the server cannot accept: try the next one."""


def _read_parameters(params: Sequence[tuple[str, str | None]], *, response: bool) -> DeflateParameters:
    """Check a permessage-deflate parameter list (RFC 7692 section 7): known names, once each.

    In an offer (``response=False``) a bare ``client_max_window_bits`` means "the server
    may choose", recorded as 0.
    """
    seen: dict[str, int | None] = {}
    for name, value in params:
        if name in seen:
            raise _Decline(f"duplicate {name}")
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise _Decline(f"{name} takes no value")
            seen[name] = None
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            if value is None and name == "client_max_window_bits" and not response:
                seen[name] = 0
            elif value is not None and value in _WINDOW_BITS:
                seen[name] = _WINDOW_BITS[value]
            else:
                raise _Decline(f"invalid {name} {value!r}")
        else:
            raise _Decline(f"unknown parameter {name}")
    return DeflateParameters(
        server_no_context_takeover="server_no_context_takeover" in seen,
        client_no_context_takeover="client_no_context_takeover" in seen,
        server_max_window_bits=seen.get("server_max_window_bits"),
        client_max_window_bits=seen.get("client_max_window_bits"),
    )


def negotiate(offers: Sequence[ExtensionOffer], options: DeflateOptions) -> DeflateParameters | None:
    """Answer a client's extension offers: the parameters of the first acceptable deflate offer.

    RFC 7692 section 7.1: an offer with an unknown parameter, a duplicate or a bad value is
    declined (the next one is tried); the server may always reset its own context and ask
    the client to reset its one, may shrink the windows the client names, and names its
    own window. An offer that limits the server's window to 256 bytes is declined: zlib
    cannot compress with so small a window.

    Args:
        offers: The parsed ``Sec-WebSocket-Extensions`` of the request.
        options: What the server allows.

    Returns:
        The agreed parameters, or None when no offer is acceptable.
    """
    bits = options.max_window_bits
    for offer in offers:
        if offer.name != DEFLATE:
            continue
        try:
            asked = _read_parameters(offer.params, response=False)
        except _Decline:
            continue
        server_bits = min(asked.server_max_window_bits or 15, bits)
        if server_bits < _MIN_SERVER_BITS:
            continue
        client_bits = asked.client_max_window_bits
        if client_bits is not None:  # 0: the client lets the server choose
            client_bits = min(client_bits, bits) if client_bits else bits
        return DeflateParameters(
            server_no_context_takeover=asked.server_no_context_takeover or not options.context_takeover,
            client_no_context_takeover=asked.client_no_context_takeover or not options.context_takeover,
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
        )
    return None
