"""Topics and the broker that carries what is published to them.

``connection.join(topic)`` makes a connection a member of a topic; ``await
app.publish(topic, event_name, data)`` hands one `Published` message to the App's broker,
which delivers it to every member. `InMemoryBroker`, the default, serves the members of one
process; a broker across processes offers the same four calls.

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
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson
import trio
from trio_rest_protocol import LocalProtocolError, Notification, to_plain

__all__ = ["Broker", "InMemoryBroker", "Member", "Published"]


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

    Raises:
        LocalProtocolError: `data` cannot be encoded, or `topic` or `event_name` is not
            a string (nothing is delivered).
    """

    __slots__ = ("_plain", "data", "event_name", "fragment", "notification", "obj", "topic")

    def __init__(self, topic: str, event_name: str | None, data: Any, obj: Any = None) -> None:
        try:
            self.fragment = orjson.Fragment(orjson.dumps(data, default=to_plain))
            #: The notification a member that joined the topic receives on a JSON connection.
            self.notification = Notification(topic=topic, event_name=event_name, data=self.fragment)
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(f"cannot publish to {topic!r}: {exc}") from None
        self.topic = topic
        self.event_name = event_name
        self.data = data
        self.obj = obj
        self._plain: Notification | None = None

    def plain_notification(self) -> Notification:
        """The notification for a connection that does not speak JSON (MessagePack): the data as it is."""
        if self._plain is None:
            self._plain = Notification(topic=self.topic, event_name=self.event_name, data=self.data)
        return self._plain

    def __repr__(self) -> str:
        return f"Published(topic={self.topic!r}, event_name={self.event_name!r})"


class Member(Protocol):
    """What a broker delivers to: a connection, or a subscription that follows topics."""

    def deliver(self, message: Published) -> bool:
        """Queue `message` for the client, without waiting; false when it was not (not allowed, over)."""
        ...


class Broker(Protocol):
    """Carries published notifications to the members of their topic."""

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
        """Deliver `message` to every member of its topic; return how many took it, here."""
        ...


class InMemoryBroker:
    """The members of every topic in this process."""

    __slots__ = ("_joined", "_members")

    def __init__(self) -> None:
        self._members: dict[str, dict[Member, None]] = {}  # topic -> members, in joining order
        self._joined: dict[Member, set[str]] = {}  # member -> its topics

    def join(self, topic: str, member: Member) -> None:
        self._members.setdefault(topic, {})[member] = None
        self._joined.setdefault(member, set()).add(topic)

    def leave(self, topic: str, member: Member) -> None:
        members = self._members.get(topic)
        if members is None or member not in members:
            return
        del members[member]
        if not members:
            del self._members[topic]
        topics = self._joined[member]
        topics.discard(topic)
        if not topics:
            del self._joined[member]

    def leave_all(self, member: Member) -> None:
        for topic in list(self._joined.get(member, ())):
            self.leave(topic, member)

    def members(self, topic: str) -> int:
        """How many members `topic` has in this process."""
        return len(self._members.get(topic, ()))

    async def publish(self, message: Published) -> int:
        await trio.lowlevel.checkpoint()
        members = self._members.get(message.topic)
        if not members:
            return 0
        # A copy: a member whose queue overflows leaves while we deliver.
        delivered = 0
        for member in list(members):
            delivered += member.deliver(message)
        return delivered

    def check_invariants(self) -> None:
        """Raise `AssertionError` if a rule of the module docstring is broken."""
        for topic, members in self._members.items():
            assert members, "rule 2: a topic without a member"
            for member in members:
                assert topic in self._joined.get(member, ()), "rule 1"
        for member, topics in self._joined.items():
            for topic in topics:
                assert member in self._members.get(topic, {}), "rule 1"
