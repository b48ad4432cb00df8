"""`ServerConnection`: drives one WebSocket, from its first message to its close.

The driver owns the connection's lifecycle, its read loop and the API views use; the rest
is done by pieces with rules of their own, each stated in its module:

- `Dispatcher` (`_dispatch.py`) acts on each message the client sends.
- `WorkerPool` (`_workers.py`) runs the requests: long-lived workers, per-request
  deadlines and cancellation, the detection of a handler that waits, shutdown.
- `Outbox` (`_outbox.py`) is the only writer: one `send_all` per batch, the byte limit
  for a client that does not read, the close frame last.
- `Subscription` (`_subscription.py`) is one SUBSCRIBE request's stream.
- `Liveness` (`_keepalive.py`) is what the run's one keepalive task checks.

Inside the connection's nursery: the reader task (`run`) reads, feeds the engine and the
protocol, answers what needs no handler (404, 405, pongs, protocol errors) and queues
the rest in the pool; the pool's workers and the outbox's writer start on first need, so
an idle connection holds no task but its reader. When the connection ends, everything it
started is cancelled with it.

Rules of the driver (`check_invariants` checks them, and each piece's own):

1. Every request gets exactly one reply, whatever happens: a refusal, its handler's
   answer, 499, 503 or 504, queued before the close frame. Only a client that left (or
   was cut off for not reading) misses replies.
2. The reader reads on while the pool admits requests, and while it holds fewer than
   `max_in_flight` (and `max_buffered_bytes` of) requests past its bounds; beyond, it
   stops, and TCP slows the client down. A cancel, a ping or the client's close is
   thus heard even while requests wait for room.
3. The bytes the connection holds in its pool are taken from the server's budget and
   given back when their job leaves.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
import trio
from trio_rest_protocol import (
    Auth,
    Codec,
    Connection,
    ConnectionClosed,
    ConnectionState,
    LocalProtocolError,
    Notification,
    Role,
)
from trio_rest_protocol import Response as ProtocolResponse

from ._broker import Published
from ._budget import ByteBudget
from ._dispatch import Dispatcher
from ._engine import Closed, Engine, Message
from ._errors import AuthenticationError
from ._jobs import Job, call_handler
from ._keepalive import Liveness, Verdict, keepalive
from ._outbox import Outbox
from ._ratelimit import Limits, Throttle
from ._renderers import render
from ._stats import ConnectionStats
from ._timers import Timer, start_timer
from ._workers import WorkerPool

if TYPE_CHECKING:
    from ._app import App

__all__ = ["ServerConnection"]

log = logging.getLogger("trio_rest")

#: Messages of one read the reader handles before it lets other tasks run.
_BATCH = 64

#: Scheduling rounds the reader lets pass, while requests it read are being
#: answered, before it reads again (see `_read_loop`).
_READ_DEFER_ROUNDS = 2

# How a client sent JSON in binary frames (`_from_binary`).
_UTF8, _BASE64 = "utf-8", "base64"

#: Called with each connection whenever its reader is about to wait for the client,
#: when it ends, and when it has said its last words: `trio_rest.testing` sets it to
#: check the rules between the steps of a test.
at_rest: Callable[[ServerConnection], None] | None = None


class ServerConnection:
    """One client's WebSocket, as the server drives it.

    Views reach it as ``request.connection``: it can push notifications that belong to
    no subscription, start timers that die with the connection, and close it.

    Attributes:
        app: the `App`.
        peer: the client's address, ``"host:port"``.
        path: the path of the handshake request.
        headers: the handshake's headers, names lower-case.
        subprotocol: the WebSocket subprotocol negotiated (None: none was).
        user: whoever the credentials name: the handshake's, or the latest accepted
            ``auth`` message's (None without them).
        auth_expires: when those credentials expire (Unix time; None without them):
            past it, requests are no longer authorised by them.
        throttle: its rate limits (None: none apply).
        subject: the ``sub`` of the token that authenticated it (None without one).
        credentials_revoked: its credentials were revoked (`App.revoke`): it closes, and
            a request that runs meanwhile is answered 401 unless it carries a token.
        close_code: the close code, once the connection is closing.
        close_reason: the close reason.
        failed: this side failed the WebSocket (a protocol violation): the peer may
            still be sending, so its input is drained before TCP closes.
    """

    # Slots: a connection is created per client, and an instance dict costs about
    # 1 KiB of each idle connection's memory.
    __slots__ = (
        "__weakref__",  # registries (topics, brokers) may follow a connection without keeping it
        "_backlog",
        "_binary",
        "_budget",
        "_closing",
        "_dispatcher",
        "_engine",
        "_finished",
        "_legacy_errors",
        "_limits",
        "_liveness",
        "_nursery",
        "_outbox",
        "_paused",
        "_pool",
        "_proto",
        "_room",
        "_settings",
        "_stream",
        "app",
        "auth_expires",
        "close_code",
        "close_reason",
        "credentials_revoked",
        "failed",
        "headers",
        "path",
        "peer",
        "subject",
        "subprotocol",
        "throttle",
        "user",
    )

    def __init__(
        self,
        app: App,
        stream: trio.abc.Stream,
        engine: Engine,
        *,
        codec: Codec = Codec.JSON,
        subprotocol: str | None = None,
        peer: str = "",
        path: str = "/",
        headers: tuple[tuple[str, str], ...] = (),
        budget: ByteBudget | None = None,
        user: Any = None,
        auth_expires: float | None = None,
        throttle: Throttle | None = None,
        subject: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.app = app
        self.subprotocol = subprotocol
        self.peer = peer
        self.path = path
        self.headers = headers
        self.user: Any = user
        self.auth_expires = auth_expires
        self.subject: str | None = None
        self.credentials_revoked = False
        self.throttle = throttle
        self._limits = limits  # the server's, for the user's bucket
        self._set_subject(subject)
        settings = app.settings
        self._settings = settings
        self._stream = stream
        self._engine = engine
        self._proto = Connection(
            Role.SERVER,
            codec=codec,
            max_message_size=settings.max_message_size,
            max_depth=settings.max_depth,
            max_in_flight=settings.max_in_flight,
            require_auth=app.require_auth and user is None,
        )
        self._budget = budget if budget is not None else ByteBudget(settings.max_server_buffered_bytes)
        self._outbox = Outbox(
            stream,
            engine,
            limit=settings.max_outbound_bytes,
            on_overflow=self._overflow,
            on_lost=self._lost,
            drop_oldest=settings.notification_overflow == "drop_oldest",
            on_missed=self._missed,
        )
        self._pool = WorkerPool(
            settings,
            self._outbox,
            self._budget,
            call=call_handler,
            reply=self._reply,
            on_room=self._made_room,
        )

        self._nursery: trio.Nursery | None = None
        self._backlog: list[Any] = []  # engine events not yet handled (a list: see _read_loop)
        self._room = trio.lowlevel.ParkingLot()  # where the reader waits past its limits
        self._paused = False  # the reader waits for room: the client is not silent, we do not listen
        self._finished = trio.Event()
        self._closing: tuple[int, str, float] | None = None  # what close() asked for
        self._liveness = Liveness(settings.ping_interval, settings.ping_timeout, trio.current_time())
        self._dispatcher = Dispatcher(self, self._proto, self._pool, self._budget, self._liveness)
        self.close_code: int | None = None
        self.close_reason = ""
        self.failed = False
        # How the client's latest message came, when it came as JSON in a binary frame
        # (aiorest-ws clients may send UTF-8 JSON, or base64 of it): replies go out alike.
        self._binary: str | None = None
        self._legacy_errors = settings.aiorest_ws_errors and subprotocol is None

    # -- public ----------------------------------------------------------------

    def queue_events(self, events: list[Any]) -> None:
        """Queue engine events that arrived with the handshake, before `run`."""
        self._backlog.extend(events)

    @property
    def codec(self) -> Codec:
        """How its envelopes are encoded: JSON, or MessagePack (chosen by subprotocol)."""
        return self._proto.codec

    @property
    def closed(self) -> bool:
        """True once the connection has ended."""
        return self._finished.is_set()

    async def send_notification(
        self, data: Any = None, *, event_name: str | None = None, topic: str | None = None
    ) -> None:
        """Push a notification that belongs to no subscription.

        It is queued, never waited for: a client that does not read is disconnected
        once `Settings.max_outbound_bytes` are queued for it. A notification to a
        connection that has ended is dropped.

        Args:
            data: its body.
            event_name: what kind of notification it is.
            topic: what it is about (a group, a resource path).

        Raises:
            LocalProtocolError: `data` cannot be encoded (nothing was sent).
        """
        await trio.lowlevel.checkpoint()
        self.send_event(Notification(event_name=event_name, topic=topic, data=data))

    def send_event(self, event: ProtocolResponse | Notification) -> bool:
        """Queue a protocol event for the client, without waiting (a low-level call).

        `Subscription` sends its notifications this way; views use `send_notification`
        and subscriptions.

        Args:
            event: a `Notification`, or a `Response` to a request in flight.

        Returns:
            False when it was not sent: the connection has ended, or the event is a
            notification of a subscription the client cancelled.

        Raises:
            LocalProtocolError: the event cannot be encoded, or the protocol forbids it.
        """
        if self._finished.is_set():
            return False
        note = type(event) is Notification
        if note and event.id is not None and not self._proto.is_subscribed(event.id):
            return False
        wire = self._proto.send(event)
        if not note and self._settings.metrics and type(event) is ProtocolResponse:
            self.app.metrics.answered("-", "-", event.status, None)  # answered with no view: refusals
        if self._binary or self._legacy_errors:
            wire = self._shape(wire, event, None)
        if note and not event.final:  # type: ignore[union-attr]
            self._outbox.put_note(wire)  # the overflow policy may drop it
        else:
            self._outbox.put(wire)
        return True

    def _missed(self, count: int) -> str | bytes | None:
        """The notice of `count` notifications dropped for this slow client (`notification_overflow`)."""
        log.warning("%s: %d notifications dropped, the client reads too slowly", self.peer, count)
        self.app.push_stats.count("dropped", count)
        notice = Notification(event_name="missed", data={"count": count})
        try:
            wire = self._proto.send(notice)
        except LocalProtocolError:  # the connection is closing: no notification goes out now
            return None
        return self._shape(wire, notice, None) if self._binary or self._legacy_errors else wire

    def _from_binary(self, message: bytes) -> bytes:
        """A binary message on a JSON connection: UTF-8 JSON, or base64 of it (aiorest-ws).

        Remembers which, so that the replies go out the same way.
        """
        if self._proto.codec is not Codec.JSON:  # MessagePack is binary by nature
            return message
        if message.lstrip()[:1] in (b"{", b"["):
            self._binary = _UTF8
            return message
        try:
            decoded = base64.b64decode(message, validate=True)
        except binascii.Error:  # neither: the protocol refuses it as JSON
            self._binary = _UTF8
            return message
        self._binary = _BASE64
        return decoded

    def _shape(self, wire: str | bytes, event: Any, args: Mapping[str, Any] | None) -> str | bytes:
        """What goes out for an old client or a format: the protocol's JSON, reshaped.

        aiorest-ws's error shape (`Settings.aiorest_ws_errors`), the format the request
        named in ``args.format`` (replies to routed requests), and a binary frame (UTF-8,
        or base64) when the client's latest message came in one.
        """
        if type(wire) is not str:  # MessagePack: nothing to reshape
            return wire
        if self._legacy_errors and type(event) is ProtocolResponse and event.id is None and event.errors:
            envelope = orjson.loads(wire)
            envelope["detail"] = envelope["errors"]
            wire = orjson.dumps(envelope).decode()
        format = args.get("format") if args else None
        if format is not None:
            wire = render(wire, format)
        binary = self._binary
        if binary is None:
            return wire
        return base64.b64encode(wire.encode()) if binary is _BASE64 else wire.encode()

    def authenticate_soon(self, event: Auth) -> None:
        """Check an in-band ``auth`` message's token, then answer it (200, or 401).

        An accepted token replaces the connection's credentials, so a client refreshes
        an expiring token without reconnecting.
        """
        self._start_soon(self._authenticate, event)

    async def _authenticate(self, event: Auth) -> None:
        auth = self.app.auth
        assert auth is not None
        try:
            credentials = await self.app.revocations.authenticate(auth, event.token)
        except AuthenticationError as exc:
            log.info("%s: auth message refused: %s", self.peer, exc.detail)
            self.send_event(event.error(401, code="not_authenticated", detail=exc.detail))
            return
        except Exception:  # a user loader that failed: answered, the connection lives
            log.exception("%s: checking an auth message failed", self.peer)
            self.send_event(event.error(500, detail="The server failed to check the credentials."))
            return
        self.user = credentials.user
        self._set_subject(credentials.subject)
        self.auth_expires = credentials.expires
        self.send_event(event.response())

    def _set_subject(self, subject: str | None) -> None:
        """Authenticated as `subject` (None: not): its requests now count against its user's rate."""
        limits, throttle = self._limits, self.throttle
        if limits is not None and throttle is not None and subject != self.subject:
            if self.subject is not None:
                limits.detach_user(self.subject)
            throttle.user = limits.attach_user(subject) if subject is not None else None
        self.subject = subject

    def close_unauthenticated(self) -> None:
        """No accepted ``auth`` message where one was required: close with 1008."""
        if self.close_code is None and not self._finished.is_set():
            log.info("%s: no credentials where they are required, closing", self.peer)
            self._start_closing(1008, "authentication required")
            self._start_soon(self._end_when_written)

    async def _auth_deadline(self) -> None:
        await trio.sleep(self._settings.auth_timeout)
        if self._proto.state is ConnectionState.AUTHENTICATING:
            self.close_unauthenticated()

    def revoked(self) -> None:
        """Its user's credentials were revoked (`App.revoke`): answer 401 and close with 1008.

        They authorise nothing from now on. What runs with them is cancelled and what waits
        is answered, 401 each; then the connection closes as `close` does, with 1008 (at
        once, if it does not run yet: as soon as it does).
        """
        self.credentials_revoked = True
        self.user = self.auth_expires = None
        if self._finished.is_set():
            return
        log.info("%s: credentials revoked, closing", self.peer)
        self._pool.revoke(self.subject, queued=True)
        if self._closing is not None or self.close_code is not None:
            return  # closing already: what the revocation refuses is refused meanwhile
        self._closing = (1008, "credentials revoked", self._settings.close_timeout)
        if self._nursery is not None:  # else `run` starts the closing
            self._start_soon(self._close_gracefully, *self._closing)

    def revoke_requests(self, subject: str) -> int:
        """End the requests and subscriptions that run on `subject`'s own ``args.token`` (401)."""
        return self._pool.revoke(subject)

    def join(self, topic: str) -> None:
        """Receive what the App publishes to `topic`, until `leave` or the connection's end.

        Raises:
            RuntimeError: the connection has ended.
        """
        if self._finished.is_set():
            raise RuntimeError("the connection has ended")
        self.app.broker.join(topic, self)

    def leave(self, topic: str) -> None:
        """Stop receiving what the App publishes to `topic` (nothing happens if not joined)."""
        self.app.broker.leave(topic, self)

    def deliver(self, message: Published) -> bool:
        """Queue a published message, without waiting (a broker's call); false if it was not."""
        note = message.notification if self._proto.codec is Codec.JSON else message.plain_notification()
        try:
            return self.send_event(note)
        except LocalProtocolError:  # larger than the protocol may send, or the connection is closing
            log.warning("%s: a notification to topic %r could not be sent", self.peer, message.topic)
            return False

    async def wait_writable(self) -> None:
        """Wait while half of `Settings.max_outbound_bytes` waits to reach the client.

        A producer that could outpace its client (a streaming view) calls it between
        messages; it returns at once when the connection has ended.
        """
        await self._outbox.wait_room(self._settings.max_outbound_bytes // 2)

    def send_raw(self, message: str | bytes) -> None:
        """Queue a WebSocket message as it is, bypassing the protocol (for transport tests)."""
        self._outbox.put(message)

    def is_subscribed(self, id: object) -> bool:
        """Tell whether the client still follows the subscription of this id."""
        return self._proto.is_subscribed(id)  # type: ignore[arg-type]

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` once after `delay` seconds, unless cancelled first.

        Args:
            delay: seconds to wait.
            fn: an async or plain function; its exceptions are logged.
            *args: its arguments.

        Returns:
            A `Timer` whose ``cancel()`` stops it; it dies with the connection.
        """
        return start_timer(self._require_nursery(), fn, args, delay=delay, interval=None)

    def every(self, interval: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` every `interval` seconds until cancelled.

        Args:
            interval: seconds between the starts of two runs.
            fn: an async or plain function; an exception is logged and stops the timer.
            *args: its arguments.

        Returns:
            A `Timer` whose ``cancel()`` stops it; it dies with the connection.
        """
        return start_timer(self._require_nursery(), fn, args, delay=interval, interval=interval)

    async def close(self, code: int = 1000, reason: str = "", *, grace: float | None = None) -> None:
        """Close the connection: refuse new requests, let running ones finish, then close.

        Every request still unanswered when the grace runs out is cancelled and
        answered (503), before the close frame. The closing runs in the connection's
        own task group, so a view may close its own connection (it is cancelled with
        the other requests); a second call waits for the first closing.

        Args:
            code: the WebSocket close code (1001 when the server goes away).
            reason: the close reason.
            grace: seconds running requests may take to finish before they
                are cancelled (default: `Settings.shutdown_timeout`).
        """
        if self._closing is None and not self._finished.is_set():
            self._closing = (code, reason, self._settings.shutdown_timeout if grace is None else grace)
            if self._nursery is not None:
                self._start_soon(self._close_gracefully, *self._closing)
            # else: `run` starts the closing as soon as the connection runs.
        await self._finished.wait()

    async def _close_gracefully(self, code: int, reason: str, grace: float) -> None:
        settings, pool = self._settings, self._pool
        with contextlib.suppress(LocalProtocolError):  # already closing: the peer's close came first
            self._proto.send(ConnectionClosed(code=code, reason=reason))
        with trio.move_on_after(grace):
            await pool.wait_idle()
        pool.cancel_all()
        # Cancelled handlers answer at their next checkpoint; a plain def's thread cannot
        # be stopped, and is answered for below.
        with trio.move_on_after(_last_words_seconds(settings.close_timeout)):
            await pool.wait_idle(subscriptions=True)
        pool.answer_all()
        self._start_closing(code, reason)
        # The peer answers our close frame and the reader ends the connection; a peer
        # that does not answer is left after close_timeout.
        await trio.sleep(settings.close_timeout)
        self._require_nursery().cancel_scope.cancel()

    def stats(self) -> ConnectionStats:
        """Count what the connection holds now (for metrics, logs and tests)."""
        pool = self._pool
        return ConnectionStats(
            running=len(pool.running),
            waiting=len(pool.waiting),
            held=len(pool.held),
            subscriptions=len(pool.subscriptions),
            workers=pool.tasks,
            tasks=len(self._nursery.child_tasks) if self._nursery is not None else 0,
            buffered_bytes=pool.buffered + pool.held_bytes,
            outbound_bytes=self._outbox.queued_bytes,
        )

    def check_invariants(self) -> None:
        """Raise `AssertionError` if a rule of this connection or of its pieces is broken.

        Meant for moments when none of the connection's tasks is running (tests call it
        between steps, through `trio_rest.testing`).
        """
        pool = self._pool
        pool.check_invariants()
        self._outbox.check_invariants()
        self._budget.check_invariants()
        if not self._finished.is_set():
            assert self._proto.in_flight >= pool.unanswered, "rule 1: a request the protocol forgot"

    # -- the reader -----------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; everything it started ends with it."""
        try:
            keepalive().add(self)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._pool.start(nursery)
                self._outbox.start(nursery)
                if self._closing is not None:  # close() came before the connection ran
                    nursery.start_soon(self._close_gracefully, *self._closing)
                if self._proto.state is ConnectionState.AUTHENTICATING:
                    nursery.start_soon(self._auth_deadline)
                await self._read()
        finally:
            keepalive().discard(self)
            self.app.broker.leave_all(self)
            self._set_subject(None)  # gives the user's rate bucket back
            with trio.CancelScope(shield=True):
                await self._last_words()
            self._finished.set()

    async def _last_words(self) -> None:
        """Cancelled from outside (a server shutdown): answer what is owed, then 1001."""
        pool, outbox = self._pool, self._outbox
        outbox.end()  # the nursery is closed: no writer task now, the last write is ours
        if self.close_code is None:
            pool.answer_all()
            self._start_closing(1001, "server shutting down")
            # A batch whose send_all was cancelled goes first (a compromise: if the
            # kernel had taken part of it, the client sees a broken frame, not a 1001).
            data = outbox.take_unsent() + self._engine.data_to_send()
            with trio.move_on_after(_last_words_seconds(self._settings.close_timeout)):
                with contextlib.suppress(
                    trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError
                ):
                    await self._stream.send_all(data)
        pool.release()
        self._backlog.clear()
        code = 1001 if self.close_code is None else self.close_code  # set by _start_closing above
        self._proto.receive_data(None, code=code, reason=self.close_reason)
        self._proto.next_event()
        if at_rest is not None:
            at_rest(self)

    async def _read(self) -> None:
        """Be the reader, until the input ends or a request this task ran itself waits.

        In the second case another task takes over the reading (`WorkerPool.lead`).
        """
        if await self._pool.lead(self._read_loop, self._follow):
            # The peer closed (or vanished): let the writer send our close reply.
            with trio.move_on_after(self._settings.close_timeout):
                await self._outbox.wait_written()
            self._require_nursery().cancel_scope.cancel()

    def _follow(self) -> None:
        self._start_soon(self._read)

    async def _read_loop(self) -> None:
        # The backlog is walked by index and cleared once handled: an empty deque
        # would cost 600 bytes of every idle connection's memory.
        stream, engine, backlog = self._stream, self._engine, self._backlog
        pool, outbox, liveness = self._pool, self._outbox, self._liveness
        event: Any = None
        message: str | bytes | None = None
        # The dispatcher directly, one call less per message, unless a subclass handles
        # messages its own way.
        handle = (
            self._dispatcher.handle
            if type(self).handle_message is ServerConnection.handle_message
            else self.handle_message
        )
        read_size = self._settings.read_size
        while True:
            handled = 0
            while handled < len(backlog):
                # Back-pressure (rule 2): requests past the pool's bounds are held, and
                # the reader goes on (a cancel, a ping, the client's close are heard)
                # until the held ones reach the bounds too; then it stops until a
                # request finishes, and TCP slows the client down.
                if pool.full:
                    if outbox.claimed:
                        outbox.write_now()
                    self._paused = True
                    await self._room.park()
                    self._paused = False
                    continue
                if handled and not handled % _BATCH:  # a long batch: let the others run too
                    if outbox.claimed:
                        outbox.write_now()
                    await trio.lowlevel.checkpoint()
                event = backlog[handled]
                handled += 1
                cls = type(event)
                if cls is Message:
                    message = event.data
                    if type(message) is not str:
                        message = self._from_binary(message)  # type: ignore[arg-type]
                    elif self._binary is not None:
                        self._binary = None
                    handle(message)
                    if pool.handed_over:  # the request we ran waits: the next reader goes on
                        del backlog[:handled]
                        if outbox.claimed:
                            outbox.write_now()
                        return
                elif cls is Closed:
                    self.close_code, self.close_reason = event.code, event.reason
                    self.failed = not event.clean
                    if outbox.claimed:
                        outbox.write_now()
                    outbox.poke()
                    return
            event = message = None  # let go of the last message before waiting for the next
            backlog.clear()
            # A client waiting for its replies sends nothing until they are out: a read now
            # would fail (EAGAIN) and re-arm epoll, two system calls per request. Let the
            # replies go out first, for a few scheduling rounds at most, so that a slow
            # handler never holds back the reading of (say) a cancel.
            rounds = _READ_DEFER_ROUNDS
            if outbox.claimed:  # the replies to requests we ran ourselves: written now
                outbox.write_now()
                await trio.lowlevel.checkpoint()
                rounds -= 1
            while rounds and (pool.running or pool.waiting or outbox.dirty or outbox.sending):
                await trio.lowlevel.checkpoint()
                rounds -= 1
            throttle = self.throttle
            if throttle is not None and throttle.until > trio.current_time():
                if throttle.exhausted:
                    self._close_for_abuse()
                    return
                # Rate-limited: read nothing more until half the burst is back.
                log.info(
                    "%s: throttled (%d), not read for %.2f s",
                    self.peer,
                    throttle.strikes,
                    throttle.until - trio.current_time(),
                )
                self._paused = True
                await trio.sleep_until(throttle.until)
                self._paused = False
            if engine.input_pending:
                # A read of compressed messages that inflated past the limit: the rest of
                # it, now that the first ones are handled, before reading more.
                await trio.lowlevel.checkpoint()
                backlog.extend(engine.receive_pending())
                if engine.has_data_to_send:
                    outbox.poke()
                continue
            if at_rest is not None:
                at_rest(self)
            try:
                data = await stream.receive_some(read_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            liveness.last_seen = trio.current_time()
            backlog.extend(engine.receive_data(data))
            if engine.has_data_to_send:  # a pong, or a close reply
                outbox.poke()

    def _made_room(self) -> None:
        if self._paused:  # the reader waits for room only past its limits
            self._room.unpark_all()

    # -- dispatch --------------------------------------------------------------------

    def handle_message(self, message: str | bytes) -> None:
        """Handle one complete WebSocket message from the client (see `Dispatcher.handle`).

        The reader calls it for each message; a subclass may handle messages otherwise
        (`trio_rest.testing` echoes them, for the WebSocket conformance suite).

        Args:
            message: the message, ``str`` for a text frame, ``bytes`` for binary.
        """
        self._dispatcher.handle(message)

    # -- replies -------------------------------------------------------------------------

    def _reply(self, job: Job, reply: ProtocolResponse) -> None:
        try:
            wire = self._proto.send(reply)
        except LocalProtocolError:
            log.exception("%s: the reply of %s could not be sent", self.peer, job.handler.name)
            self.send_event(job.event.error(500, detail="The server could not encode the reply."))
            return
        args = job.request.args
        if self._binary or self._legacy_errors or args:
            wire = self._shape(wire, reply, args)
        self._outbox.put(wire)
        if self._settings.metrics:
            seconds = trio.current_time() - job.arrived
            self.app.metrics.answered(job.handler.name, job.event.method, reply.status, seconds)

    # -- liveness and the end ------------------------------------------------------------

    @property
    def keepalive_tick(self) -> float:
        """How often the keepalive task checks this connection: a quarter of its shortest timing."""
        return self._liveness.tick

    def keepalive_check(self, now: float) -> None:
        """Ping a client silent for `ping_interval`; close one silent for `ping_timeout` after."""
        if self.close_code is not None:
            return
        liveness = self._liveness
        if self._paused:  # we do not read: its silence is ours
            liveness.last_seen = now
        verdict = liveness.check(now)
        if verdict is Verdict.PING:
            self._engine.send_ping(b"keepalive")
            self._outbox.poke()
        elif verdict is Verdict.DEAD:
            log.info(
                "%s: no answer to a ping in %.0f s, closing", self.peer, now - (liveness.ping_sent or now)
            )
            self._start_closing(1011, "ping timeout")
            # The peer is gone: write the close frame, then end without waiting for its answer.
            self._start_soon(self._end_when_written)

    def _close_for_abuse(self) -> None:
        """Throttled too many times in a row: write the 1008 close frame, then end."""
        log.warning("%s: throttled too many times in a row, closing", self.peer)
        self._start_closing(1008, "rate limit exceeded")
        self._start_soon(self._end_when_written)

    async def _end_when_written(self) -> None:
        with trio.move_on_after(_last_words_seconds(self._settings.close_timeout)):
            await self._outbox.wait_flushed()
        self._require_nursery().cancel_scope.cancel()

    def _start_closing(self, code: int, reason: str) -> None:
        """Queue the close frame after every reply already queued."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._outbox.close(code, reason)

    def _overflow(self, queued: int) -> None:
        log.warning("%s: %d bytes queued and not read, disconnecting", self.peer, queued)
        self.app.push_stats.count("slow_disconnects")
        self._abort(1008, "too many unread messages")

    def _lost(self) -> None:
        self._abort(1006, "connection lost")

    def _abort(self, code: int, reason: str) -> None:
        """End the connection now: a client that does not read cannot be told politely."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _require_nursery(self) -> trio.Nursery:
        if self._nursery is None or self._finished.is_set():
            raise RuntimeError("the connection is not running")
        return self._nursery

    def _start_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start a task of the connection's, unless the connection is ending (then: nothing to do)."""
        if self._nursery is not None:
            with contextlib.suppress(RuntimeError):  # the nursery closed: the connection ends now
                self._nursery.start_soon(fn, *args)


def _last_words_seconds(close_timeout: float) -> float:
    """How long a connection that must end anyway spends on its last writes."""
    return min(1.0, close_timeout)
