"""`Settings`: every limit and timing of a server, each with a documented default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from ._admission import origin_key
from ._deflate import is_window_bits
from ._engine import DEFAULT_ENGINE, ENGINE_NAMES
from ._errors import ConfigurationError
from ._http import DEFAULT_MAX_HEAD_SIZE

__all__ = ["Settings"]


# The limits None turns off (documented as such).
_NULLABLE = frozenset({"request_timeout", "rate_limit", "rate_limit_per_address", "rate_limit_per_user"})


def _positive(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None and attribute.name in _NULLABLE:  # None: no limit
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"Settings.{attribute.name} must be positive, not {value!r}")


def _positive_int(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"Settings.{attribute.name} must be a positive integer, not {value!r}")


def _switch(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"Settings.{attribute.name} must be True or False, not {value!r}")


def _window_bits(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    # RFC 7692 section 7.1.2 allows 8 to 15; zlib cannot compress with 8.
    if not is_window_bits(value):
        raise ConfigurationError(f"Settings.{attribute.name} must be an integer from 9 to 15, not {value!r}")


def _origins(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    for origin in value or ():
        if not isinstance(origin, str) or origin_key(origin) is None:
            raise ConfigurationError(
                f"Settings.allowed_origins: {origin!r} is not an origin like 'https://app.example'"
            )


_OVERFLOW = ("disconnect", "drop_oldest")


def _one_of(attribute: attrs.Attribute[Any], value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigurationError(f"Settings.{attribute.name} must be one of {allowed}, not {value!r}")


@attrs.frozen(kw_only=True)
class Settings:
    """The limits and timings of a server; pass one to `App`.

    Every limit has a default chosen for a public API server on a small
    machine; each is explained below.

    Attributes:
        engine: the WebSocket engine, ``"websockets"`` (default, the faster)
            or ``"wsproto"``.
        max_message_size: largest envelope, in bytes, that gets parsed (1 MiB:
            far above a REST body); a larger one gets a 413 reply.
        max_frame_size: largest WebSocket message the transport accepts
            (4 MiB); beyond it the socket is closed with 1009. Between the two,
            a message is read and refused with a 413, so an honest client
            learns what went wrong. A compressed message counts its inflated
            size, and inflating stops at this limit (a deflate bomb is a 1009).
        permessage_deflate: accept the permessage-deflate compression (RFC
            7692) a client offers (False). Off by default: compressing costs CPU
            on every message and zlib memory on every connection, and
            compressing what an attacker can influence next to a secret in one
            context leaks the secret through sizes (CRIME, BREACH). Turn it on
            for clients on slow links that receive large, repetitive replies.
        deflate_window_bits: the largest LZ77 window, as a power of two, for the
            server's compression and, when the client lets the server choose, for
            the client's (12: 4 KiB; from 9 to 15). A compressing context then
            costs about 36 KiB, an inflating one about 11 KiB (39 KiB when the
            client keeps its own 32 KiB window).
        deflate_context_takeover: keep each direction's compression context from
            one message to the next (False). Off, both reset after every message:
            no zlib memory outlives a message and no message's content shapes how
            another compresses; on, small similar messages compress much better,
            and each connection keeps its contexts (see `deflate_window_bits`).
        deflate_min_size: outgoing messages shorter than this many bytes are
            sent uncompressed (256): on a short envelope the CPU outweighs the
            bytes saved.
        max_depth: deepest nesting of an envelope (32).
        max_in_flight: requests a connection may have unanswered, running or
            waiting (256): beyond it the server stops reading that socket, so
            a pipelining client is slowed down by TCP, never refused.
        max_concurrency: handlers of one connection that run at once (32);
            the others wait in arrival order.
        max_subscriptions: active subscriptions per connection (64); more get
            a 429.
        max_buffered_bytes: bytes of requests one connection may hold, waiting
            or running (4 MiB): past it the server stops reading that socket
            until some finish, as for `max_in_flight`, so a client pipelining
            large bodies is slowed down by TCP instead of filling memory.
        max_server_buffered_bytes: bytes of requests the whole server may hold
            (64 MiB); a request that would pass it is refused with 503
            (code ``"busy"``), so many connections at their own bound still
            fit in a small machine's memory.
        max_outbound_bytes: replies and notifications queued for a client that
            does not read (4 MiB); past it `notification_overflow` decides, so the
            client cannot grow the server's memory or stall the others.
        notification_overflow: what happens when a client's queue passes
            `max_outbound_bytes`: ``"disconnect"`` (the default) closes it with
            1008; ``"drop_oldest"`` drops its oldest queued notifications (never a
            reply, nor a subscription's final notification) until a quarter of the
            queue is free, and sends it, before the newer ones, a notification with
            event name ``"missed"`` and data ``{"count": N}`` (subscriptions' ``seq``
            then show which were missed). Replies alone past the limit still close
            the connection with 1008.
        request_timeout: seconds a handler may run when the request names no
            ``timeout`` (60; None for no limit); past it the reply is 504.
        max_request_timeout: the largest ``timeout`` a client may ask for
            (300); larger values are lowered to it.
        ping_interval: seconds of silence from a client before the server
            pings it (20).
        ping_timeout: seconds the server waits for anything after a ping
            before closing the connection as dead (20). Both are checked every
            quarter of the shorter of the two, so each acts up to a quarter late.
        handshake_timeout: seconds a new connection has to complete its HTTP
            handshake (10), against slow-loris clients.
        auth_timeout: with ``App(require_auth=True)``, seconds a connection without
            credentials in its handshake has to send an accepted ``auth`` message
            (10); past it, or at a request sent before it, the connection is closed
            with 1008.
        close_timeout: seconds to wait for the client's answer to our close
            frame (5).
        shutdown_timeout: seconds a graceful shutdown lets requests in flight
            finish before the connections are closed with 1001 (10).
        max_connections: open connections per process (10,000), handshakes in
            progress included; beyond it new ones get HTTP 503.
        max_connections_per_address: open connections from one client address
            (256), handshakes in progress included, so that one client cannot use
            up `max_connections`; beyond it, HTTP 503.
        rate_limit: requests a second one connection may send (5,000; None: no
            limit), beyond a burst of `rate_burst` (10,000). A request past it is
            answered 429 ``throttled`` with ``errors.retry_after``, as are the others
            of the same read, and the socket is not read again until half the burst
            is back (TCP slows the client down).
        rate_burst: requests one connection may send at once, above `rate_limit`.
        rate_limit_per_address: requests a second all the connections from one
            client address may send together (20,000; None: no limit), with a burst
            of one second's worth; past it, as for `rate_limit`.
        rate_limit_per_user: requests a second all the connections authenticated as
            one user may send together (None, the default: no such limit), with a
            burst of one second's worth; past it, as for `rate_limit`.
        rate_limit_strikes: times a connection may be throttled with no calm spell
            in between (as long as its burst takes to refill) before it is closed
            with 1008 (10): it kept sending at full speed through every pause.
        jwt_secret: an HMAC secret for JSON Web Tokens (None, the default: none).
            When set and the App is given no ``auth``, the App builds
            ``JWTAuth(jwt_secret, algorithm=jwt_algorithm, issuer=jwt_issuer,
            audience=jwt_audience, leeway=jwt_leeway)``, so authentication can be
            configured from ``TRIO_REST_JWT_SECRET`` alone. Never shown in a repr.
        jwt_algorithm: its algorithm: HS256 (default), HS384 or HS512.
        jwt_issuer: the ``iss`` tokens must carry (None: not checked).
        jwt_audience: an ``aud`` tokens must carry (None: not checked).
        jwt_leeway: seconds of clock skew allowed on ``exp`` and ``nbf`` (30).
        allowed_origins: the origins a browser's handshake may come from, each
            ``"scheme://host[:port]"`` (None, the default: any). A handshake with
            another Origin gets HTTP 403; one without an Origin header (a client
            that is not a browser) is let through.
        metrics: serve Prometheus metrics at ``GET /metrics`` on the same port (False:
            off by default, since anyone who reaches the port could read them; turn it on
            where the port is private, or behind a proxy that guards the path).
        explorer: serve the explorer page at ``GET /`` on the same port (False): a
            page that lists the routes of the API's AsyncAPI document, sends requests
            over the WebSocket and shows replies and notifications. Off by default,
            since it shows the whole API to anyone who reaches the port; ``make demo``
            turns it on.
        idempotency_ttl: seconds the reply to a write with an ``idempotency_key`` is
            remembered, so that a retry gets it instead of writing again (300).
        max_head_size: largest HTTP request head (16 KiB); beyond it, 431.
        read_size: bytes asked of the socket per read (64 KiB): large reads
            mean fewer system calls per message.
        aiorest_ws_errors: give aiorest-ws clients the error replies they read
            (False). When set, an error reply with field errors, to a request
            without an id on a connection that negotiated no subprotocol, carries
            the field errors in ``detail`` (``{"detail": {"name": ["..."]}}``),
            where aiorest-ws put them. Clients that send ids or negotiate
            ``trio-rest.json`` keep the sentence in ``detail``.
    """

    engine: str = attrs.field(default=DEFAULT_ENGINE)
    max_message_size: int = attrs.field(default=2**20, validator=_positive)
    max_frame_size: int = attrs.field(default=4 * 2**20, validator=_positive)
    permessage_deflate: bool = attrs.field(default=False, validator=_switch)
    deflate_window_bits: int = attrs.field(default=12, validator=_window_bits)
    deflate_context_takeover: bool = attrs.field(default=False, validator=_switch)
    deflate_min_size: int = attrs.field(default=256, validator=_positive_int)
    max_depth: int = attrs.field(default=32, validator=_positive)
    max_in_flight: int = attrs.field(default=256, validator=_positive)
    max_concurrency: int = attrs.field(default=32, validator=_positive)
    max_subscriptions: int = attrs.field(default=64, validator=_positive)
    max_buffered_bytes: int = attrs.field(default=4 * 2**20, validator=_positive)
    max_server_buffered_bytes: int = attrs.field(default=64 * 2**20, validator=_positive)
    max_outbound_bytes: int = attrs.field(default=4 * 2**20, validator=_positive)
    notification_overflow: str = attrs.field(
        default="disconnect", validator=lambda _, attribute, value: _one_of(attribute, value, _OVERFLOW)
    )
    request_timeout: float | None = attrs.field(default=60.0, validator=_positive)
    max_request_timeout: float = attrs.field(default=300.0, validator=_positive)
    ping_interval: float = attrs.field(default=20.0, validator=_positive)
    ping_timeout: float = attrs.field(default=20.0, validator=_positive)
    handshake_timeout: float = attrs.field(default=10.0, validator=_positive)
    auth_timeout: float = attrs.field(default=10.0, validator=_positive)
    close_timeout: float = attrs.field(default=5.0, validator=_positive)
    shutdown_timeout: float = attrs.field(default=10.0, validator=_positive)
    max_connections: int = attrs.field(default=10_000, validator=_positive)
    max_connections_per_address: int = attrs.field(default=256, validator=_positive)
    rate_limit: float | None = attrs.field(default=5000.0, validator=_positive)
    rate_burst: int = attrs.field(default=10_000, validator=_positive)
    rate_limit_per_address: float | None = attrs.field(default=20_000.0, validator=_positive)
    rate_limit_per_user: float | None = attrs.field(default=None, validator=_positive)
    rate_limit_strikes: int = attrs.field(default=10, validator=_positive)
    jwt_secret: str | None = attrs.field(default=None, repr=False)
    jwt_algorithm: str = attrs.field(default="HS256")
    jwt_issuer: str | None = attrs.field(default=None)
    jwt_audience: str | None = attrs.field(default=None)
    jwt_leeway: float = attrs.field(default=30.0, validator=_positive)
    allowed_origins: tuple[str, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(tuple), validator=_origins
    )
    metrics: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    explorer: bool = attrs.field(default=False, validator=_switch)
    idempotency_ttl: float = attrs.field(default=300.0, validator=_positive)
    max_head_size: int = attrs.field(default=DEFAULT_MAX_HEAD_SIZE, validator=_positive)
    read_size: int = attrs.field(default=64 * 2**10, validator=_positive)
    aiorest_ws_errors: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def __attrs_post_init__(self) -> None:
        if self.engine not in ENGINE_NAMES:
            raise ConfigurationError(f"Settings.engine must be one of {ENGINE_NAMES}, not {self.engine!r}")
        if self.max_frame_size < self.max_message_size:
            raise ConfigurationError("Settings.max_frame_size must be at least max_message_size")

    def from_env(self, environ: Mapping[str, str] | None = None) -> Settings:
        """These settings with every ``TRIO_REST_<NAME>`` variable of the environment over them.

        ``TRIO_REST_MAX_IN_FLIGHT=512``, ``TRIO_REST_RATE_LIMIT=none``,
        ``TRIO_REST_ALLOWED_ORIGINS=https://a.example,https://b.example``. The CLI applies
        them itself, under its own ``--set``.

        Args:
            environ: the variables (``os.environ`` by default).

        Raises:
            ConfigurationError: an unknown ``TRIO_REST_*`` name, or a value that does not
                parse or that the setting refuses; the message names the variable.
        """
        from ._config import configure

        return configure(self, os.environ if environ is None else environ)
