"""Turn an event into the dict that goes on the wire (docs/protocol.md §2).

Optional keys are left out when they hold their default, so that reading a
written event gives back an equal event, and messages stay small.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._events import Auth, Cancel, Notification, Ping, Pong, Request, Response

__all__ = ["write_event"]


def _write_request(event: Request) -> dict[str, Any]:
    out: dict[str, Any] = {"method": event.method, "url": event.url}
    if event.args:
        out["args"] = event.args
    if event.data is not None:
        out["data"] = event.data
    if event.event_name is not None:
        out["event_name"] = event.event_name
    if event.id is not None:
        out["id"] = event.id
    if event.timeout is not None:
        out["timeout"] = event.timeout
    if event.extras:
        out.update(event.extras)
    return out


def _write_response(event: Response) -> dict[str, Any]:
    # aiorest-ws clients read `data` and `event_name` on success and `detail`
    # on error, so both keys are always present where they expect them.
    out: dict[str, Any] = {
        "type": "response",
        "id": event.id,
        "event_name": event.event_name,
        "status": event.status,
    }
    if event.status < 400:
        out["data"] = event.data
        return out
    if event.data is not None:
        out["data"] = event.data
    out["code"] = event.code
    out["detail"] = event.detail
    if event.errors is not None:
        out["errors"] = event.errors
    return out


def _write_notification(event: Notification) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "notification"}
    if event.id is not None:
        out["id"] = event.id
    out["event_name"] = event.event_name
    if event.topic is not None:
        out["topic"] = event.topic
    if event.seq is not None:
        out["seq"] = event.seq
    out["data"] = event.data
    if event.final:
        out["final"] = True
    if event.offset is not None:
        out["offset"] = event.offset
        out["epoch"] = event.epoch
    return out


def _write_cancel(event: Cancel) -> dict[str, Any]:
    return {"type": "cancel", "id": event.id}


def _write_ping(event: Ping) -> dict[str, Any]:
    return {"type": "ping"} if event.id is None else {"type": "ping", "id": event.id}


def _write_pong(event: Pong) -> dict[str, Any]:
    return {"type": "pong", "id": event.id}


def _write_auth(event: Auth) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "auth", "token": event.token}
    if event.id is not None:
        out["id"] = event.id
    return out


_WRITERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    Request: _write_request,
    Response: _write_response,
    Notification: _write_notification,
    Cancel: _write_cancel,
    Ping: _write_ping,
    Pong: _write_pong,
    Auth: _write_auth,
}


def write_event(event: Any) -> dict[str, Any]:
    """Return the wire dict of an event.

    Args:
        event: any event but `ConnectionClosed` (which puts nothing on the wire).

    Returns:
        The envelope as a dict, ready for a codec.
    """
    return _WRITERS[type(event)](event)
