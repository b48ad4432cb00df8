"""`serve`: accept TCP connections, answer plain HTTP, upgrade WebSockets, shut down cleanly."""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import ssl
from typing import Any, Final

import orjson
import trio

from ._admission import Admission
from ._app import App
from ._asyncapi import asyncapi_document
from ._budget import ByteBudget
from ._connection import ServerConnection
from ._deflate import DeflateOptions
from ._engine import Engine, Handshake, make_engine
from ._errors import AuthenticationError
from ._http import HTTPError, HTTPRequest, json_detail, parse_request_head, render_response
from ._ratelimit import Limits, Throttle
from ._static import find_static
from ._subprotocols import choose_subprotocol
from .auth._credentials import handshake_token, user_label
from .auth._jwt import Credentials

__all__ = ["ListenError", "Server", "serve"]

log = logging.getLogger("trio_rest")

# A Host header fit to name the server in the AsyncAPI document: a name or an address, and a port.
_HOST: Final = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


def _peer_name(stream: trio.abc.Stream) -> str:
    try:
        host, port, *_ = stream.socket.getpeername()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return "memory"
    return f"{host}:{port}"


async def _close_stream(stream: trio.abc.Stream, linger: float) -> None:
    """Close a TCP stream without a reset: FIN first, then read until the peer's EOF.

    Closing a socket with unread input makes the kernel send RST, and the
    peer may then lose our last frames (its close reply can still be in
    flight when we fail a connection). Bounded by `linger` seconds.
    """
    if linger > 0 and isinstance(stream, trio.abc.HalfCloseableStream):
        with trio.move_on_after(linger):
            try:
                await stream.send_eof()
                while await stream.receive_some(65536):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                pass
    # Closed even when this is cancelled (Trio's rule for aclose); a TLS stream's close_notify
    # to a peer that does not read must not hold a shielded caller forever.
    with trio.move_on_after(1.0):
        await stream.aclose()


class ListenError(OSError):
    """The server could not listen on its address (in use, not this host's, not allowed)."""


class Server:
    """A running server: what `serve` hands to ``nursery.start``.

    Args:
        app: the `App` to serve.
        connection_class: what drives each WebSocket (`trio_rest.testing` swaps in
            one that echoes, for the conformance suite).
        ssl_context: serve TLS (``wss://``) with this server-side context; None:
            plain TCP (``ws://``). The TLS handshake is part of the handshake and
            counts against `Settings.handshake_timeout`.

    Attributes:
        app: the `App` it serves.
        port: the port it listens on (useful with port 0).
        connections: the open WebSocket connections.
        budget: the bytes of requests all connections hold, against
            `Settings.max_server_buffered_bytes`.
        deflate: what a connection may agree of permessage-deflate, from the
            settings (None unless `Settings.permessage_deflate`).
    """

    def __init__(
        self,
        app: App,
        *,
        connection_class: type[ServerConnection] = ServerConnection,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        app.servers.add(self)  # for App.revoke (a weak set: it does not keep the server alive)
        self.port = 0
        self.connections: set[ServerConnection] = set()
        #: Streams open now, in all and per client address, handshakes included.
        self.admission = Admission(app.settings)
        #: The per-address rate buckets (and the settings of each connection's own).
        self.limits = Limits(app.settings)
        self.budget = ByteBudget(app.settings.max_server_buffered_bytes)
        settings = app.settings
        #: What each connection may agree of permessage-deflate (None: never offered back).
        self.deflate = (
            DeflateOptions(
                max_window_bits=settings.deflate_window_bits,
                context_takeover=settings.deflate_context_takeover,
                min_size=settings.deflate_min_size,
            )
            if settings.permessage_deflate
            else None
        )
        self._connection_class = connection_class
        self._listeners: list[trio.SocketListener] = []
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self._asyncapi: dict[str, Any] | None = None  # built on the first GET /asyncapi.json

    async def serve(
        self,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
        task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and serve until cancelled or `shutdown` is called.

        The app's lifespan (`App.open_lifespan`) runs around it: its startup before
        the port is opened, its shutdown after the last connection closed.

        Args:
            host: the address to bind, e.g. ``"127.0.0.1"``.
            port: the port (0 picks a free one; see `port`).
            reuse_port: share the port with other processes (``SO_REUSEPORT``: the
                kernel spreads new connections among them), as the workers of
                ``python -m trio_rest run --workers N`` do.
            task_status: for ``nursery.start``; started with this `Server`.

        Raises:
            Exception: whatever the app's startup raised (nothing was served).
        """
        try:
            async with self.app.open_lifespan():
                await self._serve(host, port, reuse_port, task_status)
        finally:
            self._stopped.set()

    async def _serve(
        self, host: str, port: int, reuse_port: bool, task_status: trio.TaskStatus[Server]
    ) -> None:
        try:
            if reuse_port:
                self._listeners = await _shared_listeners(host, port)
            else:
                self._listeners = await trio.open_tcp_listeners(port, host=host)
        except OSError as exc:
            raise ListenError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.port = self._listeners[0].socket.getsockname()[1]
        try:
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as acceptors:
                    for listener in self._listeners:
                        acceptors.start_soon(self._accept_loop, listener, connections)
                    log.info("serving on %s:%d", host, self.port)
                    task_status.started(self)
                    await self._stop.wait()
                    acceptors.cancel_scope.cancel()
                # New connections are refused from now on, not left in the backlog.
                await self._close_listeners()
                await self._close_connections()
                connections.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._close_listeners()

    async def _close_listeners(self) -> None:
        for listener in self._listeners:
            await listener.aclose()

    async def shutdown(self) -> None:
        """Stop accepting, let requests in flight finish, close every client with 1001.

        Bounded by `Settings.shutdown_timeout` plus `Settings.close_timeout`.
        """
        self._stop.set()
        await self._stopped.wait()

    async def _close_connections(self) -> None:
        settings = self.app.settings
        with trio.move_on_after(settings.shutdown_timeout + settings.close_timeout):
            async with trio.open_nursery() as nursery:
                for conn in list(self.connections):
                    nursery.start_soon(conn.close, 1001, "server shutting down")

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:  # e.g. EMFILE: too many open files; back off, do not die
                log.warning("accept failed: %s", exc)
                await trio.sleep(0.1)
                continue
            nursery.start_soon(self.handle_stream, stream)

    async def handle_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one client stream, from its HTTP request to its close.

        Args:
            stream: a connected byte stream (a TCP socket, or an in-memory
                stream in tests); closed when this returns.
        """
        peer = _peer_name(stream)
        address = peer.rpartition(":")[0] or peer
        admission = self.admission
        if not admission.enter(address):
            log.warning("%s: too many connections (in all, or from this address): 503", peer)
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                if self.ssl_context is None:  # over TLS, refused before any handshake: nothing said
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await stream.send_all(render_response(503, json_detail("Too many connections.")))
                await stream.aclose()
            return
        if self.ssl_context is not None:  # the TLS handshake happens on the first read
            stream = trio.SSLStream(stream, self.ssl_context, server_side=True)
        throttle = self._throttle(address)
        linger = True  # an HTTP reply or a refused handshake: the client may still be sending
        try:
            mark = self.app.revocations.mark()
            conn = await self._handshake(stream, peer, throttle)
            if conn is None:
                return
            self.connections.add(conn)  # from now on, `App.revoke` finds it
            if conn.subject is not None and self.app.revocations.revoked_since(conn.subject, mark):
                conn.revoked()  # revoked while its handshake was checked: closed as it starts
            log.info(
                "%s: connected to %s (%s), user %s, origin %s",
                peer,
                conn.path,
                self.app.settings.engine,
                user_label(conn.user),
                next((value for name, value in conn.headers if name == "origin"), "none"),
            )
            try:
                await conn.run()
            finally:
                linger = conn.failed
                self.connections.discard(conn)
                log.info(
                    "%s: closed with %s %s, user %s",
                    peer,
                    conn.close_code,
                    conn.close_reason,
                    user_label(conn.user),
                )
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:
            log.exception("%s: connection failed", peer)
        finally:
            with trio.CancelScope(shield=True):
                await _close_stream(stream, self.app.settings.close_timeout if linger else 0)
            admission.leave(address)
            if throttle is not None:
                self.limits.detach(address)

    def _throttle(self, address: str) -> Throttle | None:
        """The rate limits of a new connection from `address` (None when none are set)."""
        limits, settings = self.limits, self.app.settings
        if not limits.enabled:
            return None
        per_address = settings.rate_limit_per_address
        own = limits.connection_bucket(settings.rate_burst)
        shared = limits.attach(address, max(1.0, per_address)) if per_address is not None else None
        return Throttle(own, shared, settings.rate_limit_strikes)

    async def _handshake(
        self, stream: trio.abc.Stream, peer: str, throttle: Throttle | None
    ) -> ServerConnection | None:
        settings = self.app.settings
        with trio.move_on_after(settings.handshake_timeout):
            head = await self._read_head(stream)
            if head is None:
                return None
            request, rest = head
            if not request.is_websocket_upgrade:
                await stream.send_all(self._http_reply(request))
                return None
            engine = make_engine(
                settings.engine, max_message_size=settings.max_frame_size, deflate=self.deflate
            )
            # The head was parsed once, above: the engine validates the parsed request.
            event = engine.receive_handshake(request, rest)
            if type(event) is not Handshake:
                await stream.send_all(engine.data_to_send())  # the engine's own HTTP 4xx
                return None
            if not self.admission.origin_allowed(event.header("origin")):
                log.warning("%s: handshake from a refused origin: 403", peer)
                engine.reject(403, json_detail("This origin may not connect."))
                await stream.send_all(engine.data_to_send())
                return None
            credentials = None
            auth = self.app.auth
            token = handshake_token(event.headers, event.query) if auth is not None else None
            if token is not None:
                assert auth is not None
                try:
                    credentials = await auth.authenticate(token)
                except AuthenticationError as exc:
                    log.info("%s: handshake credentials refused: %s", peer, exc.detail)
                    engine.reject(401, json_detail(exc.detail or "Invalid credentials."))
                    await stream.send_all(engine.data_to_send())
                    return None
                except Exception:  # a user loader that failed
                    log.exception("%s: checking the handshake credentials failed", peer)
                    engine.reject(500, json_detail("The server failed to check the credentials."))
                    await stream.send_all(engine.data_to_send())
                    return None
            return await self._upgrade(stream, engine, event, peer, credentials, throttle)
        log.info("%s: handshake timed out", peer)
        return None

    async def _read_head(self, stream: trio.abc.Stream) -> tuple[HTTPRequest, bytes] | None:
        """Read until the request head is complete; return it parsed, and the bytes after it."""
        settings = self.app.settings
        received = bytearray()
        while True:
            data = await stream.receive_some(settings.read_size)
            if not data:
                return None
            received += data
            try:
                head = parse_request_head(received, max_head_size=settings.max_head_size)
            except HTTPError as exc:
                await stream.send_all(exc.response)
                return None
            if head is not None:
                return head

    async def _upgrade(
        self,
        stream: trio.abc.Stream,
        engine: Engine,
        handshake: Handshake,
        peer: str,
        credentials: Credentials | None,
        throttle: Throttle | None,
    ) -> ServerConnection:
        subprotocol, codec = choose_subprotocol(handshake.subprotocols)
        engine.accept(subprotocol)
        await stream.send_all(engine.data_to_send())
        conn = self._connection_class(
            self.app,
            stream,
            engine,
            codec=codec,
            subprotocol=subprotocol,
            peer=peer,
            path=handshake.path,
            headers=handshake.headers,
            budget=self.budget,
            user=credentials.user if credentials is not None else None,
            auth_expires=credentials.expires if credentials is not None else None,
            subject=credentials.subject if credentials is not None else None,
            throttle=throttle,
            limits=self.limits,
        )
        conn.queue_events(engine.take_pending())
        return conn

    def _http_reply(self, request: HTTPRequest) -> bytes:
        reply = self._http_response(request)
        if request.method == "HEAD":  # the GET's status and headers, Content-Length included
            reply = reply[: reply.index(b"\r\n\r\n") + 4]
        return reply

    def _http_response(self, request: HTTPRequest) -> bytes:
        if request.method not in ("GET", "HEAD"):
            return render_response(404, json_detail("Not Found"))
        if request.path == "/health":
            body = orjson.dumps({"status": "ok", "connections": len(self.connections)})
            return render_response(200, body)
        if request.path == "/metrics" and self.app.settings.metrics:
            from ._metrics import CONTENT_TYPE

            return render_response(200, self.app.metrics.render(), content_type=CONTENT_TYPE)
        if request.path == "/asyncapi.json":
            return self._asyncapi_reply(request.header("host"))
        static = find_static(request.path, explorer=self.app.settings.explorer)
        if static is not None:
            return render_response(200, static.body, static.content_type, static.headers)
        return render_response(404, json_detail("Not Found"))

    def _asyncapi_reply(self, host: str | None) -> bytes:
        """The App's AsyncAPI document, its server named as the client reached it (its Host)."""
        if self._asyncapi is None:
            try:
                self._asyncapi = asyncapi_document(self.app, secure=self.ssl_context is not None)
            except Exception:  # a serializer whose fields are inconsistent: the server goes on
                log.exception("the AsyncAPI document could not be built")
                return render_response(500, json_detail("The AsyncAPI document could not be built."))
        document = self._asyncapi
        if host is not None and _HOST.fullmatch(host):
            server = {**document["servers"]["server"], "host": host}
            server.pop("variables", None)
            document = {**document, "servers": {"server": server}}
        return render_response(200, orjson.dumps(document))


async def _shared_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Listeners on a port other processes may listen on too (``SO_REUSEPORT``)."""
    if not hasattr(trio.socket, "SO_REUSEPORT"):
        raise OSError(errno.EOPNOTSUPP, "SO_REUSEPORT is not supported on this system")
    listeners = []
    for family, kind, proto, _, address in await trio.socket.getaddrinfo(
        host, port, type=trio.socket.SOCK_STREAM, flags=trio.socket.AI_PASSIVE
    ):
        sock = trio.socket.socket(family, kind, proto)
        try:
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEPORT, 1)
            await sock.bind(address)
            sock.listen(trio.socket.SOMAXCONN)
        except BaseException:
            sock.close()
            raise
        listeners.append(trio.SocketListener(sock))
    return listeners


async def serve(
    app: App,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` until cancelled.

    When cancelled, every client still gets a 1001 close frame (bounded to a
    second); call `Server.shutdown` (the value ``nursery.start`` returns) for
    a graceful stop that lets requests in flight finish first.

    Args:
        app: the application.
        host: the address to bind.
        port: the port; 0 picks a free one (read it from the `Server`).
        ssl_context: serve ``wss://`` with this server-side TLS context.
        task_status: for ``nursery.start``; started with the `Server`.
    """
    await Server(app, ssl_context=ssl_context).serve(host, port, task_status=task_status)
