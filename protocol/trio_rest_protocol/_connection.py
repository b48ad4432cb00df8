"""`Connection`: one socket's worth of protocol state, with no I/O at all.

Feed it each complete WebSocket message with `receive_data`, take events out
with `next_event`, and turn the events you want to send into text or bytes
with `send`. The same class serves both ends of the socket (`Role`).
"""

from __future__ import annotations

import collections
import enum
from typing import Any

import orjson

from ._codecs import (
    Codec,
    DecodeError,
    check_json_ints,
    decode,
    decode_json,
    encode,
    msgpack_available,
    to_plain,
)
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import (
    Auth,
    Cancel,
    ConnectionClosed,
    Event,
    Notification,
    Request,
    RequestId,
    Response,
    error_response,
)
from ._readers import Rejection, echo, read_client_envelope, read_server_envelope
from ._state import REJECTIONS, ROLE_EVENTS, TRANSITIONS, ConnectionState, Role, Trigger
from ._writers import write_event

__all__ = ["NEED_DATA", "Connection", "NeedData"]


class NeedData(enum.Enum):
    """The type of `NEED_DATA`."""

    NEED_DATA = "NEED_DATA"


#: What `next_event()` returns when every received message has been processed.
NEED_DATA = NeedData.NEED_DATA

# What an in-flight id is waiting for: its kind decides what a reply does.
_REQUEST, _SUBSCRIBE, _AUTH = "request", "subscribe", "auth"

# A received "transport gone" is queued behind the messages that came before it.
_Gone = tuple[int, str]


def _is_plain(request: Request) -> bool:
    """Tell whether a request holds no number but its (range-checked) id.

    Its other fields are strings or empty, so no integer beyond 64 bits can
    hide in it as the float orjson would have made of it.
    """
    return not request.args and request.data is None and request.timeout is None and not request.extras


class Connection:
    """The protocol state of one WebSocket, for either end.

    Args:
        role: `Role.SERVER` or `Role.CLIENT`.
        codec: how binary messages are encoded (text messages are always
            JSON); `Codec.MSGPACK` needs the ``msgpack`` extra.
        max_message_size: largest message accepted, in bytes. 1 MiB: far
            above a REST body, small enough that a few hundred connections
            at the limit stay within memory. Larger messages get a 413.
        max_depth: deepest container nesting in an envelope (the envelope is
            level 1). 32 holds any sane resource with room to spare and keeps
            recursive code in views far from Python's recursion limit.
        max_in_flight: requests one client may have unanswered at once
            (server role). 1024 leaves room for deep pipelining while
            bounding the per-connection bookkeeping; excess requests get 429.
        require_auth: start in AUTHENTICATING (server role): requests get 401
            until the server accepts an `Auth` message.
        max_send_size: largest message `send` produces, in bytes (None: no
            limit). A client sets it to the server's ``max_message_size``, so
            that a request the server would refuse (with a 413 that cannot name
            its id) fails at once, before it is sent.

    Raises:
        ValueError: invalid limits, `require_auth` on the client role, or
            MessagePack without the extra installed.
    """

    def __init__(
        self,
        role: Role,
        *,
        codec: Codec = Codec.JSON,
        max_message_size: int = 2**20,
        max_depth: int = 32,
        max_in_flight: int = 1024,
        require_auth: bool = False,
        max_send_size: int | None = None,
    ) -> None:
        if max_message_size < 1 or max_depth < 1 or max_in_flight < 1:
            raise ValueError("limits must be positive")
        if max_send_size is not None and max_send_size < 1:
            raise ValueError("limits must be positive")
        if require_auth and role is not Role.SERVER:
            raise ValueError("only the server role can require authentication")
        if codec is Codec.MSGPACK and not msgpack_available():
            raise ValueError("the MessagePack codec needs the 'msgpack' extra")
        self.role = role
        self.codec = codec
        self.max_message_size = max_message_size
        self.max_send_size = max_send_size
        self.max_depth = max_depth
        self.max_in_flight = max_in_flight
        self._state = ConnectionState.AUTHENTICATING if require_auth else ConnectionState.OPEN
        self._is_server = role is Role.SERVER
        self._sendable = ROLE_EVENTS[role][0]
        self._read = read_client_envelope if role is Role.SERVER else read_server_envelope
        # Received messages, and the index of the next to process: a list, not a
        # deque, because it is nearly always empty or holds one message, and an
        # empty deque costs 600 bytes a connection.
        self._incoming: list[str | bytes | _Gone | None] = []
        self._next = 0
        self._in_flight: dict[RequestId, str] = {}
        self._anonymous: collections.Counter[str] = collections.Counter()
        self._anonymous_total = 0
        self._subscriptions: set[RequestId] = set()
        # Error replies handed out with RemoteProtocolError, by identity: sending
        # one answers no in-flight request (a 409 for a duplicate id must not
        # answer the original request of that id).
        self._hints: dict[int, Response] = {}
        self._closed_event: ConnectionClosed | None = None

    # -- introspection -------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current state (docs/protocol.md §4)."""
        return self._state

    @property
    def in_flight(self) -> int:
        """How many requests and auth messages await their reply."""
        return len(self._in_flight) + self._anonymous_total

    def is_in_flight(self, id: RequestId) -> bool:
        """Tell whether the request of this id awaits its reply."""
        return id in self._in_flight

    def is_subscribed(self, id: RequestId) -> bool:
        """Tell whether a subscription of this id is active (notifications may use it)."""
        return id in self._subscriptions

    # -- the three verbs -----------------------------------------------------

    def receive_data(self, message: str | bytes | None, *, code: int = 1006, reason: str = "") -> None:
        """Hand over one complete WebSocket message, or say the transport is gone.

        Args:
            message: the message (str for a text frame, bytes for binary),
                or None when the transport closed.
            code, reason: with None, the close code and reason to report in
                the `ConnectionClosed` event (1006: closed without a code).

        Raises:
            LocalProtocolError: data after the transport was declared gone.
        """
        if (self._incoming and type(self._incoming[-1]) is tuple) or self._closed_event is not None:
            raise LocalProtocolError("receive_data() after the transport was declared gone")
        self._incoming.append((code, reason) if message is None else message)

    def next_event(self) -> Event | NeedData:
        """Process the next received message.

        Returns:
            The next event, or `NEED_DATA` when every message was processed.
            Once the transport is gone it returns the same `ConnectionClosed`
            every time.

        Raises:
            RemoteProtocolError: the message breaks the protocol. It is
                consumed; send `exc.event_hint` (server role) and go on.
        """
        while True:
            if self._closed_event is not None:
                return self._closed_event
            incoming = self._incoming
            if self._next == len(incoming):
                if incoming:
                    incoming.clear()
                    self._next = 0
                return NEED_DATA
            message = incoming[self._next]
            incoming[self._next] = None  # processed: not kept alive until the list drains
            self._next += 1
            if type(message) is tuple:
                return self._transport_gone(*message)
            event = self._process(message)  # type: ignore[arg-type]
            if event is not None:
                return event

    def send(self, event: Event) -> str | bytes:
        """Turn an event into what goes on the wire, updating the state.

        Args:
            event: an event this role may send in the current state.

        Returns:
            A str (text frame) or bytes (binary frame, MessagePack). Sending
            `ConnectionClosed` returns an empty str: the WebSocket layer
            sends the close frame itself.

        Raises:
            LocalProtocolError: the event may not be sent now, answers no
                request in flight, cannot be encoded, or is larger than
                `max_send_size` (the state is then unchanged).
        """
        cls = type(event)
        if cls is Response and self._is_server and not self._hints:
            # The hot path, inlined: a reply to a plain request with an id.
            next_state = TRANSITIONS.get((self._state, Response))
            id_ = event.id  # type: ignore[union-attr]
            if next_state is not None and id_ is not None and self._in_flight.get(id_) is _REQUEST:
                if self.codec is Codec.JSON and event.status < 400:  # type: ignore[union-attr]
                    # What _write_response builds for a success, without its call.
                    envelope = {
                        "type": "response",
                        "id": id_,
                        "event_name": event.event_name,  # type: ignore[union-attr]
                        "status": event.status,  # type: ignore[union-attr]
                        "data": event.data,  # type: ignore[union-attr]
                    }
                    try:
                        wire: str | bytes = orjson.dumps(envelope, default=to_plain).decode()
                    except TypeError as exc:
                        raise LocalProtocolError(f"cannot encode Response: {exc}") from None
                else:
                    wire = self._encode(event)  # may raise: nothing has changed yet
                del self._in_flight[id_]
                self._state = next_state
                return wire
        if cls not in self._sendable:
            raise LocalProtocolError(f"the {self.role.value} role cannot send {cls.__name__}")
        if cls is Response and id(event) in self._hints:
            wire = self._encode(event)
            del self._hints[id(event)]  # a rejection: it answers nothing in flight
            return wire
        if cls is ConnectionClosed:
            self._state = self._move(Trigger.CLOSE_SENT)
            return ""
        next_state = self._move(cls)
        self._check_sendable(event)
        # Encode before changing any state, so an event that cannot be encoded
        # leaves the connection as it was (its request can still be answered).
        wire = self._encode(event)
        limit = self.max_send_size
        # A character is at most 4 bytes of UTF-8: only a long text needs encoding to be measured.
        if limit is not None and len(wire) * (4 if type(wire) is str else 1) > limit:
            size = len(wire.encode("utf-8", "surrogatepass")) if type(wire) is str else len(wire)
            if size > limit:
                raise LocalProtocolError(
                    f"the {cls.__name__} is {size} bytes, more than max_send_size ({limit})"
                )
        self._state = next_state
        if cls is Response:
            self._settle(self._untrack(event.id), event)  # type: ignore[arg-type, union-attr]
        elif cls is Request:
            self._track(event.id, _SUBSCRIBE if event.method == "SUBSCRIBE" else _REQUEST)  # type: ignore[union-attr]
        elif cls is Notification:
            if event.final:  # type: ignore[union-attr]
                self._subscriptions.discard(event.id)  # type: ignore[union-attr]
        elif cls is Auth:
            self._track(event.id, _AUTH)  # type: ignore[union-attr]
        elif cls is Cancel:
            self._subscriptions.discard(event.id)  # type: ignore[union-attr]
        return wire

    def _check_sendable(self, event: Event) -> None:
        """Raise `LocalProtocolError` if `event` answers, repeats or names nothing valid."""
        cls = type(event)
        if cls is Response:
            id_ = event.id  # type: ignore[union-attr]
            owed = id_ in self._in_flight if id_ is not None else self._anonymous_total > 0
            if not owed:
                raise LocalProtocolError(f"Response for id {id_!r}, which is not in flight")
        elif cls is Request:
            if event.id is not None and event.id in self._in_flight:  # type: ignore[union-attr]
                raise LocalProtocolError(f"a request with id {event.id!r} is already in flight")  # type: ignore[union-attr]
        elif cls is Notification and event.id is not None and event.id not in self._subscriptions:  # type: ignore[union-attr]
            raise LocalProtocolError(f"Notification for id {event.id!r}, which is no active subscription")  # type: ignore[union-attr]

    # -- receiving -----------------------------------------------------------

    def _process(self, message: str | bytes) -> Event | None:
        # A message over the limit is refused before it is decoded (decoding it is
        # the cost the limit bounds), so its id cannot be read: the 413 echoes none.
        if len(message) > self.max_message_size or (
            len(message) * 4 > self.max_message_size
            and isinstance(message, str)
            and len(message.encode("utf-8", "surrogatepass")) > self.max_message_size
        ):
            raise self._reject(
                Rejection(
                    f"The message is larger than {self.max_message_size} bytes.",
                    code="too_large",
                    status=413,
                )
            )
        try:
            if self.codec is Codec.JSON or type(message) is str:
                # The 64-bit integer check scans the whole text, which costs as much as
                # parsing it; a plain request has no number it could miss, so it is skipped
                # there. Before any other rejection it runs first: a too-large integer
                # turned into a float explains the rejection best.
                value = decode_json(message, self.max_depth, check_ints=False)
                try:
                    event = self._read(value)
                except Rejection:
                    check_json_ints(message, value)
                    raise
                if type(event) is not Request or not _is_plain(event):
                    check_json_ints(message, value)
            else:
                value = decode(message, self.codec, self.max_depth)
                event = self._read(value)
        except DecodeError as exc:
            # docs/protocol.md §3: the id and event name are echoed whenever
            # they could be read, so that the client can match the reply.
            id_, name = echo(exc.value)
            raise self._reject(Rejection(exc.detail, code=exc.code, id=id_, event_name=name)) from None
        except Rejection as exc:
            raise self._reject(exc) from None
        if self._is_server:
            return self._server_received(event, type(event))
        return self._client_received(event, type(event))

    def _server_received(self, event: Any, cls: type) -> Event | None:
        state = self._state
        next_state = TRANSITIONS.get((state, cls))
        if (
            cls is Request
            and next_state is not None
            and event.method != "SUBSCRIBE"
            and event.id is not None
            and event.id not in self._in_flight
            and event.id not in self._subscriptions
            and len(self._in_flight) + self._anonymous_total < self.max_in_flight
        ):
            # The common case, a plain request with a fresh id, admitted inline.
            self._in_flight[event.id] = _REQUEST
            self._state = next_state
            return event  # type: ignore[no-any-return]
        if next_state is None:
            status, code, detail = REJECTIONS.get(
                (state, cls), (400, "invalid_state", f"{cls.__name__} is not allowed now.")
            )
            name = event.event_name if cls is Request else None
            raise self._reject(Rejection(detail, code=code, status=status, id=event.id, event_name=name))
        if cls is Request:
            self._admit(event, _SUBSCRIBE if event.method == "SUBSCRIBE" else _REQUEST)
        elif cls is Cancel:
            if event.id in self._subscriptions:
                self._subscriptions.discard(event.id)
            elif event.id not in self._in_flight:
                return None  # docs/protocol.md §2: a cancel of an unknown id is ignored
        elif cls is Auth:
            self._admit(event, _AUTH)
        self._state = next_state
        return event  # type: ignore[no-any-return]

    def _admit(self, event: Request | Auth, kind: str) -> None:
        """Track a received request, or reject it: duplicate id (409), too many (429)."""
        name = event.event_name if type(event) is Request else None
        # An active subscription keeps its id: a cancel or a notification of that id
        # must name one thing only.
        if event.id is not None and (event.id in self._in_flight or event.id in self._subscriptions):
            raise self._reject(
                Rejection(
                    f"A request or subscription with id {event.id!r} is already in flight.",
                    code="duplicate_id",
                    status=409,
                    id=event.id,
                    event_name=name,
                )
            )
        if len(self._in_flight) + self._anonymous_total >= self.max_in_flight:
            raise self._reject(
                Rejection(
                    f"More than {self.max_in_flight} requests in flight.",
                    code="too_many_requests",
                    status=429,
                    id=event.id,
                    event_name=name,
                )
            )
        self._track(event.id, kind)

    def _client_received(self, event: Any, cls: type) -> Event | None:
        if TRANSITIONS.get((self._state, cls)) is None:
            raise self._reject(Rejection(f"{cls.__name__} may not arrive in state {self._state.name}."))
        if cls is Response:
            kind = self._untrack(event.id)
            if kind is None:
                if not event.is_error:
                    raise self._reject(
                        Rejection(f"A success response for id {event.id!r}, which is not in flight.")
                    )
                # An error reply to something we never tracked (a message the
                # server could not parse): pass it on, it answers nothing.
            else:
                self._settle(kind, event)
        elif cls is Notification and event.final:
            self._subscriptions.discard(event.id)
        return event  # type: ignore[no-any-return]

    def _transport_gone(self, code: int, reason: str) -> ConnectionClosed:
        self._state = TRANSITIONS[(self._state, Trigger.TRANSPORT_GONE)]
        self._in_flight.clear()
        self._anonymous.clear()
        self._anonymous_total = 0
        self._subscriptions.clear()
        self._closed_event = ConnectionClosed(code=code if 1000 <= code <= 4999 else 1006, reason=reason)
        return self._closed_event

    def _reject(self, rejection: Rejection) -> RemoteProtocolError:
        hint = None
        if self.role is Role.SERVER:
            hint = error_response(
                rejection.id,
                rejection.event_name,
                rejection.status,
                code=rejection.code,
                detail=rejection.detail,
                errors=rejection.errors,
            )
            self._hints[id(hint)] = hint
        return RemoteProtocolError(rejection.detail, code=rejection.code, status=rejection.status, hint=hint)

    # -- in-flight bookkeeping -----------------------------------------------

    def _track(self, id_: RequestId | None, kind: str) -> None:
        if id_ is None:
            self._anonymous[kind] += 1
            self._anonymous_total += 1
        else:
            self._in_flight[id_] = kind

    def _untrack(self, id_: RequestId | None) -> str | None:
        if id_ is not None:
            return self._in_flight.pop(id_, None)
        # Replies without an id answer id-less requests, whose order is not
        # known: while the server is authenticating only an auth can be owed.
        anonymous = self._anonymous
        for kind in (_AUTH, _REQUEST) if self._state is ConnectionState.AUTHENTICATING else (_REQUEST, _AUTH):
            if anonymous[kind]:
                anonymous[kind] -= 1
                self._anonymous_total -= 1
                return kind
        return None

    def _settle(self, kind: str | None, response: Response) -> None:
        if kind is None or response.is_error:
            return
        if kind == _SUBSCRIBE:
            self._subscriptions.add(response.id)  # type: ignore[arg-type]
        elif kind == _AUTH:
            self._state = TRANSITIONS[(self._state, Trigger.AUTH_ACCEPTED)]

    def _move(self, trigger: type | Trigger) -> ConnectionState:
        next_state = TRANSITIONS.get((self._state, trigger))
        if next_state is None:
            name = trigger.__name__ if isinstance(trigger, type) else trigger.value
            raise LocalProtocolError(f"cannot send {name} in state {self._state.name}")
        return next_state

    def _encode(self, event: Event) -> str | bytes:
        try:
            if self.codec is Codec.JSON:  # inline for the hot path, as encode() does it
                return orjson.dumps(write_event(event), default=to_plain).decode()
            return encode(write_event(event), self.codec)
        except TypeError as exc:
            raise LocalProtocolError(f"cannot encode {type(event).__name__}: {exc}") from None
