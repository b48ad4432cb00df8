"""A client and a server `Connection` talking, with no event loop and no socket.

python -m examples.protocol_exchange
"""

from __future__ import annotations

from trio_rest_protocol import NEED_DATA, Connection, RemoteProtocolError, Request, Role


def main() -> list[str]:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    wire: list[str] = []

    def to_server(message: str | bytes) -> None:
        wire.append(f"> {message!s}")
        server.receive_data(message)
        while (event := _next(server)) is not NEED_DATA:
            if isinstance(event, Request):
                reply = server.send(event.response(data={"id": 6, "name": "Ada"}))
            else:
                reply = server.send(event)  # an error reply from a RemoteProtocolError
            wire.append(f"< {reply!s}")
            client.receive_data(reply)

    def _next(conn: Connection) -> object:
        try:
            return conn.next_event()
        except RemoteProtocolError as exc:
            return exc.event_hint

    to_server(client.send(Request(method="GET", url="/user/6", id=1, event_name="get-user")))
    to_server('{"method": "GET", "url": "user/6", "id": 2}')
    for line in wire:
        print(line)
    return wire


if __name__ == "__main__":
    main()
