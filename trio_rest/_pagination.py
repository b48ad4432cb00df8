"""Pagination of list views: limit/offset, and cursors that stay stable under inserts."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import attrs
import orjson
import sqlalchemy
from sqlalchemy.orm import Session

from ._errors import ValidationError

__all__ = ["INT64", "CursorPagination", "LimitOffsetPagination", "Page", "column_int_range"]

#: The integers a database can compare with a column: signed 64-bit, the
#: widest SQL integer type. A client's larger number would not fail as a bad
#: request but inside the driver (an OverflowError, a 500), so it is refused
#: before it reaches a query.
INT64 = range(-(2**63), 2**63)


@attrs.frozen
class Page:
    """One page of a list: the rows and what the reply says about the others."""

    rows: Sequence[Any]
    meta: dict[str, Any]


def _positive_int(args: Mapping[str, Any], name: str, default: int, maximum: int | None = None) -> int:
    value = args.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(errors={name: ["A valid integer is required."]}) from None
    if number < 0:
        raise ValidationError(errors={name: ["Ensure this value is greater than or equal to 0."]})
    if maximum is not None:
        return min(number, maximum)
    if number not in INT64:
        raise ValidationError(errors={name: [f"Ensure this value is less than or equal to {INT64[-1]}."]})
    return number


def _link(path: str, args: Mapping[str, Any], **changes: Any) -> str:
    query = {**{k: v for k, v in args.items() if not isinstance(v, (dict, list))}, **changes}
    return f"{path}?{urlencode({k: v for k, v in query.items() if v is not None})}"


@attrs.frozen
class LimitOffsetPagination:
    """``?limit=&offset=`` pages with the total count, as DRF's limit/offset.

    Attributes:
        default_limit: rows when the request names no limit (100).
        max_limit: the largest limit a client may ask for (1000): a list can
            never make the server load a whole table.
    """

    default_limit: int = 100
    max_limit: int = 1000

    def paginate(
        self, session: Session, statement: sqlalchemy.Select[Any], path: str, args: Mapping[str, Any]
    ) -> Page:
        """Run one page of `statement`.

        Args:
            session: the request's session (in a worker thread).
            statement: the filtered, ordered query.
            path: the list's path, for the next/previous links.
            args: the request's arguments.

        Returns:
            The page; its meta has ``count``, ``next`` and ``previous``.

        Raises:
            ValidationError: a limit or offset that is not a non-negative integer.
        """
        limit = _positive_int(args, "limit", self.default_limit, self.max_limit)
        offset = _positive_int(args, "offset", 0)
        count = (
            session.scalar(sqlalchemy.select(sqlalchemy.func.count()).select_from(statement.subquery())) or 0
        )
        rows = session.scalars(statement.limit(limit).offset(offset)).unique().all()
        following = offset + limit if offset + limit < count else None
        preceding = max(offset - limit, 0) if offset > 0 else None
        return Page(
            rows,
            {
                "count": count,
                "next": None if following is None else _link(path, args, limit=limit, offset=following),
                "previous": None if preceding is None else _link(path, args, limit=limit, offset=preceding),
            },
        )


def _encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def column_int_range(column: Any, session: Session) -> range | None:
    """The integers `column` can hold, or None when it is not an integer column.

    A value outside them cannot match a row, and PostgreSQL refuses to compare it at all
    (``integer out of range``): callers turn it into a 404 or a 400 instead of a 500.
    SQLite stores every integer in 64 bits; elsewhere ``Integer`` is 32 bits.
    """
    column_type = getattr(column, "type", None)
    if not isinstance(column_type, sqlalchemy.Integer):
        return None
    if isinstance(column_type, sqlalchemy.BigInteger) or session.get_bind().dialect.name == "sqlite":
        return INT64
    if isinstance(column_type, sqlalchemy.SmallInteger):
        return range(-(2**15), 2**15)
    return range(-(2**31), 2**31)


def _decode_cursor(cursor: Any) -> Any:
    try:
        text = str(cursor)
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        value = None
    # A cursor is a column value we encoded: a string or a number the database
    # can compare. Anything else was forged or damaged, and would fail in the
    # query (a list, null, an integer beyond 64 bits) as a 500.
    if not (
        type(value) is str
        or (type(value) is int and value in INT64)
        or (type(value) is float and math.isfinite(value))
    ):
        raise ValidationError(errors={"cursor": ["Invalid cursor."]})
    return value


@attrs.frozen
class CursorPagination:
    """``?cursor=`` pages that follow a unique, ordered column (the primary key by default).

    Rows inserted while a client pages through never shift what it sees,
    and no page needs a count. Forward only: each page links to the next.

    Attributes:
        page_size: rows per page (100), or ``?limit=`` up to `max_limit` (1000).
        field: the unique column to follow (None: the primary key).
    """

    page_size: int = 100
    max_limit: int = 1000
    field: str | None = None

    def paginate(
        self, session: Session, statement: sqlalchemy.Select[Any], path: str, args: Mapping[str, Any]
    ) -> Page:
        """Run the page after ``args["cursor"]`` (the first page without one); see `LimitOffsetPagination`."""
        limit = _positive_int(args, "limit", self.page_size, self.max_limit)
        entity = statement.column_descriptions[0]["entity"]
        column = getattr(entity, self.field) if self.field else sqlalchemy.inspect(entity).primary_key[0]
        statement = statement.order_by(None).order_by(column)
        if args.get("cursor") is not None:
            after = _decode_cursor(args["cursor"])
            integers = column_int_range(column, session)
            if integers is not None and (
                type(after) is str or (type(after) is int and after not in integers)
            ):
                # Not a value of this column: forged.
                raise ValidationError(errors={"cursor": ["Invalid cursor."]})
            statement = statement.where(column > after)
        rows = session.scalars(statement.limit(limit + 1)).unique().all()
        more, rows = len(rows) > limit, rows[:limit]
        key = column.key
        following = _encode_cursor(getattr(rows[-1], key)) if more and rows else None
        return Page(
            rows, {"next": None if following is None else _link(path, args, cursor=following, limit=limit)}
        )
