"""`RedisBroker`: topics across processes and machines, through one Redis server.

Publishing runs one Lua script, atomically: the topic's next offset (``HINCRBY`` on its
meta hash, whose ``epoch`` field names the history and is made anew when the hash is
missing), an ``XADD`` to the topic's stream with that offset as the entry's id, trimmed
to about `history_size` entries, both keys' expiry pushed to `history_ttl`, and a
``PUBLISH`` of the message with its offset and epoch. Live delivery rides pub/sub: each
process holds one pattern subscription and hands each message to the members of its
topic here, synchronously, into their bounded queues, so that coredis's own buffer never
grows. History rides the streams: a subscriber that recovers (`history`), and this process
when it sees a gap in a topic's offsets or comes back after an outage, reads the missing
entries with ``XRANGE``.

When Redis cannot be reached, the members of every topic get an ``"interrupted"``
notification; the broker reconnects with exponential backoff; once subscribed again, it
reads what each topic missed meanwhile, delivers it, and tells the members
``"resumed"`` with ``{"recovered": true}``, or ``false`` when that could not be recovered
(Redis restarted without its data: a new epoch). A publish meanwhile raises
`BrokerUnavailableError` to its caller: nothing vanishes silently.

Rules (`check_invariants` raises `AssertionError` when one is broken):

1. The members are those of `Members` (its rules 1 and 2).
2. For each topic with members here, `last` holds the position of the last message
   delivered here; a message at or before it is never delivered again, and one past the
   next offset is delivered only after those between (read from the stream), in order.
3. Topics without members here hold no position.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import trio
from trio_rest_protocol import LocalProtocolError, to_plain

from .._broker import (
    Member,
    Position,
    Published,
    Recovery,
    TopicMembers,
    new_epoch,
    recovery_after,
    require_positive,
)
from .._errors import BrokerUnavailableError, ConfigurationError

__all__ = ["RedisBroker"]

log = logging.getLogger("trio_rest.broker")

# Both scripts first find the topic's epoch, and start a new history (a new epoch, an empty
# stream) when its meta hash is gone. KEYS: meta, stream. ARGV[3]: a new epoch, ARGV[4]: the
# history's ttl (seconds).
_EPOCH = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
"""

# ARGV: channel, body, a new epoch, history ttl, history size. Returns {offset, epoch, receivers}.
_PUBLISH = (
    _EPOCH
    + """
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], offset .. '-0', 'b', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
local receivers = redis.call('PUBLISH', ARGV[1], offset .. ':' .. epoch .. ':' .. ARGV[2])
return {offset, epoch, receivers}
"""
)

# ARGV: first offset wanted, (unused), a new epoch, history ttl. Returns {offset, epoch,
# entries}: the position now, and every entry from the first wanted (the stream holds about
# `history_size` of them: MAXLEN ~ keeps whole nodes).
_HISTORY = (
    _EPOCH
    + """
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset'))
local entries = {}
if tonumber(ARGV[1]) <= offset then
  entries = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+')
end
return {offset, epoch, entries}
"""
)

try:  # an optional extra: pip install trio-rest[redis]
    import coredis
    from coredis.exceptions import ConnectionError as RedisConnectionError
    from coredis.exceptions import RedisError
    from coredis.retry import NoRetryPolicy
    from coredis.tokens import PureToken
except ImportError:  # pragma: no cover - exercised only without the extra
    coredis = None  # type: ignore[assignment]
    RedisError = OSError  # type: ignore[misc,assignment]  # never raised: nothing runs without coredis

#: Seconds a command to Redis may take before the connection is taken for lost.
_COMMAND_TIMEOUT = 10.0

#: Objects kept for messages published here that have not come back yet, at most.
_MAX_OBJECTS = 10_000

_LOST: tuple[type[BaseException], ...] = (OSError, TimeoutError) + (
    (RedisConnectionError,) if coredis is not None else ()
)


class RedisBroker(TopicMembers):
    """Topics through Redis (5 or newer; streams and Lua), for processes on any machine.

    For a topic ``T`` it uses the hash ``{prefix}:meta:T`` (``epoch``, ``offset``), the stream
    ``{prefix}:stream:T`` (entries ``OFFSET-0`` with field ``b``: the event name as JSON, a
    newline, the data as JSON) and the channel ``{prefix}:ch:T`` (``OFFSET:EPOCH:`` then the
    entry's ``b``).

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS).
        prefix: the start of every key and channel this broker uses, so that apps can
            share a Redis server.
        history_size: entries kept per topic's stream, about (100).
        history_ttl: seconds a topic's history outlives its last publish (300).
        max_backoff: the longest wait between two attempts to reconnect, in seconds.
        connect_timeout: seconds to connect to Redis, per attempt.
        receive: hold the subscription that delivers to this process's members; False
            for a process that only publishes (a script, a job queue's worker).
        presence_ttl: seconds a client's presence outlives its process, if the process
            dies without removing it (30); pushed back every third of it while alive.

    Raises:
        ConfigurationError: coredis is not installed, or the URL is not Redis's.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "trio-rest",
        history_size: int = 100,
        history_ttl: float = 300.0,
        max_backoff: float = 5.0,
        connect_timeout: float = 2.0,
        receive: bool = True,
        presence_ttl: float = 30.0,
    ) -> None:
        if coredis is None:
            raise ConfigurationError("RedisBroker needs coredis: pip install 'trio-rest[redis]'")
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(f"RedisBroker: {url!r} is not a redis:// URL")
        require_positive("RedisBroker", history_size=history_size, history_ttl=history_ttl)
        self.url = url
        self.prefix = prefix
        self.history_size = int(history_size)
        self.history_ttl = max(1, round(history_ttl))
        self.max_backoff = max_backoff
        self._client = coredis.Redis.from_url(
            url, decode_responses=False, connect_timeout=connect_timeout, stream_timeout=_COMMAND_TIMEOUT
        )
        super().__init__()
        #: The position of the last message delivered here, per topic with members (rule 2).
        self.last: dict[str, Position] = {}
        #: Redis is reachable and this process receives what is published.
        self.connected = False
        self._publish_script: Any = None
        self._history_script: Any = None
        self.outages = 0
        self._entered = 0  # how many blocks run it (`running`)
        self._present: dict[tuple[str, str], bytes] = {}  # (topic, client) -> info, this process's
        #: What this process's messages are about, until they come back (`publish`).
        self._objects: dict[tuple[str, str | None, int | None], Any] = {}
        self.receive = receive
        self.presence_ttl = presence_ttl

    # -- members -------------------------------------------------------------------

    def leave(self, topic: str, member: Member) -> None:
        if self._members.leave(topic, member):
            self.last.pop(topic, None)  # rule 3

    # -- keys ------------------------------------------------------------------------

    def _channel(self, topic: str) -> str:
        return f"{self.prefix}:ch:{topic}"

    def _keys(self, topic: str) -> list[str]:
        return [f"{self.prefix}:meta:{topic}", f"{self.prefix}:stream:{topic}"]

    # -- publishing and history ---------------------------------------------------------

    async def publish(self, message: Published) -> int:
        """Publish through Redis; members here get it from the subscription, like everyone's.

        Returns:
            How many processes received it (Redis's subscribers of its channel).

        Raises:
            BrokerUnavailableError: Redis cannot be reached (nothing was published).
        """
        body = orjson.dumps(message.event_name) + b"\n" + message.encoded
        args = [self._channel(message.topic), body, new_epoch(), self.history_ttl, self.history_size]
        offset, epoch, receivers = await self._call("_publish_script", self._keys(message.topic), args)
        message.stamp(_text(epoch), int(offset))
        if message.obj is not None and self.receive:
            # What it is about, for this process's subscribers' permissions (it cannot cross
            # processes: the others check the data). It usually arrives back at once.
            objects = self._objects
            objects[(message.topic, message.epoch, message.offset)] = message.obj
            while len(objects) > _MAX_OBJECTS:
                del objects[next(iter(objects))]
        return int(receivers)

    async def history(self, topic: str, since: Position | None) -> Recovery:
        """Where `topic` is, and what was published there after `since` (see `Broker`).

        Raises:
            BrokerUnavailableError: Redis cannot be reached.
        """
        first = since.offset + 1 if since is not None else 1 << 62
        args = [first, self.history_size, new_epoch(), self.history_ttl]
        offset, epoch, entries = await self._call("_history_script", self._keys(topic), args)
        position = Position(_text(epoch), int(offset))
        return recovery_after(since, position, list(self._entries(topic, position.epoch, entries)))

    async def recall(self, key: str) -> bytes | None:
        """What `remember` kept under `key` (in Redis: every process sees it).

        Raises:
            BrokerUnavailableError: Redis cannot be reached.
        """
        return await self._command(self._client.get(f"{self.prefix}:kv:{key}"))  # type: ignore[no-any-return]

    async def remember(self, key: str, value: bytes, ttl: float) -> None:
        """Keep `value` under `key` for `ttl` seconds, in Redis.

        Raises:
            BrokerUnavailableError: Redis cannot be reached.
        """
        await self._command(self._client.set(f"{self.prefix}:kv:{key}", value, ex=max(1, round(ttl))))

    async def present(self, topic: str, client: str, info: Any) -> None:
        """Record `client` in the topic's presence, in Redis, kept alive while this process lives.

        Each entry has an expiry (`presence_ttl`), which this process pushes back while
        the client stays: a process that dies takes its clients' presence with it.

        Raises:
            BrokerUnavailableError: Redis cannot be reached.
        """
        self._present[(topic, client)] = orjson.dumps(info, default=to_plain)
        await self._refresh(topic, client)

    async def absent(self, topic: str, client: str) -> None:
        """Remove `client` from the topic's presence.

        Raises:
            BrokerUnavailableError: Redis cannot be reached.
        """
        self._present.pop((topic, client), None)
        alive, infos = self._presence_keys(topic)
        await self._command(self._client.zrem(alive, [client]))
        await self._command(self._client.hdel(infos, [client]))

    async def presence(self, topic: str) -> dict[str, Any]:
        """Who is present in `topic`, across every process (those whose entry has not expired).

        Raises:
            BrokerUnavailableError: Redis cannot be reached.
        """
        alive, infos = self._presence_keys(topic)
        now = time.time()
        await self._command(self._client.zremrangebyscore(alive, -math.inf, now))
        clients = [
            _text(client)
            for client in await self._command(
                self._client.zrange(alive, now, "+inf", sortby=PureToken.BYSCORE)
            )
        ]
        if not clients:
            return {}
        values = await self._command(self._client.hmget(infos, clients))
        return {client: orjson.loads(value) for client, value in zip(clients, values, strict=True) if value}

    def _presence_keys(self, topic: str) -> tuple[str, str]:
        return f"{self.prefix}:alive:{topic}", f"{self.prefix}:present:{topic}"

    async def _refresh(self, topic: str, client: str) -> None:
        info = self._present.get((topic, client))
        if info is None:
            return
        alive, infos = self._presence_keys(topic)
        ttl = self.presence_ttl
        await self._command(self._client.zadd(alive, {client: time.time() + ttl}))
        await self._command(self._client.hset(infos, {client: info}))
        await self._command(self._client.expire(alive, max(1, round(ttl * 2))))
        await self._command(self._client.expire(infos, max(1, round(ttl * 2))))

    async def _keep_present(self) -> None:
        """Push back the expiry of this process's clients' presence, while it runs."""
        while True:
            await trio.sleep(self.presence_ttl / 3)
            for topic, client in list(self._present):
                try:
                    await self._refresh(topic, client)
                except BrokerUnavailableError:
                    break  # Redis is away: the next round tries again

    async def _command(self, command: Any) -> Any:
        """Await a command to Redis; a lost connection is `BrokerUnavailableError` (logged)."""
        try:
            return await command
        except BaseException as exc:
            if not _lost(exc):
                raise
            log.warning("Redis at %s: %s", self.url, _describe(exc))
            raise BrokerUnavailableError() from None

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self._command(getattr(self, script)(keys=keys, args=args))

    def _entries(self, topic: str, epoch: str, entries: Iterable[Any]) -> Iterable[Published]:
        """Stream entries (``(id, {b"b": body})``) as messages, in order."""
        for entry in entries:
            identifier, fields = entry[0], entry[1]
            if isinstance(fields, list | tuple):  # RESP2 shape: a flat list of field, value
                fields = dict(zip(fields[::2], fields[1::2], strict=False))
            offset = int(_text(identifier).split("-", 1)[0])
            message = _message(topic, fields[b"b"])
            if message is not None:
                message.stamp(epoch, offset)
                yield message

    # -- the subscription -----------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Connect, and receive what every process publishes, until the block exits.

        Entered again while it runs (a test client beside a server), it does nothing more.
        """
        if self._entered:
            self._entered += 1
            try:
                yield
            finally:
                self._entered -= 1
            return
        self._entered = 1
        try:
            async with self._running():
                yield
        finally:
            self._entered = 0

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        async with self._client:
            self._publish_script = self._client.register_script(_PUBLISH)
            self._history_script = self._client.register_script(_HISTORY)
            if not self.receive:
                self.connected = True  # publishing finds out for itself when Redis is away
                yield
                return
            async with trio.open_nursery() as nursery:
                await nursery.start(self._receive)
                nursery.start_soon(self._keep_present)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()

    async def _receive(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the pattern subscription; on an outage, tell the members and come back."""
        attempt = 0
        started = False
        while True:
            reason = "the subscription ended"
            try:
                async with self._client.pubsub(
                    patterns=[f"{self.prefix}:ch:*"],
                    retry_policy=NoRetryPolicy(),
                    ignore_subscribe_messages=True,
                    max_idle_seconds=_COMMAND_TIMEOUT / 2,  # pings, so that a quiet channel never times out
                ) as pubsub:
                    if self.outages:
                        await self._resume()
                    self.connected = True
                    attempt = 0
                    log.info("Redis at %s: receiving", self.url)
                    if not started:
                        started = True
                        task_status.started()
                    async for message in pubsub:
                        try:
                            await self._on_message(message)
                        except Exception:  # a bad message, a failed read: never the end of the broker
                            log.exception("Redis at %s: a message could not be delivered", self.url)
            except BaseException as exc:
                if not _lost(exc):
                    raise
                reason = _describe(exc)
            if self.connected:
                self.connected = False
                self.outages += 1
                log.warning("Redis at %s: connection lost (%s); reconnecting", self.url, reason)
                self._notify_all("interrupted", {"reason": "The message broker is unreachable."})
            elif not started:
                log.warning("Redis at %s: cannot connect (%s); retrying", self.url, reason)
                if attempt == 0:
                    self.outages += 1  # serving starts without Redis: an outage from the start
                    started = True
                    task_status.started()
            attempt += 1
            await trio.sleep(min(self.max_backoff, 0.05 * 2 ** min(attempt, 16)) * random.uniform(0.5, 1.0))

    async def _on_message(self, message: Any) -> None:
        """One message from the subscription: to this topic's members here, in order (rule 2)."""
        channel = _text(message["channel"])
        topic = channel[len(self.prefix) + 4 :]
        if not self._members.count(topic):
            return
        head, _, body = message["data"].partition(b":")
        epoch_bytes, _, body = body.partition(b":")
        published = _message(topic, body)
        if published is None or not head.isdigit():
            log.warning("topic %r: a message that is not trio-rest's was ignored", topic)
            return
        offset, epoch = int(head), _text(epoch_bytes)
        published.stamp(epoch, offset)
        published.obj = self._objects.pop((topic, epoch, offset), None)
        last = self.last.get(topic)
        if last is not None and last.epoch == epoch:
            if offset <= last.offset:
                return  # delivered already (read from the stream after a gap)
            if offset > last.offset + 1 and not await self._fill(topic, last, offset - 1):
                log.warning("topic %r: messages before offset %d are lost", topic, offset)
                self._notify(topic, "resumed", {"recovered": False})
        elif last is not None:
            log.warning("topic %r: its history restarted (a new epoch): what came before is lost", topic)
            self._notify(topic, "resumed", {"recovered": False})
        if self._members.count(topic):  # members may have left while the gap was filled
            self.last[topic] = Position(epoch, offset)
            self._members.deliver(published)

    async def _fill(self, topic: str, last: Position, until: int) -> bool:
        """Deliver what `topic` published after `last` up to `until`, from its stream; false if lost."""
        try:
            recovery = await self.history(topic, last)
        except (BrokerUnavailableError, RedisError) as exc:
            log.warning("topic %r: its history cannot be read: %s", topic, _describe(exc))
            return False
        if not self._members.count(topic):
            return True  # nobody here to give it to any more
        if recovery.position.epoch != last.epoch:
            self.last[topic] = recovery.position  # a new history: what comes next follows it
        for message in recovery.messages:
            if message.offset is not None and message.offset <= until and self._members.count(topic):
                self.last[topic] = Position(recovery.position.epoch, message.offset)
                self._members.deliver(message)
        return recovery.recovered

    async def _resume(self) -> None:
        """Back after an outage: deliver what each topic missed, and say whether all of it was."""
        for topic in self._members.topics():
            last = self.last.get(topic)
            recovered = False
            if last is not None:
                recovered = await self._fill(topic, last, 1 << 62)
            else:
                try:
                    recovered = (await self.history(topic, None)).position.offset == 0
                except (BrokerUnavailableError, RedisError):
                    recovered = False
            self._notify(topic, "resumed", {"recovered": recovered})

    def _notify(self, topic: str, event_name: str, data: Any) -> None:
        """A notice to the members of `topic` here, outside its history."""
        if self._members.count(topic):
            self._members.deliver(Published(topic, event_name, data))

    def _notify_all(self, event_name: str, data: Any) -> None:
        for topic in self._members.topics():
            self._notify(topic, event_name, data)

    def check_invariants(self) -> None:
        """Raise `AssertionError` if a rule of the module docstring is broken."""
        self._members.check_invariants()
        for topic in self.last:
            assert self._members.count(topic), "rule 3: a position for a topic without members"


def _message(topic: str, body: bytes) -> Published | None:
    """A message as stored: its event name as JSON, a newline, its data as JSON."""
    name, newline, data = body.partition(b"\n")
    if not newline:
        return None
    try:  # checked once per process, so that members never get what is not JSON
        return Published(topic, orjson.loads(name), encoded=data, decoded=orjson.loads(data))
    except (orjson.JSONDecodeError, LocalProtocolError):
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _lost(exc: BaseException) -> bool:
    """The connection to Redis is lost: the error, or every error of a group, says so."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_lost(inner) for inner in exc.exceptions)
    return isinstance(exc, _LOST)


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
