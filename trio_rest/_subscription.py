"""`Subscription`: one SUBSCRIBE request's stream of notifications.

A SUBSCRIBE handler gets it as ``request.subscription`` (``request.accept()`` and
``request.notify()`` are shortcuts). It owns what the stream needs, and reaches the
connection only through its public methods (`ServerConnection.send_event`,
`ServerConnection.is_subscribed`).

Rules:

1. The 200 goes first: `accepted` turns true once, when the reply is queued, and no
   notification is sent before it.
2. `seq` counts the notifications sent, from 1, without gaps; the final notification
   (when the server ends the subscription) carries ``seq + 1``.
3. Once `ended`, nothing more is sent; a subscription the client cancelled sends nothing
   more either (the client expects nothing).
4. It follows its topics (`follow`) until it ends or its request leaves the pool: then it
   has left them all.
5. A message published to a followed topic is sent only if every object permission of
   the request's view lets the request see what it is about (`Published.obj`, else its
   data); a permission that fails counts as a refusal.
6. While it reads a topic's history for a client that recovers, the live messages of that
   topic wait in `_recovering`; then the recovery notice, the history and those of the
   waiting ones past the history go out, in that order. From then on `_sent` holds the
   last position sent in that topic, and a message at or before it (in its epoch) is never
   sent again, so no message goes twice, whatever order a broker delivers in.
7. A subscription that recovers is accepted (its 200 queued) only once it has read where
   the topic is: whatever is published after the client received the 200 lies past that
   position, and reaches it. (Accepted before, a message published between the 200 and
   the read would count as already seen, and be lost.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio
from trio_rest_protocol import Codec, LocalProtocolError, Notification
from trio_rest_protocol import Response as ProtocolResponse

from ._broker import Position
from ._errors import ValidationError
from .auth._permissions import BasePermission

if TYPE_CHECKING:
    from ._broker import Published
    from ._connection import ServerConnection
    from ._request import Request

__all__ = ["Subscription"]

log = logging.getLogger("trio_rest")


class Subscription:
    """The notifications of one SUBSCRIBE request.

    Attributes:
        id: the SUBSCRIBE request's id, which every notification carries.
        path: the request's path, the default topic.
        accepted: the 200 has been sent.
        seq: the sequence number of the last notification sent (0 before the first).
        ended: the subscription is over.
    """

    __slots__ = (
        "_accept",
        "_checks",
        "_recovering",
        "_request",
        "_sent",
        "accepted",
        "connection",
        "ended",
        "id",
        "path",
        "seq",
    )

    def __init__(
        self,
        connection: ServerConnection,
        id: str | int | None,
        path: str,
        accept: Callable[[Any], bool],
        request: Request | None = None,
    ) -> None:
        self.connection = connection
        self.id = id
        self.path = path
        # Sends the 200 and lets the request's worker leave the pool; false when the
        # request was answered already (the connection is closing).
        self._accept = accept
        self.accepted = False
        self.seq = 0
        self.ended = False
        self._request = request  # its view's object permissions filter what it follows
        self._checks: tuple[BasePermission, ...] = ()
        self._recovering: dict[str, list[Published]] = {}  # topic -> live messages held back
        self._sent: dict[str, Position] = {}  # topic -> the last position sent, once it recovered

    async def accept(self, data: Any = None) -> None:
        """Answer the SUBSCRIBE request with 200, starting the subscription.

        Notifying accepts implicitly; call this to send a body with the 200. Calling it
        again does nothing.

        Args:
            data: the 200 reply's body.
        """
        await trio.lowlevel.checkpoint()
        self._accept_nowait(data)

    def close(self) -> None:
        """Its request has left the pool: from now on it cannot be accepted.

        It lets go of the pool's callback, so that a finished request is freed at once,
        and leaves the topics it follows.
        """
        self._accept = _too_late
        self._request, self._checks = None, ()
        self.connection.app.broker.leave_all(self)

    async def follow(self, topic: str) -> None:
        """Receive what the App publishes to `topic` as this subscription's notifications.

        Each carries the subscription's id and the next `seq`, so the client can tell it
        missed nothing, and the message's `offset` and `epoch` in the topic's history; the
        subscription accepts first if it had not. It follows the topic until it ends (the
        handler returns, the client cancels, the connection closes), so a handler that only
        follows topics waits with ``await trio.sleep_forever()``.

        A client that asks for recovery (``args.since``, see docs/protocol.md) first gets
        a ``"recovery"`` notification for the topic, whose data says whether what it missed
        since its position follows (``{"recovered": true}``) and whose offset and epoch are
        the topic's position now, then the missed messages, then the live ones, none twice
        (rule 6).

        What is published there is checked against the object permissions of the
        request's view (``has_object_permission(request, obj)``, rule 5): a user who may
        not see an object never receives it.

        Raises:
            ValidationError: ``args.since`` is not a mapping of topics to positions.
        """
        await trio.lowlevel.checkpoint()
        positions = self._positions()
        if positions is None:
            self._accept_nowait(None)
        if self.ended:
            return
        request = self._request
        if request is not None:  # the view's permissions are settled once it runs
            self._checks = tuple(
                permission
                for permission in request.permissions
                if isinstance(permission, BasePermission)
                and type(permission).has_object_permission is not BasePermission.has_object_permission
            )
        broker = self.connection.app.broker
        if positions is None:
            broker.join(topic, self)
            return
        since = positions.get(topic)
        # Live messages wait here while the history is read, so that none comes twice or early.
        waiting: list[Published] = []
        self._recovering[topic] = waiting
        try:
            broker.join(topic, self)
            recovery = await broker.history(topic, since)
        finally:
            del self._recovering[topic]
        # Accepted only now that its position is read (rule 7).
        self._accept_nowait(None)
        if self.ended:
            broker.leave(topic, self)
            return
        position = recovery.position
        self._send(
            Notification(
                id=self.id,
                event_name="recovery",
                topic=topic,
                seq=self.seq + 1,
                data={"recovered": recovery.recovered},
                offset=position.offset,
                epoch=position.epoch,
            )
        )
        # From now on, what reaches this subscription at or before what it sent is dropped:
        # a broker across processes may deliver live what the history already gave (rule 6).
        start = since.offset if since is not None and since.epoch == position.epoch else position.offset
        self._sent[topic] = Position(position.epoch, start)
        for message in recovery.messages:
            self.deliver(message)
        self._sent[topic] = position
        for message in waiting:
            self.deliver(message)

    def _positions(self) -> dict[str, Position] | None:
        """``args.since``: the positions the client last saw, by topic (None: it asks for no recovery)."""
        request = self._request
        since = request.args.get("since") if request is not None else None
        if since is None:
            return None
        if not isinstance(since, Mapping):
            raise ValidationError(errors={"since": ["Must map topics to {'epoch', 'offset'}."]})
        positions: dict[str, Position] = {}
        for topic, value in since.items():
            epoch = value.get("epoch") if isinstance(value, Mapping) else None
            offset = value.get("offset") if isinstance(value, Mapping) else None
            if not isinstance(epoch, str) or type(offset) is not int or offset < 0:
                raise ValidationError(
                    errors={"since": [f"{topic}: expected {{'epoch': str, 'offset': int}}."]}
                )
            positions[topic] = Position(epoch, offset)
        return positions

    def deliver(self, message: Published) -> bool:
        """A message published to a followed topic (a broker's call): send it as ours."""
        connection = self.connection
        topic = message.topic
        waiting = self._recovering.get(topic)
        if waiting is not None and not self.ended:
            # Sent once the history is (`follow`): before the 200 too, since a subscription
            # that recovers is accepted only then (rule 7).
            waiting.append(message)
            return True
        if self.ended or self.id is None or not connection.is_subscribed(self.id):
            connection.app.broker.leave_all(self)  # over: stop following
            return False
        sent = self._sent.get(topic) if self._sent else None
        if sent is not None and message.offset is not None:
            if message.epoch == sent.epoch and message.offset <= sent.offset:
                return False  # sent already, from the history
            self._sent[topic] = Position(message.epoch or "", message.offset)
        if self._checks and not self._allowed(message):
            return False
        data = message.fragment if connection.codec is Codec.JSON else message.data
        return self._send(
            Notification(
                id=self.id,
                event_name=message.event_name,
                topic=message.topic,
                seq=self.seq + 1,
                data=data,
                offset=message.offset,
                epoch=message.epoch,
            )
        )

    def _send(self, notification: Notification) -> bool:
        try:
            sent = self.connection.send_event(notification)
        except LocalProtocolError:  # larger than the protocol may send
            log.warning(
                "subscription %r: a notification to %r could not be sent", self.id, notification.topic
            )
            return False
        if sent:
            self.seq = notification.seq  # type: ignore[assignment]
        return sent

    def _allowed(self, message: Published) -> bool:
        request = self._request
        obj = message.data if message.obj is None else message.obj
        for permission in self._checks:
            try:
                if not permission.has_object_permission(request, obj):  # type: ignore[arg-type]
                    return False
            except Exception:
                log.exception("subscription %r: %s failed on %r", self.id, type(permission).__name__, message)
                return False
        return True

    def _accept_nowait(self, data: Any) -> None:
        if not self.accepted and not self.ended:
            if self._accept(data):
                self.accepted = True
            else:
                self.ended = True  # too late: the request was answered, nothing starts

    async def notify(
        self, data: Any = None, *, event_name: str | None = None, topic: str | None = None
    ) -> int:
        """Send one notification (accepting the subscription first if needed).

        Args:
            data: the notification's body.
            event_name: names the kind of notification (``"user.updated"``).
            topic: what it is about (defaults to the request's path).

        Returns:
            The notification's sequence number, from 1 (the last one sent, when the
            subscription is over or the client cancelled it).

        Raises:
            LocalProtocolError: `data` cannot be encoded (nothing was sent).
        """
        await trio.lowlevel.checkpoint()
        self._accept_nowait(None)
        if self.ended or self.id is None or not self.connection.is_subscribed(self.id):
            return self.seq  # over, or cancelled by the client: it expects nothing more
        seq = self.seq + 1
        # Raises (into the view) when it cannot be encoded; counted only once sent (rule 2).
        self.connection.send_event(
            Notification(id=self.id, event_name=event_name, topic=topic or self.path, seq=seq, data=data)
        )
        self.seq = seq
        return seq

    def end(self, result: Any, error: ProtocolResponse | None) -> None:
        """End the subscription from the server's side with a final notification.

        Args:
            result: the handler's return value, the final notification's body.
            error: when the handler failed, the error it would have been answered
                with; the final notification then carries it, with event name ``"error"``.
        """
        if self.ended:
            return
        self.ended = True
        self.connection.app.broker.leave_all(self)
        if self.id is None or not self.connection.is_subscribed(self.id):
            return  # the client cancelled it: it expects nothing more
        if error is not None:
            result = _error_body(error)
        try:
            self._send_final(result, error is not None)
        except LocalProtocolError:  # the handler's result cannot be encoded
            log.exception("the final notification of subscription %r could not be sent", self.id)
            detail = "The server could not encode the notification."
            self._send_final(
                {"status": 500, "code": "internal_error", "detail": detail, "errors": None}, True
            )

    def _send_final(self, data: Any, error: bool) -> None:
        self.connection.send_event(
            Notification(
                id=self.id,
                event_name="error" if error else None,
                topic=self.path,
                seq=self.seq + 1,
                data=data,
                final=True,
            )
        )


def _too_late(data: Any) -> bool:
    return False


def _error_body(error: ProtocolResponse) -> dict[str, Any]:
    return {"status": error.status, "code": error.code, "detail": error.detail, "errors": error.errors}
