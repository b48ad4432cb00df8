"""Topics and the broker that carries what is published to them.

``connection.join(topic)`` makes a connection a member of a topic; ``await
app.publish(topic, event_name, data)`` hands one `Published` message to the App's broker,
which delivers it to every member. `InMemoryBroker`, the default, serves the members of one
process; `trio_rest.brokers.RedisBroker` carries messages across processes and machines with
the same calls.

Every message published to a topic gets an *offset* there, counted from 1 within an
*epoch* (a random name the topic's history gets when it starts). A broker keeps a bounded
history per topic, so that a subscriber that was away can ask for what it missed since the
position it last saw (`history`), and learn plainly when that is no longer there: trimmed,
expired, or of another epoch (the history was lost, say when Redis restarted empty).

A message's data is encoded once, when it is published, and each member's envelope embeds
those bytes, so a broadcast to a thousand members costs one encoding of the body.

Delivery never waits for a socket: a member queues the notification in its outbox, bounded
by `Settings.max_outbound_bytes`; past it, `Settings.notification_overflow` decides (the
slow member is disconnected with 1008, or its oldest notifications are dropped and it is
told how many), without delaying anyone else.

Rules (`check_invariants` raises `AssertionError` when one is broken):

1. A member is in a topic's set exactly when the topic is in the member's own record, so
   `leave_all` finds every topic it joined.
2. No topic is kept without a member.
3. Each publish reaches each member of the topic once, in publish order per publisher
   (delivery is synchronous, in one pass over the members).
4. A topic's offsets grow by one per publish within its epoch, and its history holds the
   latest of them, at most `history_size`, in order; a history unused for `history_ttl`
   seconds is forgotten, and at most `max_history_topics` are kept (the least recently
   published to goes first).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import attrs
import orjson
import trio
from trio_rest_protocol import LocalProtocolError, Notification, to_plain

from ._errors import ConfigurationError
from ._stats import PushStats

log = logging.getLogger("trio_rest")

__all__ = [
    "Broker",
    "History",
    "InMemoryBroker",
    "Member",
    "Members",
    "Position",
    "Published",
    "Recovery",
    "TopicMembers",
]


@attrs.frozen
class Position:
    """A place in a topic's history: the offset of the last message there, in its epoch."""

    epoch: str
    offset: int


@attrs.frozen
class Recovery:
    """What a broker found in a topic's history after a position (`Broker.history`).

    Attributes:
        recovered: every message after the position is in `messages` (false: some were
            trimmed or expired, or the position is of another epoch; refetch).
        messages: the messages after the position that are still there, in order.
        position: where the topic is now (the last offset published, 0 before any).
    """

    recovered: bool
    messages: list[Published]
    position: Position


class Published:
    """One message published to a topic, as every member receives it.

    Attributes:
        topic: where it was published.
        event_name: what kind of notification it is (``"created"``).
        data: its body, a JSON-shaped value.
        fragment: `data` encoded as JSON once, embedded as it is in each member's
            envelope (an ``orjson.Fragment``).
        obj: what the message is about, for per-object permission checks (an
            observer's model instance); None when the data is all there is.
        offset: its place in the topic's history (set by the broker when published).
        epoch: the history's epoch.

    A broker that receives a message already encoded passes ``encoded=`` (the JSON bytes
    embedded as they are) and, if it decoded them, ``decoded=`` (else `data` decodes them
    on first use).

    Raises:
        LocalProtocolError: `data` cannot be encoded, or `topic` or `event_name` is not
            a string (nothing is delivered).
    """

    __slots__ = (
        "_data",
        "_json",
        "_plain",
        "encoded",
        "epoch",
        "event_name",
        "fragment",
        "obj",
        "offset",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        event_name: str | None,
        data: Any = None,
        obj: Any = None,
        *,
        encoded: bytes | None = None,
        decoded: Any = None,
    ) -> None:
        try:
            Notification(topic=topic, event_name=event_name)  # checks both
            #: `data` as JSON bytes (given as `encoded` by a broker that received it so).
            self.encoded = orjson.dumps(data, default=to_plain) if encoded is None else encoded
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(f"cannot publish to {topic!r}: {exc}") from None
        self.fragment = orjson.Fragment(self.encoded)
        self.topic = topic
        self.event_name = event_name
        self._data = data if encoded is None else (decoded if decoded is not None else _UNREAD)
        self.obj = obj
        self.offset: int | None = None
        self.epoch: str | None = None
        self._json: Notification | None = None
        self._plain: Notification | None = None

    @property
    def data(self) -> Any:
        """The body, a JSON-shaped value (decoded on first use when it came encoded)."""
        if self._data is _UNREAD:
            self._data = orjson.loads(self.encoded)
        return self._data

    def stamp(self, epoch: str, offset: int) -> None:
        """Its place in the topic's history (the broker's call, before delivery)."""
        self.epoch, self.offset = epoch, offset

    @property
    def notification(self) -> Notification:
        """The notification a member that joined the topic receives on a JSON connection."""
        if self._json is None:
            self._json = Notification(
                topic=self.topic,
                event_name=self.event_name,
                data=self.fragment,
                offset=self.offset,
                epoch=self.epoch,
            )
        return self._json

    def plain_notification(self) -> Notification:
        """The notification for a connection that does not speak JSON (MessagePack): the data as it is."""
        if self._plain is None:
            self._plain = Notification(
                topic=self.topic,
                event_name=self.event_name,
                data=self.data,
                offset=self.offset,
                epoch=self.epoch,
            )
        return self._plain

    def __repr__(self) -> str:
        return f"Published(topic={self.topic!r}, event_name={self.event_name!r}, offset={self.offset!r})"


_UNREAD: Any = object()  # a received message's data, not decoded yet


class Member(Protocol):
    """What a broker delivers to: a connection, or a subscription that follows topics."""

    def deliver(self, message: Published) -> bool:
        """Queue `message` for the client, without waiting; false when it was not (not allowed, over)."""
        ...


class Broker(Protocol):
    """Carries published notifications to the members of their topic, and keeps their history."""

    def join(self, topic: str, member: Member) -> None:
        """Make `member` receive what is published to `topic` from now on."""
        ...

    def leave(self, topic: str, member: Member) -> None:
        """Stop delivering `topic` to `member` (nothing happens if it is not a member)."""
        ...

    def leave_all(self, member: Member) -> None:
        """`member` leaves every topic (its connection ended)."""
        ...

    async def publish(self, message: Published) -> int:
        """Give `message` its offset, deliver it to its topic's members; return how many took it here."""
        ...

    async def history(self, topic: str, since: Position | None) -> Recovery:
        """What was published to `topic` after `since`, and where the topic is now."""
        ...

    def running(self) -> Any:
        """An async context manager around serving: the broker's own tasks run inside it."""
        ...

    async def recall(self, key: str) -> bytes | None:
        """What `remember` kept under `key`, if it has not expired (idempotent replies)."""
        ...

    async def remember(self, key: str, value: bytes, ttl: float) -> None:
        """Keep `value` under `key` for `ttl` seconds, where every process of the App sees it."""
        ...

    async def present(self, topic: str, client: str, info: Any) -> None:
        """Record `client` as present in `topic`, with `info` (until `absent`, or its process dies)."""
        ...

    async def absent(self, topic: str, client: str) -> None:
        """`client` is no longer present in `topic`."""
        ...

    async def presence(self, topic: str) -> dict[str, Any]:
        """Who is present in `topic`, in every process: client -> info."""
        ...

    #: Where deliveries are counted: the App sets its `push_stats` here.
    stats: PushStats | None


class Members:
    """The members of every topic in this process (rules 1 to 3)."""

    __slots__ = ("_joined", "_members", "stats")

    def __init__(self) -> None:
        self._members: dict[str, dict[Member, None]] = {}  # topic -> members, in joining order
        self._joined: dict[Member, set[str]] = {}  # member -> its topics
        #: Where deliveries are counted (the App's `push_stats`, set by the App).
        self.stats: PushStats | None = None

    def join(self, topic: str, member: Member) -> bool:
        """Add `member` to `topic`; true when it is the topic's first member here."""
        members = self._members.get(topic)
        first = members is None
        if members is None:
            members = self._members[topic] = {}
        members[member] = None
        self._joined.setdefault(member, set()).add(topic)
        return first

    def leave(self, topic: str, member: Member) -> bool:
        """Remove `member` from `topic`; true when the topic has no member left here."""
        members = self._members.get(topic)
        if members is None or member not in members:
            return False
        del members[member]
        topics = self._joined[member]
        topics.discard(topic)
        if not topics:
            del self._joined[member]
        if not members:
            del self._members[topic]
            return True
        return False

    def topics_of(self, member: Member) -> list[str]:
        """The topics `member` joined."""
        return list(self._joined.get(member, ()))

    def topics(self) -> list[str]:
        """Every topic with a member here."""
        return list(self._members)

    def count(self, topic: str) -> int:
        """How many members `topic` has here."""
        return len(self._members.get(topic, ()))

    def deliver(self, message: Published) -> int:
        """Hand `message` to every member of its topic, once each; how many took it."""
        members = self._members.get(message.topic)
        if not members:
            return 0
        delivered = 0
        for member in list(members):  # a copy: a member whose queue overflows leaves meanwhile
            try:
                delivered += member.deliver(message)
            except Exception:  # one member's failure is logged; the others still get it
                log.exception("delivering %r to %r failed", message, member)
        if self.stats is not None:
            self.stats.count("delivered", delivered)
        return delivered

    def check_invariants(self) -> None:
        """Raise `AssertionError` if rule 1 or 2 is broken."""
        for topic, members in self._members.items():
            assert members, "rule 2: a topic without a member"
            for member in members:
                assert topic in self._joined.get(member, ()), "rule 1"
        for member, topics in self._joined.items():
            for topic in topics:
                assert member in self._members.get(topic, {}), "rule 1"


@attrs.define(eq=False)
class _Topic:
    epoch: str
    offset: int
    messages: deque[Published]
    used: float  # time.monotonic() of the last publish


class History:
    """The bounded history of every topic published to, in this process (rule 4).

    Args:
        size: messages kept per topic.
        ttl: seconds a topic's history is kept after its last publish.
        max_topics: histories kept at most; past it the least recently published goes.
        owner: what an error about these limits names (the broker they were given to).
    """

    __slots__ = ("_topics", "max_topics", "size", "ttl")

    def __init__(
        self, size: int = 100, ttl: float = 300.0, max_topics: int = 10_000, *, owner: str = "History"
    ) -> None:
        require_positive(owner, history_size=size, history_ttl=ttl, max_history_topics=max_topics)
        self.size, self.ttl, self.max_topics = size, ttl, max_topics
        self._topics: dict[str, _Topic] = {}  # least recently published first

    def append(self, message: Published) -> None:
        """Give `message` the topic's next offset and keep it."""
        now = time.monotonic()
        self._expire(now)
        entry = self._topics.pop(message.topic, None) or self._new(now)
        self._topics[message.topic] = entry  # now the most recent
        entry.offset += 1
        entry.used = now
        message.stamp(entry.epoch, entry.offset)
        entry.messages.append(message)

    def after(self, topic: str, since: Position | None) -> Recovery:
        """The messages of `topic` after `since`, and whether that is all of them."""
        self._expire(time.monotonic())
        entry = self._topics.get(topic)
        if entry is None:  # nothing published lately: a new epoch starts here
            entry = self._topics[topic] = self._new(time.monotonic())
        position = Position(entry.epoch, entry.offset)
        return recovery_after(since, position, entry.messages)

    def _new(self, now: float) -> _Topic:
        """A new topic's history, making room for it first."""
        while len(self._topics) >= self.max_topics:
            del self._topics[next(iter(self._topics))]
        return _Topic(new_epoch(), 0, deque(maxlen=self.size), now)

    def _expire(self, now: float) -> None:
        topics = self._topics
        while topics:
            first = next(iter(topics))
            if now - topics[first].used <= self.ttl:
                return
            del topics[first]

    def check_invariants(self) -> None:
        """Raise `AssertionError` if rule 4 is broken."""
        assert len(self._topics) <= self.max_topics, "rule 4: too many histories"
        for entry in self._topics.values():
            offsets = [message.offset for message in entry.messages]
            assert len(offsets) <= self.size, "rule 4: a history past its size"
            assert offsets == list(range(entry.offset - len(offsets) + 1, entry.offset + 1)), (
                "rule 4: offsets"
            )


def require_positive(owner: str, **limits: Any) -> None:
    """Raise `ConfigurationError` naming `owner` and the limit unless every one is a positive number."""
    for name, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigurationError(f"{owner}: {name} must be positive, not {value!r}")


def new_epoch() -> str:
    """A new epoch's name: random, so that a history that restarts is never taken for the old one."""
    return secrets.token_hex(4)


def recovery_after(since: Position | None, position: Position, messages: Iterable[Published]) -> Recovery:
    """What to hand a subscriber at `since` when the topic is at `position` with these messages kept."""
    if since is None:
        return Recovery(True, [], position)
    if since.epoch != position.epoch or since.offset > position.offset:
        return Recovery(False, [], position)  # another history's position, or one from the future
    kept = [
        message
        for message in messages
        if message.offset is not None and since.offset < message.offset <= position.offset
    ]
    # Recovered: every offset after the client's, up to the topic's, is there.
    offsets = [message.offset for message in kept]
    complete = offsets == list(range(since.offset + 1, position.offset + 1))
    return Recovery(complete, kept, position)


class TopicMembers:
    """What every broker does alike: the members of its topics in this process (`Members`)."""

    __slots__ = ("_members",)

    def __init__(self) -> None:
        self._members = Members()

    def join(self, topic: str, member: Member) -> None:
        self._members.join(topic, member)

    def leave(self, topic: str, member: Member) -> None:
        self._members.leave(topic, member)

    def leave_all(self, member: Member) -> None:
        for topic in self._members.topics_of(member):
            self.leave(topic, member)

    def members(self, topic: str) -> int:
        """How many members `topic` has in this process."""
        return self._members.count(topic)

    @property
    def stats(self) -> PushStats | None:
        """Where deliveries are counted (the App's `push_stats`)."""
        return self._members.stats

    @stats.setter
    def stats(self, stats: PushStats | None) -> None:
        self._members.stats = stats


class InMemoryBroker(TopicMembers):
    """The members and the history of every topic, in this process.

    Args:
        history_size: messages kept per topic, for subscribers that come back (100).
        history_ttl: seconds a topic's history outlives its last publish (300).
        max_history_topics: histories kept at most (10,000).
    """

    __slots__ = ("_history", "_kept", "_present", "max_kept")

    def __init__(
        self, *, history_size: int = 100, history_ttl: float = 300.0, max_history_topics: int = 10_000
    ) -> None:
        super().__init__()
        self._history = History(history_size, history_ttl, max_history_topics, owner="InMemoryBroker")
        #: Values `remember` keeps (idempotent replies), oldest first, at most `max_kept`.
        self._kept: dict[str, tuple[float, bytes]] = {}
        self.max_kept = 10_000
        self._present: dict[str, dict[str, Any]] = {}  # topic -> client -> info

    async def publish(self, message: Published) -> int:
        await trio.lowlevel.checkpoint()
        self._history.append(message)
        return self._members.deliver(message)

    async def history(self, topic: str, since: Position | None) -> Recovery:
        await trio.lowlevel.checkpoint()
        return self._history.after(topic, since)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Nothing to run: everything happens in the publisher's call."""
        yield

    async def recall(self, key: str) -> bytes | None:
        await trio.lowlevel.checkpoint()
        kept = self._kept.get(key)
        if kept is None or kept[0] < time.monotonic():
            return None
        return kept[1]

    async def remember(self, key: str, value: bytes, ttl: float) -> None:
        await trio.lowlevel.checkpoint()
        kept, now = self._kept, time.monotonic()
        kept.pop(key, None)
        kept[key] = (now + ttl, value)
        # Bounded: expired values go first, then the oldest, past `max_kept`.
        while kept:
            first = next(iter(kept))
            if kept[first][0] >= now and len(kept) <= self.max_kept:
                break
            del kept[first]

    async def present(self, topic: str, client: str, info: Any) -> None:
        await trio.lowlevel.checkpoint()
        self._present.setdefault(topic, {})[client] = info

    async def absent(self, topic: str, client: str) -> None:
        await trio.lowlevel.checkpoint()
        clients = self._present.get(topic)
        if clients is not None:
            clients.pop(client, None)
            if not clients:
                del self._present[topic]

    async def presence(self, topic: str) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return dict(self._present.get(topic, {}))

    def check_invariants(self) -> None:
        """Raise `AssertionError` if a rule of the module docstring is broken."""
        self._members.check_invariants()
        self._history.check_invariants()
        assert all(self._present.values()), "a presence set kept empty"
