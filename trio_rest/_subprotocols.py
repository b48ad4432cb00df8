"""The WebSocket subprotocols the server speaks, and the codec each one means.

Their names are the values of the protocol's ``Codec`` enum; the server and the client both
look them up here.
"""

from __future__ import annotations

from trio_rest_protocol import Codec, msgpack_available

__all__ = ["SUBPROTOCOLS", "choose_subprotocol"]

SUBPROTOCOLS: dict[str, Codec] = {codec.value: codec for codec in Codec}


def choose_subprotocol(offered: tuple[str, ...]) -> tuple[str | None, Codec]:
    """Pick the first subprotocol the client offered that we speak.

    Args:
        offered: the client's subprotocols, in its order of preference.

    Returns:
        The subprotocol to answer with (None when none was offered or known)
        and the codec it means. MessagePack is only chosen when its optional
        extra is installed.
    """
    for name in offered:
        codec = SUBPROTOCOLS.get(name)
        if codec is not None and (codec is Codec.JSON or msgpack_available()):
            return name, codec
    return None, Codec.JSON
