"""Idempotent retries: a write sent again with the same key is answered, not run, again.

A request may carry an idempotency key: a top-level ``"idempotency_key"`` in its envelope
(a client's random string). For a write (POST, PUT, PATCH, DELETE), the first request with
a key runs, and its reply is remembered for `Settings.idempotency_ttl` seconds, by the user
its credentials name and the key; a request with the same key after it gets the same reply
without running the view. That is how a client that lost its connection before the reply
re-sends a write without writing twice (the Python client does it on its own).

Rules:

1. Only replies that say what happened are remembered: successes and errors below 500.
   A 5xx, a cancel or a timeout is not: the retry runs.
2. A retry that names the same key for another request (another method, path or body) is
   refused with 409 ``idempotency_conflict``.
3. While the first request with a key runs in this process, a retry with the same key
   waits for it, then gets its reply (`_running` holds one event per running key).
4. The remembered replies live in the App's broker (`Broker.recall` / `remember`): in
   memory, bounded in count, or in Redis, shared by every process and machine.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
import trio
from trio_rest_protocol import to_plain

from ._errors import APIError, BadRequestError, ConflictError
from ._request import Response

if TYPE_CHECKING:
    from ._app import App
    from ._jobs import Job

__all__ = ["KEY", "WRITES", "Idempotency"]

log = logging.getLogger("trio_rest")

#: The envelope's key that carries it.
KEY = "idempotency_key"
#: The methods it applies to.
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The longest key taken.
MAX_KEY_LENGTH = 200


class Idempotency:
    """The App's idempotent writes: which keys run now (rule 3), and where replies are kept."""

    __slots__ = ("_app", "_running")

    def __init__(self, app: App) -> None:
        self._app = app
        self._running: dict[str, trio.Event] = {}

    async def run(self, job: Job, key: Any, call: Callable[[Job], Awaitable[Any]]) -> Any:
        """Run `job` through `call` once for `key`; a retry gets the first one's outcome.

        Raises:
            BadRequestError: the key is not a non-empty string of at most 200 characters.
            ConflictError: the key was used for another request (rule 2).
            APIError: the view's, or the remembered one.
        """
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
            raise BadRequestError(
                f"{KEY} must be a string of 1 to {MAX_KEY_LENGTH} characters.", code="invalid_idempotency_key"
            )
        request = job.request
        scope = f"idempotency:{request.connection.subject or ''}:{key}"
        fingerprint = _fingerprint(request.method, request.path, request.data)
        while (running := self._running.get(scope)) is not None:
            await running.wait()  # rule 3
        remembered = await self._recall(scope)
        if remembered is not None:
            return _replay(remembered, fingerprint)
        done = self._running[scope] = trio.Event()
        try:
            try:
                result = await call(job)
            except APIError as exc:
                if exc.status < 500:  # rule 1
                    reply = {
                        "status": exc.status,
                        "code": exc.code,
                        "detail": exc.detail,
                        "errors": exc.errors,
                    }
                    await self._remember(scope, fingerprint, reply)
                raise
            if type(result) is Response:
                reply = {"status": result.status, "data": result.data}
            else:
                reply = {"status": 200, "data": result}
            await self._remember(scope, fingerprint, reply)
            return result
        finally:
            del self._running[scope]
            done.set()

    async def _recall(self, scope: str) -> dict[str, Any] | None:
        try:
            stored = await self._app.broker.recall(scope)
        except Exception as exc:  # the broker is away: the write runs (the client asked for it)
            log.warning("an idempotency key could not be looked up: %s", exc)
            return None
        return orjson.loads(stored) if stored is not None else None

    async def _remember(self, scope: str, fingerprint: str, reply: dict[str, Any]) -> None:
        try:
            value = orjson.dumps({**reply, "fingerprint": fingerprint}, default=to_plain)
        except TypeError:
            return  # a reply the protocol could not send either: nothing to replay
        try:
            await self._app.broker.remember(scope, value, self._app.settings.idempotency_ttl)
        except Exception as exc:
            log.warning("an idempotent reply could not be remembered: %s", exc)

    def check_invariants(self) -> None:
        """Raise `AssertionError` if rule 3 is broken: a finished key still marked running."""
        for scope, event in self._running.items():
            assert not event.is_set(), f"rule 3: {scope} finished and still running"


def _fingerprint(method: str, path: str, data: Any) -> str:
    try:
        body = orjson.dumps([method, path, data], default=to_plain, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        body = repr((method, path, data)).encode()
    return hashlib.sha256(body).hexdigest()


def _replay(remembered: dict[str, Any], fingerprint: str) -> Any:
    if remembered.get("fingerprint") != fingerprint:
        raise ConflictError(f"This {KEY} was used for another request.", code="idempotency_conflict")
    status = remembered["status"]
    if status >= 400:
        raise APIError(
            remembered.get("detail"),
            status=status,
            code=remembered.get("code"),
            errors=remembered.get("errors"),
        )
    return Response(remembered.get("data"), status=status)
