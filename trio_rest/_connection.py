"""`ServerConnection`: drives one WebSocket, from its first message to its close.

Inside the connection's nursery: a reader task feeds the protocol and queues
requests; long-lived workers (at most `max_concurrency`) run them, each under
its own deadline, and each can be cancelled alone (cancel, deadline and
disconnect); a worker keeps one cancel scope from job to job. One free
worker drains the queue; another is woken only when a handler waits for
something (`_watch`). When the connection ends, everything it started is
cancelled with it. A silent client is pinged by the run's one keepalive task
(`_keepalive`), which checks every connection.

Writing: replies queue in an outbox that is framed and sent with one
`send_all` per batch. The worker that finishes the last queued job writes the
batch itself, without waking another task; anything else (replies while more
jobs wait, pongs, notifications, the close frame) wakes a writer task, started
on first need, so that a connection that never speaks has none."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import types
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio
from trio_rest_protocol import (
    NEED_DATA,
    Auth,
    Cancel,
    Codec,
    Connection,
    ConnectionClosed,
    LocalProtocolError,
    Notification,
    Ping,
    RemoteProtocolError,
    Role,
)
from trio_rest_protocol import Request as ProtocolRequest
from trio_rest_protocol import Response as ProtocolResponse

from ._converter import structure_body
from ._engine import Closed, Engine, Message
from ._errors import APIError, MethodNotAllowedError
from ._keepalive import keepalive
from ._request import Request, Response
from ._timers import Timer, start_timer

if TYPE_CHECKING:
    from ._app import App
    from ._views import Handler

__all__ = ["ServerConnection"]

_T = TypeVar("_T")

log = logging.getLogger("trio_rest")

#: Scheduling rounds the reader lets pass, while requests it read are being
#: answered, before it reads again (see _read_loop).
_READ_DEFER_ROUNDS = 2


@attrs.define(eq=False)
class _Job:
    """One request on its way: waiting, running, or (SUBSCRIBE) streaming."""

    event: ProtocolRequest
    request: Request
    handler: Handler
    #: Its worker's cancel scope, from the moment the job starts (see `_worker`).
    scope: trio.CancelScope = attrs.field(init=False)
    cancelled_by_client: bool = False
    #: When the request times out; given to `scope` only once the handler waits.
    deadline: float = math.inf


class ServerConnection:
    """One client's WebSocket, as the server drives it.

    Views reach it as ``request.connection``: it can push notifications that
    belong to no subscription, start timers that die with the connection, and
    close it.

    Attributes:
        app: the `App`.
        peer: the client's address, ``"host:port"``.
        path: the path of the handshake request.
        headers: the handshake's headers, names lower-case.
        user: whoever the handshake's credentials name (None without auth).
    """

    # Slots: a connection is created per client, and an instance dict of this
    # many attributes costs about 1.5 KiB of each idle connection's memory.
    __slots__ = (
        "_awake_workers",
        "_backlog",
        "_capacity",
        "_engine",
        "_finished",
        "_free_workers",
        "_handle_message",
        "_idle",
        "_last_seen",
        "_nursery",
        "_outbox",
        "_outbox_bytes",
        "_parked_workers",
        "_ping_sent",
        "_proto",
        "_running",
        "_sending",
        "_settings",
        "_stream",
        "_subscriptions",
        "_waiting",
        "_work_lot",
        "_worker_writes",
        "_writer_dirty",
        "_writer_done",
        "_writer_lot",
        "_writer_started",
        "app",
        "close_code",
        "close_reason",
        "failed",
        "headers",
        "path",
        "peer",
        "user",
    )

    def __init__(
        self,
        app: App,
        stream: trio.abc.Stream,
        engine: Engine,
        *,
        codec: Codec = Codec.JSON,
        peer: str = "",
        path: str = "/",
        headers: tuple[tuple[str, str], ...] = (),
        echo: bool = False,
    ) -> None:
        self.app = app
        self.peer = peer
        self.path = path
        self.headers = headers
        self.user: Any = None
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
        )
        self._nursery: trio.Nursery | None = None
        self._backlog: list[Any] = []  # engine events not yet handled (a list: see _read_loop)
        # Jobs in arrival order (a list: at most max_in_flight long, and an empty
        # deque would cost 600 bytes of every idle connection's memory).
        self._waiting: list[_Job] = []
        self._running: dict[object, _Job] = {}
        # Long-lived workers run the requests: a task spawned per request
        # costs more than the request itself (DESIGN.md §5). Awake workers
        # drain the queue back to back; idle ones park until woken.
        self._work_lot = trio.lowlevel.ParkingLot()
        self._awake_workers = 0
        self._parked_workers = 0
        self._free_workers = 0  # awake workers that will come back to the queue by themselves
        self._subscriptions: dict[object, _Job] = {}
        self._capacity = trio.lowlevel.ParkingLot()
        self._outbox: list[str | bytes] = []
        self._outbox_bytes = 0
        self._writer_dirty = False  # queued output that no one has started writing
        self._writer_started = False
        self._sending = False  # a send_all is under way (by the writer or a worker)
        self._worker_writes = False  # a worker is queueing its reply and will write it itself
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._writer_done = trio.Event()
        self._idle: trio.Event | None = None  # made by _wait_idle, set when no job is left
        self._finished = trio.Event()
        self._last_seen = trio.current_time()
        self._ping_sent: float | None = None  # when the unanswered keepalive ping left
        self.close_code: int | None = None
        self.close_reason = ""
        #: True when this side failed the WebSocket (a protocol violation): the
        #: peer may still be sending, so its input is drained before TCP closes.
        self.failed = False
        # Echo mode sends every message back unchanged: the transport alone,
        # for the WebSocket conformance suite.
        self._handle_message = self._enqueue if echo else self._on_message

    # -- public ----------------------------------------------------------------

    def queue_events(self, events: list[Any]) -> None:
        """Queue engine events that arrived with the handshake, before `run`."""
        self._backlog.extend(events)

    @property
    def closed(self) -> bool:
        """True once the connection has ended."""
        return self._finished.is_set()

    def send_notification(
        self, data: Any = None, *, event_name: str | None = None, topic: str | None = None
    ) -> None:
        """Push a notification that belongs to no subscription.

        Args:
            data: its body.
            event_name: what kind of notification it is.
            topic: what it is about (a group, a resource path).
        """
        self._send(Notification(event_name=event_name, topic=topic, data=data))

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

        Args:
            code: the WebSocket close code (1001 when the server goes away).
            reason: the close reason.
            grace: seconds running requests may take to finish before they
                are cancelled (default: `Settings.shutdown_timeout`).
        """
        if self._finished.is_set():
            return
        with contextlib.suppress(LocalProtocolError):  # already closing
            self._proto.send(ConnectionClosed(code=code, reason=reason))
        with trio.move_on_after(self._settings.shutdown_timeout if grace is None else grace):
            await self._wait_idle()
        self._cancel_all_jobs()
        self._start_closing(code, reason)
        self._wake_writer()
        with trio.move_on_after(self._settings.close_timeout):
            await self._finished.wait()
        if not self._finished.is_set() and self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        await self._finished.wait()

    # -- the tasks ---------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; everything it started ends with it."""
        try:
            keepalive().add(self)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._writer_dirty:  # something was queued before the connection ran
                    self._start_writer()
                await self._read_loop()
                # The peer closed (or vanished): let the writer send our close reply.
                with trio.move_on_after(self._settings.close_timeout):
                    await self._writer_done.wait()
                nursery.cancel_scope.cancel()
        finally:
            keepalive().discard(self)
            self._finished.set()
            with trio.CancelScope(shield=True):
                await self._last_words()

    async def _last_words(self) -> None:
        """On cancellation from outside (server shutdown), still say goodbye with 1001."""
        if self.close_code is None:
            self._start_closing(1001, "server shutting down")
            data = self._engine.data_to_send()
            if data:
                with trio.move_on_after(min(1.0, self._settings.close_timeout)):
                    with contextlib.suppress(
                        trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError
                    ):
                        await self._stream.send_all(data)
        code = 1001 if self.close_code is None else self.close_code  # set by _start_closing above
        self._proto.receive_data(None, code=code, reason=self.close_reason)
        self._proto.next_event()

    async def _read_loop(self) -> None:
        # The backlog is walked by index and cleared once handled: an empty deque
        # would cost 600 bytes of every idle connection's memory.
        stream, engine, backlog = self._stream, self._engine, self._backlog
        read_size, max_in_flight = self._settings.read_size, self._settings.max_in_flight
        while True:
            handled = 0
            while handled < len(backlog):
                # Back-pressure: past the in-flight bound, stop parsing (and so
                # stop reading) until a request finishes; TCP slows the client.
                if len(self._running) + len(self._waiting) >= max_in_flight:
                    await self._capacity.park()
                    continue
                event = backlog[handled]
                handled += 1
                cls = type(event)
                if cls is Message:
                    self._handle_message(event.data)
                elif cls is Closed:
                    self.close_code, self.close_reason = event.code, event.reason
                    self.failed = not event.clean
                    self._wake_writer()
                    if not self._writer_started:  # run() waits for the writer to finish the close
                        self._start_writer()
                    return
            backlog.clear()
            # A client waiting for its replies sends nothing until they are out: a read now
            # would fail (EAGAIN) and re-arm epoll, two system calls per request. Let the
            # workers answer first, for a few scheduling rounds at most, so that a slow
            # handler never holds back the reading of (say) a cancel.
            rounds = _READ_DEFER_ROUNDS
            while rounds and (self._running or self._waiting or self._writer_dirty or self._sending):
                await trio.lowlevel.checkpoint()
                rounds -= 1
            try:
                data = await stream.receive_some(read_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            self._last_seen = trio.current_time()
            backlog.extend(engine.receive_data(data))
            if engine.has_data_to_send:  # a pong, or a close reply
                self._wake_writer()

    async def _write_loop(self) -> None:
        try:
            while True:
                if self._sending:
                    # A worker is sending: it writes what is queued meanwhile, then wakes us.
                    await self._writer_lot.park()
                elif self._writer_dirty:
                    await self._flush()
                elif self._engine.closed:
                    return  # everything, the close frame included, is written
                else:
                    await self._writer_lot.park()
        finally:
            self._writer_done.set()

    async def _flush(self) -> None:
        """Write everything queued, in as few `send_all` calls as the queue allows."""
        engine, stream = self._engine, self._stream
        self._sending = True
        try:
            while self._writer_dirty:
                self._writer_dirty = False
                self._frame_outbox()
                data = engine.data_to_send()
                if data:
                    await stream.send_all(data)
                    # The peer's close may have arrived during that write: its
                    # reply is queued now, so go round once more.
                    if engine.closed:
                        self._writer_dirty = True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._writer_dirty = False
            self._abort(1006, "connection lost")
        finally:
            self._sending = False
        if engine.closed and self._writer_started:
            self._writer_lot.unpark_all()  # the writer's last duty: say it is done

    def _start_writer(self) -> None:
        self._writer_started = True
        self._require_nursery().start_soon(self._write_loop)

    @property
    def keepalive_tick(self) -> float:
        """How often the keepalive task checks this connection: a quarter of its shortest timing."""
        return min(self._settings.ping_interval, self._settings.ping_timeout) / 4

    def keepalive_check(self, now: float) -> None:
        """Ping a client silent for `ping_interval`; close one silent for `ping_timeout` after."""
        if self.close_code is not None:
            return
        sent = self._ping_sent
        if sent is None:
            if now - self._last_seen >= self._settings.ping_interval:
                self._ping_sent = now
                self._engine.send_ping(b"keepalive")
                self._wake_writer()
        elif self._last_seen >= sent:
            self._ping_sent = None  # anything received since counts as the answer
        elif now - sent >= self._settings.ping_timeout:
            log.info("%s: no answer to a ping in %.0f s, closing", self.peer, now - sent)
            self._abort(1011, "ping timeout")

    # -- reading -----------------------------------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        proto = self._proto
        proto.receive_data(message)
        while True:
            try:
                event = proto.next_event()
            except RemoteProtocolError as exc:
                if exc.event_hint is not None:
                    self._send(exc.event_hint)
                continue
            if event is NEED_DATA:
                return
            cls = type(event)
            if cls is ProtocolRequest:
                self._dispatch(event)  # type: ignore[arg-type]
            elif cls is Cancel:
                self._cancel(event.id)  # type: ignore[union-attr]
            elif cls is Ping:
                self._send(event.pong())  # type: ignore[union-attr]
            elif cls is Auth:
                self._send(
                    event.error(  # type: ignore[union-attr]
                        501, code="not_implemented", detail="This server takes no in-band credentials."
                    )
                )
            else:  # ConnectionClosed cannot come from a message
                return

    def _dispatch(self, event: ProtocolRequest) -> None:
        app = self.app
        try:
            match = app.router.resolve(event.method, event.path)
        except MethodNotAllowedError as exc:
            if event.method == "OPTIONS":  # docs/protocol.md: OPTIONS lists what a route accepts
                self._send(event.response(data={"allow": list(exc.allowed)}))
            else:
                self._send(_error_reply(event, exc))
            return
        except APIError as exc:
            self._send(_error_reply(event, exc))
            return
        if event.method == "SUBSCRIBE" and len(self._subscriptions) >= self._settings.max_subscriptions:
            self._send(event.error(429, detail=f"At most {self._settings.max_subscriptions} subscriptions."))
            return
        request = Request(
            method=event.method,
            url=event.url,
            path=event.path,
            args=event.merged_args(),
            data=event.data,
            id=event.id,
            event_name=event.event_name,
            params=match.params,
            extras=event.extras,
            connection=self,
            app=app,
            user=self.user,
        )
        self._waiting.append(_Job(event, request, app.handler(match.view, event.method)))
        self._wake_worker()

    def _cancel(self, id: object) -> None:
        job = self._running.get(id) or self._subscriptions.get(id)
        if job is not None:
            job.cancelled_by_client = True
            job.scope.cancel()
            return
        for job in self._waiting:
            if job.event.id == id:
                self._waiting.remove(job)
                self._send(job.event.error(499))
                self._made_room()
                return

    # -- running requests ----------------------------------------------------------

    def _key(self, job: _Job) -> object:
        return job.event.id if job.event.id is not None else job

    def _wake_worker(self) -> None:
        """Make sure a worker will take the job just queued, within `max_concurrency`.

        A free worker (awake, and not waiting inside a handler or a write) comes
        back to the queue by itself, so a pipelined batch wakes one worker, not
        one per request. A worker whose handler waits is no longer free: it
        wakes another for the jobs queued behind it (`_worker_blocked`).
        """
        if self._free_workers > 0:
            return
        if self._parked_workers:
            self._parked_workers -= 1
            self._awake_workers += 1
            self._free_workers += 1
            self._work_lot.unpark()
        elif self._awake_workers < self._settings.max_concurrency:
            self._awake_workers += 1
            self._free_workers += 1
            self._require_nursery().start_soon(self._worker)

    def _worker_blocked(self) -> None:
        self._free_workers -= 1
        if self._waiting:
            self._wake_worker()

    def _job_blocked(self, job: _Job) -> None:
        if not job.request.accepted:  # an accepted subscription has no deadline
            job.scope.deadline = job.deadline
        self._worker_blocked()

    async def _worker(self) -> None:
        """Run queued jobs one after another; park when there are none.

        Each job runs under its own deadline and can be cancelled on its own, but
        the cancel scope that does it is the worker's, kept from job to job and
        renewed only after one was cancelled: entering and leaving a scope per
        request cost about a fifth of a request. A job whose handler never waits
        cannot be cancelled anyway (cancellation lands at checkpoints).
        """
        waiting = self._waiting
        while True:
            job: _Job | None = None
            with trio.CancelScope() as scope:
                while not scope.cancel_called:  # a cancel that came as a job returned: renew
                    if not waiting:
                        self._awake_workers -= 1
                        self._parked_workers += 1
                        self._free_workers -= 1
                        await self._work_lot.park()  # _wake_worker counts us awake and free again
                        continue
                    job = waiting.pop(0)
                    job.scope = scope
                    self._running[self._key(job)] = job
                    await self._run_job(job)
                    done, job = job, None
                    if await self._after_job(done):
                        return
            if job is not None:  # cancelled: by the client, by its deadline, or by the closing
                self._complete(job, None, None)
                if await self._after_job(job):
                    return

    async def _after_job(self, job: _Job) -> bool:
        """Write the batch if this job ended it; tell whether the worker must stop."""
        if self._worker_writes:
            self._worker_writes = False
            if self._writer_dirty:
                self._worker_blocked()
                try:
                    await self._flush()
                finally:
                    self._free_workers += 1
        if job.request.accepted:
            # It ran a subscription, and another worker took its place at the 200 (unless the
            # handler never waited: then this worker still counted as free, and wakes one now).
            self._free_workers -= 1
            if self._waiting:
                self._wake_worker()
            return True
        return False

    async def _run_job(self, job: _Job) -> None:
        event, request = job.event, job.request
        timeout = event.timeout if event.timeout is not None else self._settings.request_timeout
        if timeout is not None:
            # Registered with Trio only if the handler waits (_job_blocked): a deadline can
            # only fire at a checkpoint, so a handler that never waits needs none.
            job.deadline = trio.current_time() + min(timeout, self._settings.max_request_timeout)
        reply: ProtocolResponse | None = None
        result: Any = None
        # Cancellation of this job (Cancelled) passes through to the worker's scope.
        try:
            result = await _watch(self._call(job), self._job_blocked, self._job_resumed, job)
        except APIError as exc:
            reply = _error_reply(event, exc)
        except Exception:
            log.exception("%s: %s %s failed in %s", self.peer, event.method, event.url, job.handler.name)
            reply = event.error(500, detail="The server failed to handle the request.")
        else:
            if not request.accepted:
                reply = _success_reply(event, result)
        self._complete(job, result, reply)

    def _complete(self, job: _Job, result: Any, reply: ProtocolResponse | None) -> None:
        """Reply to a job that ended (None: it was cancelled) and forget it."""
        event, request = job.event, job.request
        if job.scope.deadline != math.inf and not job.scope.cancel_called:
            job.scope.deadline = math.inf  # the worker's next job starts without it
        # The last queued job's worker writes the batch itself (see _worker): no
        # hand-off to the writer on the way out. While jobs wait, their workers
        # reply later and the writer sends the batch after this scheduling round.
        # Not from inside a cancelled scope (a job cancelled as its handler returned, as a
        # plain def in its thread does): the write would be cancelled with the reply taken.
        self._worker_writes = not self._waiting and not self._sending and not job.scope.cancel_called
        self._finish(job)
        if request.accepted:
            self._end_subscription(job, result, reply)
        elif reply is not None:
            self._reply(job, reply)
        else:  # our own scope was cancelled: by the client, or by the deadline
            self._reply(job, event.error(499) if job.cancelled_by_client else event.error(504))

    async def _call(self, job: _Job) -> Any:
        handler, request = job.handler, job.request
        params = request.params
        if handler.body is not None:
            params = {**params, "body": structure_body(self.app.converter, request.data, handler.body)}
        database = self.app.database
        if database is None:
            return await _invoke(handler, request, params)
        # One session and one transaction per request, committed before the
        # reply is sent (so a 201 means the row is there), rolled back otherwise.
        async with database.session() as session:
            request.session = session
            return await _invoke(handler, request, params)

    def _job_resumed(self, job: _Job) -> None:
        self._free_workers += 1

    def _finish(self, job: _Job) -> None:
        key = self._key(job)
        if self._running.pop(key, None) is None:
            self._subscriptions.pop(key, None)
        self._made_room()

    def _made_room(self) -> None:
        if self._capacity:  # the reader waits for room only past max_in_flight
            self._capacity.unpark_all()
        if self._idle is not None and not self._running and not self._waiting:
            self._idle.set()

    async def _wait_idle(self) -> None:
        while self._running or self._waiting:
            self._idle = trio.Event()
            await self._idle.wait()

    def _cancel_all_jobs(self) -> None:
        for job in [*self._running.values(), *self._subscriptions.values()]:
            job.scope.cancel()
        while self._waiting:
            self._send(self._waiting.pop(0).event.error(503, code="closing", detail="The server is closing."))

    def _reply(self, job: _Job, reply: ProtocolResponse) -> None:
        try:
            self._send(reply, strict=True)
        except LocalProtocolError:
            log.exception("%s: the reply of %s could not be sent", self.peer, job.handler.name)
            self._send(job.event.error(500, detail="The server could not encode the reply."))

    # -- subscriptions ---------------------------------------------------------------

    def _accept_subscription(self, request: Request, data: Any) -> None:
        job = self._running.get(request.id)
        if job is None:
            return
        # Once accepted, a subscription lives until cancelled: no deadline, and
        # it stops counting against the request concurrency.
        job.scope.deadline = math.inf
        del self._running[request.id]
        self._subscriptions[request.id] = job
        self._reply(job, job.event.response(data=data))
        # This worker now serves the subscription until it ends: it no longer
        # counts against the concurrency, and the queue gets another worker.
        self._awake_workers -= 1
        if self._waiting:
            self._wake_worker()
        self._made_room()

    def _notify_subscriber(
        self, request: Request, data: Any, event_name: str | None, topic: str, seq: int
    ) -> None:
        if request.id is not None and self._proto.is_subscribed(request.id):
            self._send(Notification(id=request.id, event_name=event_name, topic=topic, seq=seq, data=data))

    def _end_subscription(self, job: _Job, result: Any, error: ProtocolResponse | None) -> None:
        request = job.request
        if request.id is None or not self._proto.is_subscribed(request.id):
            return  # the client cancelled it: it expects nothing more
        if error is not None:
            result = {
                "status": error.status,
                "code": error.code,
                "detail": error.detail,
                "errors": error.errors,
            }
        self._send(
            Notification(
                id=request.id,
                event_name="error" if error is not None else None,
                topic=request.path,
                seq=request._seq + 1,
                data=result,
                final=True,
            )
        )

    # -- writing ------------------------------------------------------------------------

    def _send(self, event: Any, *, strict: bool = False) -> None:
        try:
            wire = self._proto.send(event)
        except LocalProtocolError:
            if strict:
                raise
            log.exception("%s: could not send %s", self.peer, type(event).__name__)
            return
        self._enqueue(wire)

    def _enqueue(self, wire: str | bytes) -> None:
        self._outbox.append(wire)
        self._outbox_bytes += len(wire)
        if self._outbox_bytes > self._settings.max_outbound_bytes:
            log.warning("%s: %d bytes queued and not read, disconnecting", self.peer, self._outbox_bytes)
            self._outbox.clear()
            self._abort(1008, "too many unread messages")
            return
        self._wake_writer()

    def _start_closing(self, code: int, reason: str) -> None:
        """Queue the close frame after every reply already queued."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._frame_outbox()
        self._engine.close(code, reason)

    def _frame_outbox(self) -> None:
        """Hand every queued message to the engine, which frames it for the next write."""
        if self._outbox:
            batch, self._outbox, self._outbox_bytes = self._outbox, [], 0
            send_message = self._engine.send_message
            for wire in batch:
                send_message(wire)

    def _wake_writer(self) -> None:
        if self._finished.is_set():
            return  # the connection is over: its nursery takes no writer now
        if self._writer_dirty:  # already due: every reply of a batch shares one wake-up
            return
        self._writer_dirty = True
        if self._worker_writes or self._sending:
            return  # the worker queueing its reply, or the send under way, writes it
        if self._writer_started:
            self._writer_lot.unpark_all()
        elif self._nursery is not None:
            self._start_writer()

    def _abort(self, code: int, reason: str) -> None:
        """End the connection now: a client that does not read cannot be told politely."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _require_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the connection is not running")
        return self._nursery


@types.coroutine
def _watch(
    coro: Coroutine[Any, Any, Any],
    on_block: Callable[[_T], None],
    on_resume: Callable[[_T], None],
    arg: _T,
) -> Generator[Any, Any, Any]:
    """Await `coro`; call ``on_block(arg)`` when it first suspends and ``on_resume(arg)`` when it returns.

    The yields pass through untouched: `coro` still runs in the awaiting task, so
    every Trio primitive it uses sees that task. A coroutine that finishes without
    suspending costs one extra call and calls neither.
    """
    try:
        trap = coro.send(None)
    except StopIteration as done:
        return done.value
    on_block(arg)
    try:
        while True:
            try:
                sent = yield trap
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the scheduler: let the coroutine see it
                trap = coro.throw(exc)
            else:
                trap = coro.send(sent)
    except StopIteration as done:
        return done.value
    finally:
        on_resume(arg)


async def _invoke(handler: Handler, request: Request, params: Mapping[str, Any]) -> Any:
    if handler.blocking:  # a plain def: a worker thread, in the request's session if it has one
        return await request.run_sync(functools.partial(handler.fn, request, **params))
    return await handler.fn(request, **params)


def _error_reply(event: ProtocolRequest, exc: APIError) -> ProtocolResponse:
    return event.error(exc.status, code=exc.code, detail=exc.detail, errors=exc.errors)


def _success_reply(event: ProtocolRequest, result: Any) -> ProtocolResponse:
    if type(result) is Response:
        return event.response(status=result.status, data=result.data)
    return event.response(data=result)
