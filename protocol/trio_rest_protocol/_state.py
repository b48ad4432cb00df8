"""Every state rule of a `Connection`, in one table.

A connection is OPEN, AUTHENTICATING (a server that demands in-band
credentials before anything else), CLOSING (this side has begun to close: no
new work, in-flight requests may finish) or CLOSED (the transport is gone).

`TRANSITIONS` maps ``(state, trigger)`` to the next state, where a trigger is
an event class (sent or received alike) or one of the pseudo-events of
`Trigger`. A pair missing from the table is an illegal move: `LocalProtocolError`
when our side makes it, `RemoteProtocolError` (with the reply of `REJECTIONS`)
when the peer does. docs/protocol.md §4 prints this table.
"""

from __future__ import annotations

import enum

from ._events import Auth, Cancel, ConnectionClosed, Notification, Ping, Pong, Request, Response

__all__ = ["REJECTIONS", "ROLE_EVENTS", "TRANSITIONS", "ConnectionState", "Role", "Trigger", "render_table"]


class Role(enum.Enum):
    """Which end of the socket a `Connection` speaks for."""

    CLIENT = "client"
    SERVER = "server"


class ConnectionState(enum.Enum):
    """The states of docs/protocol.md §4."""

    OPEN = "open"
    AUTHENTICATING = "authenticating"
    CLOSING = "closing"
    CLOSED = "closed"


class Trigger(enum.Enum):
    """Moves that are not a plain event crossing the wire."""

    #: The server sent (the client received) a success reply to an `Auth`.
    AUTH_ACCEPTED = "auth accepted"
    #: This side sent `ConnectionClosed`: it is closing.
    CLOSE_SENT = "close sent"
    #: The transport is gone (`receive_data(None)`).
    TRANSPORT_GONE = "transport gone"


TriggerKey = type | Trigger

_OPEN, _AUTH, _CLOSING, _CLOSED = (
    ConnectionState.OPEN,
    ConnectionState.AUTHENTICATING,
    ConnectionState.CLOSING,
    ConnectionState.CLOSED,
)

TRANSITIONS: dict[tuple[ConnectionState, TriggerKey], ConnectionState] = {
    # OPEN: everything flows.
    (_OPEN, Request): _OPEN,
    (_OPEN, Response): _OPEN,
    (_OPEN, Notification): _OPEN,
    (_OPEN, Cancel): _OPEN,
    (_OPEN, Ping): _OPEN,
    (_OPEN, Pong): _OPEN,
    (_OPEN, Auth): _OPEN,  # a fresh token before the old one expires
    (_OPEN, Trigger.AUTH_ACCEPTED): _OPEN,
    (_OPEN, Trigger.CLOSE_SENT): _CLOSING,
    (_OPEN, Trigger.TRANSPORT_GONE): _CLOSED,
    # AUTHENTICATING: only credentials, pings, and the replies to them.
    (_AUTH, Auth): _AUTH,
    (_AUTH, Response): _AUTH,
    (_AUTH, Cancel): _AUTH,
    (_AUTH, Ping): _AUTH,
    (_AUTH, Pong): _AUTH,
    (_AUTH, Trigger.AUTH_ACCEPTED): _OPEN,
    (_AUTH, Trigger.CLOSE_SENT): _CLOSING,
    (_AUTH, Trigger.TRANSPORT_GONE): _CLOSED,
    # CLOSING: no new work; what is in flight is answered, queued pushes drain.
    (_CLOSING, Response): _CLOSING,
    (_CLOSING, Notification): _CLOSING,
    (_CLOSING, Cancel): _CLOSING,
    (_CLOSING, Ping): _CLOSING,
    (_CLOSING, Pong): _CLOSING,
    (_CLOSING, Trigger.AUTH_ACCEPTED): _CLOSING,
    (_CLOSING, Trigger.CLOSE_SENT): _CLOSING,
    (_CLOSING, Trigger.TRANSPORT_GONE): _CLOSED,
    # CLOSED: nothing but the news, again.
    (_CLOSED, Trigger.TRANSPORT_GONE): _CLOSED,
}

#: The reply a server gives to a message the table forbids in its state:
#: (state, event class) -> (status, code, detail).
REJECTIONS: dict[tuple[ConnectionState, type], tuple[int, str, str]] = {
    (_AUTH, Request): (401, "not_authenticated", "Send an auth message first."),
    (_CLOSING, Request): (503, "closing", "The server is closing this connection."),
    (_CLOSING, Auth): (503, "closing", "The server is closing this connection."),
}

#: What each role may send and receive.
ROLE_EVENTS: dict[Role, tuple[frozenset[type], frozenset[type]]] = {
    Role.SERVER: (
        frozenset({Response, Notification, Pong, ConnectionClosed}),
        frozenset({Request, Cancel, Ping, Auth}),
    ),
    Role.CLIENT: (
        frozenset({Request, Cancel, Ping, Auth, ConnectionClosed}),
        frozenset({Response, Notification, Pong}),
    ),
}


def render_table() -> str:
    """Render `TRANSITIONS` as the Markdown table of docs/protocol.md §4."""
    triggers: list[TriggerKey] = []
    for _, trigger in TRANSITIONS:
        if trigger not in triggers:
            triggers.append(trigger)

    def label(trigger: TriggerKey) -> str:
        return trigger.__name__ if isinstance(trigger, type) else trigger.value

    lines = [
        "| state | " + " | ".join(label(t) for t in triggers) + " |",
        "|---|" + "---|" * len(triggers),
    ]
    for state in ConnectionState:
        cells = []
        for trigger in triggers:
            target = TRANSITIONS.get((state, trigger))
            rejection = REJECTIONS.get((state, trigger)) if isinstance(trigger, type) else None
            if target is not None:
                cells.append(target.value if target is not state else "=")
            elif rejection is not None:
                cells.append(f"{rejection[0]} {rejection[1]}")
            else:
                cells.append("-")
        lines.append(f"| {state.value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
