"""Topics and the broker that carries what is published to them.

``connection.join(topic)`` makes a connection a member of a topic; ``await
app.publish(topic, event_name, data)`` hands one notification to the App's broker, which
delivers it to every member. `InMemoryBroker`, the default, serves the members of one
process; a broker across processes offers the same four calls.

Delivery never waits for a socket: a member queues the notification in its outbox, bounded
by `Settings.max_outbound_bytes`, and a member that does not read is disconnected with 1008
once that is full, without delaying anyone else.

Rules (`check_invariants` raises `AssertionError` when one is broken):

1. A member is in a topic's set exactly when the topic is in the member's own record, so
   `leave_all` finds every topic it joined.
2. No topic is kept without a member.
3. Each publish reaches each member of the topic once, in publish order per publisher
   (delivery is synchronous, in one pass over the members).
"""

from __future__ import annotations

from typing import Protocol

import trio
from trio_rest_protocol import Notification

__all__ = ["Broker", "InMemoryBroker", "Member"]


class Member(Protocol):
    """What a broker delivers to: a connection."""

    def deliver(self, notification: Notification) -> None:
        """Queue `notification` for the client, without waiting."""
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

    async def publish(self, topic: str, notification: Notification) -> int:
        """Deliver `notification` to every member of `topic`; return how many it reached here."""
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

    async def publish(self, topic: str, notification: Notification) -> int:
        await trio.lowlevel.checkpoint()
        members = self._members.get(topic)
        if not members:
            return 0
        # A copy: a member whose queue overflows leaves while we deliver.
        recipients = list(members)
        for member in recipients:
            member.deliver(notification)
        return len(recipients)

    def check_invariants(self) -> None:
        """Raise `AssertionError` if a rule of the module docstring is broken."""
        for topic, members in self._members.items():
            assert members, "rule 2: a topic without a member"
            for member in members:
                assert topic in self._joined.get(member, ()), "rule 1"
        for member, topics in self._joined.items():
            for topic in topics:
                assert member in self._members.get(topic, {}), "rule 1"
