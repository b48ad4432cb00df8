"""Uniqueness: checked with a query before writing, and recognised when the database refuses a write.

A rule is one unique constraint or unique index of the model's tables. Before
a write, every rule the input touches is checked in a single query; a write
that still violates one (another transaction got there first) is turned into
the same error by reading the database's error, or failing that by checking
again once the competitor's row is visible.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.exc import UnmappedColumnError

from ._field import Field
from ._serializer import NON_FIELD_ERRORS

__all__ = ["UniqueRule", "conflicts", "integrity_errors", "unique_rules"]

_PG_UNIQUE_VIOLATION: Final = "23505"
_PG_KEY: Final = re.compile(r"Key \((.+?)\)=\(")
_SQLITE_UNIQUE: Final = re.compile(r"UNIQUE constraint failed: (.+)$")
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1).
_PG_NAME_LIMIT: Final = 63


@attrs.frozen
class UniqueRule:
    """One unique constraint or index, as the serializer reports it.

    Attributes:
        keys: the model attributes it covers.
        columns: their columns.
        table: the table's name.
        names: the constraint or index names the database may report.
        field: the field to report on (``non_field_errors`` for several columns).
        message: the error message.
    """

    keys: tuple[str, ...]
    columns: tuple[sa.Column[Any], ...]
    table: str
    names: frozenset[str]
    field: str
    message: str


def _unique_column_sets(table: sa.Table) -> list[tuple[tuple[sa.Column[Any], ...], set[str]]]:
    found: list[tuple[tuple[sa.Column[Any], ...], set[str]]] = []
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and constraint.columns:
            columns = tuple(constraint.columns)
            default = f"{table.name}_{'_'.join(column.name for column in columns)}_key"[:_PG_NAME_LIMIT]
            names = {default}
            if isinstance(constraint.name, str):
                names.add(constraint.name)
            found.append((columns, names))
    for index in table.indexes:
        # Expression indexes (lower(name)) cannot be checked column by column.
        if index.unique and len(index.expressions) == len(index.columns) and index.columns:
            found.append((tuple(index.columns), {index.name} if isinstance(index.name, str) else set()))
    return found


def unique_rules(mapper: Mapper[Any], fields: Mapping[str, Field]) -> tuple[UniqueRule, ...]:
    """Every unique rule of a model's tables, with the field each is reported on.

    Args:
        mapper: the model's mapper.
        fields: the serializer's bound fields (to name the right field when
            its source differs from the attribute).

    Returns:
        The rules, constraints before indexes, in table order.
    """
    by_source = {
        field.source_attrs[0]: name for name, field in fields.items() if len(field.source_attrs) == 1
    }
    model_label = _CAMEL.sub(" ", mapper.class_.__name__).lower()
    rules: list[UniqueRule] = []
    seen: set[tuple[sa.Column[Any], ...]] = set()
    for table in mapper.tables:
        if not isinstance(table, sa.Table):
            continue
        for columns, names in _unique_column_sets(table):
            if columns in seen:
                continue
            seen.add(columns)
            try:
                keys = tuple(mapper.get_property_by_column(column).key for column in columns)
            except UnmappedColumnError:
                continue
            labels = [by_source.get(key, key) for key in keys]
            if len(keys) == 1:
                field = labels[0]
                message = f"{model_label} with this {field.replace('_', ' ')} already exists."
            else:
                field = NON_FIELD_ERRORS
                message = f"The fields {', '.join(labels)} must make a unique set."
            rules.append(UniqueRule(keys, columns, table.name, frozenset(names), field, message))
    return tuple(rules)


def conflicts(
    session: Session,
    rules: tuple[UniqueRule, ...],
    values: Mapping[str, Any],
    instance: Any = None,
) -> dict[str, list[str]]:
    """Find which rules the values would violate, in one query.

    A rule is checked when the values set at least one of its attributes and
    none of its values is None (NULLs never collide); missing attributes are
    read from `instance`, which is itself excluded.

    Args:
        session: where to look.
        rules: the model's rules.
        values: attribute -> new value.
        instance: the object being updated, or None for a new one.

    Returns:
        Field -> messages, for the rules violated (empty when none).
    """
    checks: list[tuple[UniqueRule, sa.ColumnElement[bool]]] = []
    not_self = _not_instance(instance)
    for rule in rules:
        condition = _condition(rule, values, instance)
        if condition is not None:
            checks.append((rule, condition if not_self is None else sa.and_(condition, not_self)))
    if not checks:
        return {}
    statement = sa.select(*(sa.exists().where(condition) for _, condition in checks))
    row = session.execute(statement).one()
    errors: dict[str, list[str]] = {}
    for (rule, _), taken in zip(checks, row, strict=True):
        if taken:
            errors.setdefault(rule.field, []).append(rule.message)
    return errors


def _condition(rule: UniqueRule, values: Mapping[str, Any], instance: Any) -> sa.ColumnElement[bool] | None:
    if not any(key in values for key in rule.keys):
        return None
    parts: list[sa.ColumnElement[bool]] = []
    for key, column in zip(rule.keys, rule.columns, strict=True):
        if key in values:
            value = values[key]
        elif instance is not None:
            value = getattr(instance, key)
        else:
            return None  # left to a default: cannot be checked beforehand
        if value is None:
            return None
        parts.append(column == value)
    return sa.and_(*parts)


def _not_instance(instance: Any) -> sa.ColumnElement[bool] | None:
    if instance is None:
        return None
    state = sa.inspect(instance)
    if state.identity is None:
        return None
    pairs = zip(state.mapper.primary_key, state.identity, strict=True)
    return sa.not_(sa.and_(*(column == value for column, value in pairs)))


@attrs.frozen
class _Violation:
    """What a unique violation error says; empty when the driver's messages are not understood."""

    table: str | None = None
    columns: frozenset[str] = frozenset()
    constraint: str | None = None


def _describe(exc: sa.exc.IntegrityError) -> _Violation | None:
    """Read a unique violation from a driver error; None when it is another integrity error."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None:  # psycopg
        if getattr(orig, "sqlstate", None) != _PG_UNIQUE_VIOLATION:
            return None
        # The detail is "Key (name)=(bob) already exists." (quoted if the name needs it).
        match = _PG_KEY.match(diag.message_detail or "")
        columns = match.group(1).split(",") if match else []
        return _Violation(
            diag.table_name, frozenset(part.strip().strip('"') for part in columns), diag.constraint_name
        )
    if type(orig).__module__ != "sqlite3":
        return _Violation()  # a driver we cannot read: let the caller check again
    # "UNIQUE constraint failed: user.name" or, for an expression index, "... index 'ix_name'".
    match = _SQLITE_UNIQUE.search(str(orig))
    if match is None:
        return None
    text = match.group(1).strip()
    if text.startswith("index "):
        return _Violation(constraint=text[len("index ") :].strip("'\""))
    tables, columns = set(), set()
    for part in text.split(","):
        table, _, column = part.strip().rpartition(".")
        tables.add(table)
        columns.add(column)
    return _Violation(tables.pop() if len(tables) == 1 else None, frozenset(columns))


def _matching_rule(violation: _Violation, rules: tuple[UniqueRule, ...]) -> UniqueRule | None:
    for rule in rules:
        if violation.table is not None and violation.table != rule.table:
            continue
        if violation.columns and violation.columns == frozenset(column.name for column in rule.columns):
            return rule
        if violation.constraint is not None and violation.constraint in rule.names:
            return rule
    return None


def integrity_errors(
    exc: sa.exc.IntegrityError,
    rules: tuple[UniqueRule, ...],
    recheck: Callable[[], dict[str, list[str]]],
) -> dict[str, list[str]]:
    """Turn a unique violation raised by a write into field errors.

    Args:
        exc: the error a flush raised (its savepoint already rolled back).
        rules: the model's rules.
        recheck: runs `conflicts` again, for violations the error does not
            name clearly (the competing row is committed by now).

    Returns:
        Field -> messages; empty when the error is not a unique violation of
        this model (the caller re-raises it).
    """
    violation = _describe(exc)
    if violation is None:
        return {}
    rule = _matching_rule(violation, rules)
    if rule is not None:
        return {rule.field: [rule.message]}
    return recheck()
