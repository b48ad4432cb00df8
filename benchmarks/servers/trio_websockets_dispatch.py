"""Trio + the websockets sans-IO protocol + the hand-written dispatch: trio-rest's parts, no framework.

One task per connection reads from a `trio.SocketStream`, feeds
``websockets.server.ServerProtocol`` (its own HTTP parser, handshake, frame
parser and C masking), answers each text message with `_dispatch.handle`
(orjson, the same dict dispatch as the asyncio rows) and writes everything
the protocol queued with one ``send_all`` per read. No request queue, no
worker, no deadline, no back-pressure, no JSON validation beyond the
dispatch's: the least a server built from trio-rest's own parts costs per
request. What trio-rest costs above this row is its framework; what this row
costs above the bare Trio echo is the websockets library and JSON.
"""

from __future__ import annotations

import functools

import trio
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from ._common import parse_address
from ._dispatch import handle


async def serve_one(stream: trio.SocketStream) -> None:
    """Upgrade, then answer every text message until the close handshake ends."""
    proto = ServerProtocol()
    async with stream:
        while proto.state is not State.CLOSED:
            data = await stream.receive_some(65536)
            if data:
                proto.receive_data(data)
            else:
                proto.receive_eof()
            for event in proto.events_received():
                if isinstance(event, Request):
                    proto.send_response(proto.accept(event))
                elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    proto.send_text(handle(bytes(event.data)).encode())
            out = proto.data_to_send()
            if out:
                try:
                    await stream.send_all(b"".join(out))
                except trio.BrokenResourceError:
                    return
            if not data or proto.eof_sent:
                return


def main() -> None:
    """Serve until killed."""
    host, port = parse_address(__doc__)
    trio.run(functools.partial(trio.serve_tcp, serve_one, port, host=host))


if __name__ == "__main__":
    main()
