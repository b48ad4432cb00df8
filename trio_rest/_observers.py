"""Model observers: what a transaction created, updated and deleted, published after its commit.

``database.observe(User, UserSerializer, topic="/user", detail_topic="/user/{id}")`` makes
every committed write to a ``User`` through a `Database` session a notification:
``created``, ``updated`` or ``deleted``, whose data is the serializer's output (the shape a
GET returns), published to `topic` (the list's subscribers) and to `detail_topic` filled
with the object's columns (that object's subscribers).

How. SQLAlchemy's session events run in the worker thread that flushes:

- each flush records the observed objects it inserted, changed or deleted, and serializes
  them while the transaction can still load what the serializer reads (deleted objects
  before they are gone);
- ORM bulk ``UPDATE`` and ``DELETE`` statements (``session.execute(update(User)...)``) are
  observed too: the rows they match are read in the same transaction, before a delete and
  after an update;
- so are ORM ``INSERT`` statements: one row's key is the statement's inserted primary key, a
  bulk INSERT's (``session.execute(insert(User), rows)``) come back through ``RETURNING``
  (the caller then gets an empty result, as it would have had without it); the rows are
  read as for an update. The other forms (an upsert, a ``RETURNING`` or ``return_defaults``
  of the caller's own, ``values([...])`` of several rows, ``from_select``, a ``raw``
  executemany, a database without ``RETURNING`` for several rows) are counted, and published
  as a bulk statement past its limit is (rule 3), since adding what gives the keys would
  change the caller's result;
- the changes belong to the innermost transaction (a savepoint, or the session's); a
  savepoint that is released hands them to its parent, one that rolls back drops them;
- the session's commit hands them to `Database.session`, which publishes them once the
  commit returned. A transaction that rolls back publishes nothing.

Rules (the tests of each, on SQLite and PostgreSQL, are in ``tests/trio_rest/test_observers.py``):

1. One change per object per transaction, the merge of what happened to it there:
   created then updated is created, created then deleted is nothing, updated then
   deleted is deleted.
2. Changes are published only after the commit of the session's outermost transaction,
   in the order the objects were first changed; nothing of a transaction that rolled back
   (or of a savepoint that did) is ever published.
3. A bulk statement matching more than the observer's `bulk_limit` rows publishes one
   ``changed`` notification to `topic` (``{"count": N}``: refetch) instead of one per row;
   so does every INSERT whose rows are not known one by one (above).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, SessionTransaction, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

if TYPE_CHECKING:
    from ._app import App

__all__ = ["PUBLISHES", "Change", "Changes", "Observer", "install"]

log = logging.getLogger("trio_rest")

# Keys of `session.info`.
PUBLISHES = "trio_rest.observers.publishes"  # set by `Database.session`: it publishes what commits
_PENDING = "trio_rest.observers.pending"  # transaction -> Changes
_COMMITTED = "trio_rest.observers.committed"  # transactions whose commit ran
_READY = "trio_rest.observers.ready"  # what the outermost commit hands over
_FLUSHED = "trio_rest.observers.flushed"  # the objects of the flush under way
_DELETING = "trio_rest.observers.deleting"  # what the flush under way deletes, serialized before

CREATED, UPDATED, DELETED = "created", "updated", "deleted"


@attrs.define(eq=False)
class Observer:
    """What `Database.observe` registered for one model."""

    model: type
    serializer_class: Any
    topic: str
    detail_topic: str | None
    bulk_limit: int
    mapper: Mapper[Any] = attrs.field(init=False)
    #: The primary key's attribute names.
    keys: tuple[str, ...] = attrs.field(init=False)
    #: The same, as the model's attributes (to select and return them).
    key_columns: tuple[Any, ...] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.mapper = sqlalchemy.inspect(self.model)
        self.keys = tuple(
            self.mapper.get_property_by_column(column).key for column in self.mapper.primary_key
        )
        self.key_columns = tuple(getattr(self.model, key) for key in self.keys)

    def detail(self, snapshot: Any) -> str | None:
        """The object's own topic, filled with its columns."""
        if self.detail_topic is None:
            return None
        values = {attr.key: getattr(snapshot, attr.key, None) for attr in self.mapper.column_attrs}
        return self.detail_topic.format_map(values)


@attrs.define(eq=False)
class Change:
    """One object's change in a transaction: its kind, its serialized data, a detached copy."""

    observer: Observer
    kind: str
    data: Any
    obj: Any


class Changes:
    """The changes of one transaction, one per object, in the order they were first changed."""

    __slots__ = ("bulk", "items")

    def __init__(self) -> None:
        self.items: dict[tuple[Any, ...], Change] = {}
        #: Bulk statements past an observer's limit: their row counts, by observer.
        self.bulk: dict[Observer, int] = {}

    def record(self, key: tuple[Any, ...], change: Change) -> None:
        """Merge `change` into what happened to the object of `key` (rule 1)."""
        previous = self.items.get(key)
        if previous is None:
            self.items[key] = change
            return
        if previous.kind == CREATED and change.kind == DELETED:
            del self.items[key]  # it never existed outside this transaction
        elif previous.kind == CREATED or (previous.kind == DELETED and change.kind == CREATED):
            previous.data, previous.obj = change.data, change.obj
            previous.kind = CREATED if previous.kind == CREATED else UPDATED
        else:
            previous.kind, previous.data, previous.obj = change.kind, change.data, change.obj

    def merge(self, later: Changes) -> None:
        """Take the changes of a savepoint released inside this transaction."""
        for key, change in later.items.items():
            self.record(key, change)
        for observer, count in later.bulk.items():
            self.bulk[observer] = self.bulk.get(observer, 0) + count


def install(
    factory: sessionmaker[Session], observers: Mapping[type, Observer], app: Callable[[], App | None]
) -> None:
    """Listen to the sessions `factory` makes, for the models of `observers` (read at each event)."""

    def serialize(session: Session, observer: Observer, instance: Any) -> Change | None:
        return _serialize(session, observer, instance, app())

    @event.listens_for(factory, "before_flush")
    def before_flush(session: Session, context: Any, instances: Any) -> None:
        session.info.pop(_FLUSHED, None)  # left by a flush that failed half-way: never published
        deleting: list[Change] = []
        if observers:
            for instance in session.deleted:
                observer = observers.get(type(instance))
                if observer is not None:  # serialized now: after the flush it is gone
                    change = serialize(session, observer, instance)
                    if change is not None:
                        change.kind = DELETED
                        deleting.append(change)
        session.info[_DELETING] = deleting  # a flush that fails leaves them to the next

    @event.listens_for(factory, "after_flush")
    def after_flush(session: Session, context: Any) -> None:
        deleting = session.info.pop(_DELETING, None)
        if not observers:
            return
        flushed: list[tuple[str, Any]] = []
        for instance in session.new:
            if type(instance) in observers:
                flushed.append((CREATED, instance))
        for instance in session.dirty:
            if type(instance) in observers and session.is_modified(instance):
                flushed.append((UPDATED, instance))
        if deleting:
            changes = _changes(session)
            for change in deleting:
                changes.record(_key(change.observer, change.obj), change)
        if flushed:
            session.info[_FLUSHED] = flushed

    @event.listens_for(factory, "after_flush_postexec")
    def after_flush_postexec(session: Session, context: Any) -> None:
        flushed = session.info.pop(_FLUSHED, None)
        if not flushed:
            return
        changes = _changes(session)
        with session.no_autoflush:
            for kind, instance in flushed:
                change = serialize(session, observers[type(instance)], instance)
                if change is not None:
                    change.kind = kind
                    changes.record(_key(change.observer, change.obj), change)

    @event.listens_for(factory, "do_orm_execute")
    def do_orm_execute(state: ORMExecuteState) -> Any:
        if not (state.is_update or state.is_delete or state.is_insert) or state.bind_mapper is None:
            return None
        observer = observers.get(state.bind_mapper.class_)
        if observer is None:
            return None
        if state.is_insert:
            return _insert(state, observer, serialize)
        return _bulk(state, observer, serialize)

    @event.listens_for(factory, "after_commit")
    def after_commit(session: Session) -> None:
        transaction = session.get_nested_transaction() or session.get_transaction()
        if transaction is not None:
            session.info.setdefault(_COMMITTED, set()).add(transaction)

    @event.listens_for(factory, "after_transaction_end")
    def after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
        if not transaction.nested and transaction.parent is not None:
            return  # a flush's own subtransaction: its changes belong to the transaction around it
        pending: dict[SessionTransaction, Changes] = session.info.get(_PENDING, {})
        changes = pending.pop(transaction, None)
        committed = session.info.get(_COMMITTED, set())
        done = transaction in committed
        committed.discard(transaction)
        if changes is None or not done:
            return  # nothing changed, or rolled back: rule 2
        parent = _outer(transaction)
        if parent is not None:
            pending.setdefault(parent, Changes()).merge(changes)  # a released savepoint
        elif session.info.get(PUBLISHES):  # a session `Database.session` opened: it publishes them
            session.info.setdefault(_READY, Changes()).merge(changes)


def take_committed(session: Session) -> Changes | None:
    """What the session's last commit made to publish (once: it is taken)."""
    return session.info.pop(_READY, None)  # type: ignore[no-any-return]


def forget(session: Session) -> None:
    """Drop whatever the session recorded (its transaction did not commit)."""
    for key in (_PENDING, _COMMITTED, _READY, _FLUSHED, _DELETING):
        session.info.pop(key, None)


async def publish(app: App, changes: Changes) -> None:
    """Publish committed changes (rules 2 and 3): to each observer's topic, then the object's.

    The transaction has committed: a notification that cannot be published (the broker is
    unavailable, the data cannot be encoded) is logged as an error and counted in
    ``app.push_stats.failed``, and the others still go; the request is not failed for it.
    """
    messages: list[tuple[str, str, Any, Any]] = []
    for change in changes.items.values():
        observer = change.observer
        messages.append((observer.topic, change.kind, change.data, change.obj))
        detail = observer.detail(change.obj)
        if detail is not None:
            messages.append((detail, change.kind, change.data, change.obj))
    for observer, count in changes.bulk.items():
        messages.append((observer.topic, "changed", {"count": count}, None))
    for topic, kind, data, obj in messages:
        try:
            await app.publish(topic, kind, data, obj=obj)
        except Exception as exc:
            log.error("the %s notification to %r could not be published: %s", kind, topic, exc)
            app.push_stats.count("failed")


def _changes(session: Session) -> Changes:
    """The changes of the session's innermost transaction (begun now, if none has)."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:  # a bulk statement as the session's first: it begins the transaction
        session.connection()
        transaction = session.get_transaction()
    pending: dict[Any, Changes] = session.info.setdefault(_PENDING, {})
    changes = pending.get(transaction)
    if changes is None:
        changes = pending[transaction] = Changes()
    return changes


def _outer(transaction: SessionTransaction) -> SessionTransaction | None:
    """The transaction a savepoint's changes go to: the next savepoint or session transaction out."""
    parent = transaction.parent
    while parent is not None and not parent.nested and parent.parent is not None:
        parent = parent.parent
    return parent


def _key(observer: Observer, snapshot: Any) -> tuple[Any, ...]:
    return (observer.model, *(getattr(snapshot, key, None) for key in observer.keys))


def _serialize(session: Session, observer: Observer, instance: Any, app: App | None) -> Change | None:
    """The change's data (the serializer's output) and a detached copy of the columns."""
    context: dict[str, Any] = {"session": session}
    if app is not None:
        context.update(app=app, converter=app.converter)
    try:
        data = observer.serializer_class(instance, context=context).data
    except Exception:
        log.exception("an observed %s could not be serialized; no notification", observer.model.__name__)
        return None
    return Change(observer, UPDATED, data, _snapshot(observer.mapper, instance))


def _snapshot(mapper: Mapper[Any], instance: Any) -> Any:
    """A copy of the object's loaded columns, attached to no session (for permission checks)."""
    copy = mapper.class_manager.new_instance()
    state = sqlalchemy.inspect(instance)
    for attr in mapper.column_attrs:
        if attr.key in state.dict:
            set_committed_value(copy, attr.key, state.dict[attr.key])
    return copy


def _bulk(state: ORMExecuteState, observer: Observer, serialize: Callable[..., Change | None]) -> Any:
    """Run an ORM bulk UPDATE or DELETE, recording the rows it matched."""
    session = state.session
    statement: Any = state.statement
    parameters = state.parameters
    if isinstance(parameters, list) and statement.whereclause is None:
        # An UPDATE by primary key: each row of parameters names its row.
        matched = [tuple(row.get(key) for key in observer.keys) for row in parameters]
    else:
        select_keys = sqlalchemy.select(*observer.key_columns)
        if statement.whereclause is not None:
            select_keys = select_keys.where(statement.whereclause)
        options = {"autoflush": False}
        # One more than the limit tells whether it is passed, without reading every key.
        limited = select_keys.limit(observer.bulk_limit + 1)
        matched = [tuple(row) for row in session.execute(limited, execution_options=options)]
    changes = _changes(session)
    if len(matched) > observer.bulk_limit:
        result = state.invoke_statement()
        count = getattr(result, "rowcount", -1)
        _count(changes, observer, count if count >= 0 else len(matched))
        return result
    if state.is_delete:
        _record(changes, session, observer, serialize, matched, DELETED)
        return state.invoke_statement()
    result = state.invoke_statement()
    _record(changes, session, observer, serialize, matched, UPDATED)
    return result


def _insert(state: ORMExecuteState, observer: Observer, serialize: Callable[..., Change | None]) -> Any:
    """Run an ORM INSERT, recording the rows it created (or their count, when not known one by one).

    The caller's result is the one it would have had: RETURNING is added only where SQLAlchemy
    answers a statement without one with an empty result (a bulk INSERT of parameter sets).
    """
    session = state.session
    statement: Any = state.statement
    parameters = state.parameters
    if isinstance(parameters, Mapping):  # one parameter set: a bulk INSERT of one row
        rows: list[Any] | None = [parameters] if parameters else None
    elif isinstance(parameters, Sequence) and not isinstance(parameters, str | bytes):
        rows = list(parameters)
    else:
        rows = None
    several: Any = getattr(statement, "_multi_values", ())  # values([...]), once or more
    source: Any = getattr(statement, "select", None)  # from_select(...)
    # An upsert (ON CONFLICT ...) updates some rows and creates others: only a count is true of it.
    upsert = getattr(statement, "_post_values_clause", None) is not None
    own_returning = len(statement.exported_columns) > 0
    defaults = bool(getattr(statement, "_return_defaults", False))  # takes no RETURNING of ours
    bulk = state.execution_options.get("dml_strategy", "auto") in ("auto", "bulk")
    dialect = session.get_bind(mapper=observer.mapper).dialect
    returning = (
        rows is not None
        and bulk
        and not (own_returning or defaults)
        and bool(dialect.insert_executemany_returning)
    )
    changes = _changes(session)
    keys = observer.key_columns
    if returning and upsert:  # the rows it created or updated, counted (one that did nothing is not)
        count = len(state.invoke_statement(statement=statement.returning(*keys)).all())
        _count(changes, observer, count)
        return sqlalchemy.engine.result.null_result()
    if upsert or own_returning or several or source is not None or (rows is not None and not returning):
        before = None
        if source is not None and not own_returning:  # counted first: the SELECT may see its own rows
            counting = sqlalchemy.select(sqlalchemy.func.count()).select_from(source.subquery())
            before = session.execute(counting, execution_options={"autoflush": False}).scalar_one()
        result = state.invoke_statement()
        if own_returning and not isinstance(result, sqlalchemy.CursorResult):
            frozen = result.freeze()  # its rows are the caller's: counted, and handed over intact
            count, result = len(frozen().all()), frozen()
        elif isinstance(result, sqlalchemy.CursorResult) and result.rowcount >= 0:
            count = result.rowcount
        elif rows is not None:
            count = len(rows)
        elif several:
            count = sum(len(values) for values in several)
        else:
            count = before if before is not None else 1
        _count(changes, observer, count)
        return result
    if rows is not None:  # the keys come back through RETURNING; the caller had asked for no rows
        returned = state.invoke_statement(statement=statement.returning(*keys))
        created = [tuple(row) for row in returned]
        result = sqlalchemy.engine.result.null_result()
    else:  # one row, whose key the result knows
        result = state.invoke_statement()
        key = tuple(result.inserted_primary_key or ()) if isinstance(result, sqlalchemy.CursorResult) else ()
        created = [key] if key and None not in key else []
        if not created:  # a key the database did not give back: the row is counted all the same
            _count(changes, observer, 1)
            return result
    if len(created) > observer.bulk_limit:
        _count(changes, observer, len(created))
        return result
    _record(changes, session, observer, serialize, created, CREATED)
    return result


def _record(
    changes: Changes,
    session: Session,
    observer: Observer,
    serialize: Callable[..., Change | None],
    rows: Iterable[tuple[Any, ...]],
    kind: str,
) -> None:
    """Record, as `kind`, the rows of these primary keys, read afresh in the transaction."""
    for instance in _load(session, observer, rows):
        change = serialize(session, observer, instance)
        if change is not None:
            change.kind = kind
            changes.record(_key(observer, change.obj), change)


def _count(changes: Changes, observer: Observer, count: int) -> None:
    """`count` rows of `observer`'s model changed, not one by one (rule 3)."""
    if count > 0:
        changes.bulk[observer] = changes.bulk.get(observer, 0) + count


def _load(session: Session, observer: Observer, matched: Iterable[tuple[Any, ...]]) -> list[Any]:
    """The rows of these primary keys, read afresh in the session's transaction."""
    matched = list(matched)
    if not matched:
        return []
    keys = observer.key_columns
    where = (
        keys[0].in_([row[0] for row in matched]) if len(keys) == 1 else sqlalchemy.tuple_(*keys).in_(matched)
    )
    statement: sqlalchemy.Select[Any] = sqlalchemy.select(observer.model).where(where)
    statement = statement.execution_options(populate_existing=True, autoflush=False)
    return list(session.scalars(statement).unique())
