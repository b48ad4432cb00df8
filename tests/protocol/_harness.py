"""A small harness that pushes events between a client and a server `Connection`."""

from __future__ import annotations

from trio_rest_protocol import NEED_DATA, Codec, Connection, Event, Role


def pair(codec: Codec = Codec.JSON, **server_options: object) -> tuple[Connection, Connection]:
    """A (client, server) pair of connections speaking `codec`."""
    return Connection(Role.CLIENT, codec=codec), Connection(Role.SERVER, codec=codec, **server_options)  # type: ignore[arg-type]


def deliver(sender: Connection, receiver: Connection, event: Event) -> list[Event]:
    """Send `event` from `sender`, feed the wire to `receiver`, return what it read."""
    wire = sender.send(event)
    if wire:
        receiver.receive_data(wire)
    return drain(receiver)


def drain(conn: Connection) -> list[Event]:
    """Every event `conn` has ready."""
    events: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if type(event).__name__ == "ConnectionClosed":
            return events
