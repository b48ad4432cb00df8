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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio
from trio_rest_protocol import Notification
from trio_rest_protocol import Response as ProtocolResponse

if TYPE_CHECKING:
    from ._connection import ServerConnection

__all__ = ["Subscription"]


class Subscription:
    """The notifications of one SUBSCRIBE request.

    Attributes:
        id: the SUBSCRIBE request's id, which every notification carries.
        path: the request's path, the default topic.
        accepted: the 200 has been sent.
        seq: the sequence number of the last notification sent (0 before the first).
        ended: the subscription is over.
    """

    __slots__ = ("_accept", "accepted", "connection", "ended", "id", "path", "seq")

    def __init__(
        self,
        connection: ServerConnection,
        id: str | int | None,
        path: str,
        accept: Callable[[Any], None],
    ) -> None:
        self.connection = connection
        self.id = id
        self.path = path
        self._accept = accept  # sends the 200 and lets the request's worker leave the pool
        self.accepted = False
        self.seq = 0
        self.ended = False

    async def accept(self, data: Any = None) -> None:
        """Answer the SUBSCRIBE request with 200, starting the subscription.

        Notifying accepts implicitly; call this to send a body with the 200. Calling it
        again does nothing.

        Args:
            data: the 200 reply's body.
        """
        await trio.lowlevel.checkpoint()
        self._accept_nowait(data)

    def _accept_nowait(self, data: Any) -> None:
        if not self.accepted:
            self.accepted = True
            self._accept(data)

    async def notify(
        self, data: Any = None, *, event_name: str | None = None, topic: str | None = None
    ) -> int:
        """Send one notification (accepting the subscription first if needed).

        Args:
            data: the notification's body.
            event_name: names the kind of notification (``"user.updated"``).
            topic: what it is about (defaults to the request's path).

        Returns:
            The notification's sequence number, from 1.
        """
        await trio.lowlevel.checkpoint()
        self._accept_nowait(None)
        self.seq += 1
        if self.id is not None and not self.ended:
            self.connection.send_event(
                Notification(
                    id=self.id, event_name=event_name, topic=topic or self.path, seq=self.seq, data=data
                )
            )
        return self.seq

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
        if self.id is None or not self.connection.is_subscribed(self.id):
            return  # the client cancelled it: it expects nothing more
        if error is not None:
            result = {
                "status": error.status,
                "code": error.code,
                "detail": error.detail,
                "errors": error.errors,
            }
        self.connection.send_event(
            Notification(
                id=self.id,
                event_name="error" if error is not None else None,
                topic=self.path,
                seq=self.seq + 1,
                data=result,
                final=True,
            )
        )
