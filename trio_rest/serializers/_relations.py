"""Fields whose values are other model objects: by primary key, by hyperlink, by foreign key.

Writable relation fields look objects up in their ``queryset`` (a mapped class
or a ``select()`` of one) through the serializer's session, with one query for
however many keys the input names.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, NoReturn
from urllib.parse import urlsplit

import sqlalchemy as sa

from .._errors import ConfigurationError, MethodNotAllowedError, NotFoundError, ValidationError
from ._field import Field, empty, messages_of

if TYPE_CHECKING:
    from .._routing import SimpleRouter
    from ._serializer import Serializer

__all__ = [
    "ForeignKeyField",
    "HyperlinkedIdentityField",
    "HyperlinkedRelatedField",
    "PrimaryKeyRelatedField",
    "RelatedField",
    "pk_python_type",
]

_INT_KEY: Final = re.compile(r"[+-]?[0-9]{1,20}")
# Keys outside a signed 64-bit integer cannot exist in any integer column, and
# some drivers fail to even send them (a 500 instead of a 400).
_INT64: Final = range(-(2**63), 2**63)
_MISSING: Final = object()


def pk_python_type(column: sa.ColumnElement[Any]) -> type | None:
    """The Python type of a key column's values, or None when SQLAlchemy cannot tell."""
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def _coerce_key(field: Field, data: Any, python_type: type | None, serializer: Serializer) -> Any:
    """Turn an input key into the column's Python type, or fail with ``incorrect_type``.

    Returns `_MISSING` for a well-typed key that cannot exist (an out-of-range integer).
    """
    if isinstance(data, bool) or data is None or isinstance(data, list | dict):
        field.fail("incorrect_type", data_type=type(data).__name__)
    if python_type is int:
        if isinstance(data, int):
            return data if data in _INT64 else _MISSING
        if isinstance(data, float) and data.is_integer():
            return int(data)
        if isinstance(data, str) and _INT_KEY.fullmatch(data.strip()):
            value = int(data)
            return value if value in _INT64 else _MISSING
        field.fail("incorrect_type", data_type=type(data).__name__)
    if python_type is str:
        if isinstance(data, str | int):
            return str(data)
        field.fail("incorrect_type", data_type=type(data).__name__)
    if python_type is None or isinstance(data, python_type):
        return data
    try:
        return serializer.converter.structure(data, python_type)
    except Exception:  # e.g. a malformed UUID; custom hooks may raise anything
        field.fail("incorrect_type", data_type=type(data).__name__)


def _output_key(value: Any) -> Any:
    # UUIDs are the one common key type JSON cannot carry as is.
    return str(value) if isinstance(value, uuid.UUID) else value


def _model_of(queryset: Any) -> type:
    if isinstance(queryset, type):
        return queryset
    if isinstance(queryset, sa.Select):
        descriptions = queryset.column_descriptions
        entity = descriptions[0].get("entity") if len(descriptions) == 1 else None
        if isinstance(entity, type):
            return entity
    raise ConfigurationError(f"queryset must be a mapped class or select(<mapped class>), not {queryset!r}")


class RelatedField(Field):
    """Base of the fields whose value is a related object (or a list of them, with `many`).

    Subclasses say how an input item becomes a lookup key (`to_key`), which
    attribute keys are looked up by (`lookup_attribute`) and how an object is
    represented.

    Args:
        queryset: where input keys are looked up: a mapped class, or a
            ``select(Model)`` statement (filters narrow what may be picked);
            required unless `read_only`.
        many: the value is a list of objects (a to-many relationship).
        allow_empty: with `many`, whether an empty list is valid.
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: without a `queryset` on a writable field, or
            with a queryset that does not select one mapped class.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "not_a_list": 'Expected a list of items but got type "{input_type}".',
        "empty": "This list may not be empty.",
    }

    def __init__(
        self, *, queryset: Any = None, many: bool = False, allow_empty: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if queryset is None and not self.read_only:
            raise ConfigurationError(f"{type(self).__name__} needs a queryset unless read_only=True")
        self.queryset = queryset
        self.model: type | None = None if queryset is None else _model_of(queryset)
        self.many = many
        self.allow_empty = allow_empty

    # Subclass interface ---------------------------------------------------------

    def to_key(self, data: Any, serializer: Serializer) -> Any:
        """Turn one input item into the value of `lookup_attribute`.

        Raises:
            ValidationError: when the item has the wrong shape.
        """
        raise NotImplementedError

    def lookup_attribute(self) -> str:
        """The model attribute input keys are compared with."""
        raise NotImplementedError

    def represent_one(self, obj: Any, serializer: Serializer) -> Any:
        """Represent one related object."""
        raise NotImplementedError

    def fail_missing(self, key: Any) -> NoReturn:
        """Raise the error for a key no object has."""
        raise NotImplementedError

    # Shared machinery -------------------------------------------------------------

    def to_representation(self, value: Any, serializer: Serializer) -> Any:
        if self.many:
            return [self.represent_one(obj, serializer) for obj in value]
        return self.represent_one(value, serializer)

    def to_internal_value(self, data: Any, serializer: Serializer) -> Any:
        if not self.many:
            key = self.to_key(data, serializer)
            if key is _MISSING:
                self.fail_missing(data)
            obj = self.lookup([key], serializer).get(key, _MISSING)
            if obj is _MISSING:
                self.fail_missing(key)
            return obj
        if not isinstance(data, list | tuple):
            self.fail("not_a_list", input_type=type(data).__name__)
        if not data and not self.allow_empty:
            self.fail("empty")
        return self._many_to_internal(data, serializer)

    def _many_to_internal(self, data: list[Any] | tuple[Any, ...], serializer: Serializer) -> list[Any]:
        entries: list[tuple[Any, Any]] = []  # (key or _MISSING, input item), in input order
        messages: list[Any] = []
        for item in data:
            try:
                entries.append((self.to_key(item, serializer), item))
            except ValidationError as exc:
                messages.extend(messages_of(exc))
        wanted = list(dict.fromkeys(key for key, _ in entries if key is not _MISSING))
        found = self.lookup(wanted, serializer) if wanted else {}
        result: dict[Any, Any] = {}  # deduplicated, in input order
        for key, item in entries:
            if key is not _MISSING and key in found:
                result.setdefault(key, found[key])
                continue
            try:
                self.fail_missing(item if key is _MISSING else key)
            except ValidationError as exc:
                messages.extend(messages_of(exc))
        if messages:
            raise ValidationError(errors=list(dict.fromkeys(messages)))
        return list(result.values())

    def lookup(self, keys: list[Any], serializer: Serializer) -> dict[Any, Any]:
        """Fetch the objects whose `lookup_attribute` is one of `keys`, in one query.

        Args:
            keys: the keys (already of the column's Python type).
            serializer: gives the session.

        Returns:
            Key -> object, for the keys that exist in the queryset.

        Raises:
            RuntimeError: when the serializer has no session.
        """
        assert self.model is not None  # writable fields have a queryset
        session = serializer.session
        attribute = self.lookup_attribute()
        column = getattr(self.model, attribute)
        statement = sa.select(self.model) if isinstance(self.queryset, type) else self.queryset
        statement = statement.where(column.in_(keys))
        return {getattr(obj, attribute): obj for obj in session.scalars(statement).unique()}


class _KnownPk:
    """A primary key read from the local foreign key column, so the related row need not be loaded."""

    __slots__ = ("pk",)

    def __init__(self, pk: Any) -> None:
        self.pk = pk


class PrimaryKeyRelatedField(RelatedField):
    """A related object written and read as its primary key.

    Input is the key (``5``) or, as aiorest-ws clients send it, an object
    holding it (``{"id": 5}``); with `many`, a list of either. Output is the
    key. For a many-to-one relationship the key is read from the local
    foreign key column, without loading the related row.

    Args:
        queryset: see `RelatedField`.
        many: see `RelatedField`.
        allow_empty: see `RelatedField`.
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `RelatedField`, and (when the fields are
            built) for a model with a composite primary key.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "does_not_exist": 'Invalid pk "{pk_value}" - object does not exist.',
        "incorrect_type": "Incorrect type. Expected pk value, received {data_type}.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pk_key = "id"
        self._pk_type: type | None = None
        # Set by ModelSerializer for many-to-one relationships: the attribute
        # of the local foreign key column (see `get_attribute`).
        self.local_key: str | None = None

    def bind(self, field_name: str, serializer_class: type[Serializer]) -> None:
        super().bind(field_name, serializer_class)
        if self.model is None:
            return
        primary_key: tuple[sa.Column[Any], ...] = sa.inspect(self.model).primary_key
        if len(primary_key) != 1:
            raise ConfigurationError(f"{field_name}: {self.model.__name__} has a composite primary key")
        self._pk_key = sa.inspect(self.model).get_property_by_column(primary_key[0]).key
        self._pk_type = pk_python_type(primary_key[0])

    def lookup_attribute(self) -> str:
        return self._pk_key

    def to_key(self, data: Any, serializer: Serializer) -> Any:
        if isinstance(data, Mapping):
            key = data.get(self._pk_key, data.get("id", empty))
            if key is empty:
                self.fail("incorrect_type", data_type=type(data).__name__)
            data = key
        return _coerce_key(self, data, self._pk_type, serializer)

    def lookup(self, keys: list[Any], serializer: Serializer) -> dict[Any, Any]:
        if len(keys) == 1 and isinstance(self.queryset, type):
            # Session.get answers from the identity map when it can: no query.
            obj = serializer.session.get(self.queryset, keys[0])
            return {} if obj is None else {keys[0]: obj}
        return super().lookup(keys, serializer)

    def fail_missing(self, key: Any) -> NoReturn:
        self.fail("does_not_exist", pk_value=key)

    def get_attribute(self, instance: Any) -> Any:
        local_key = self.local_key
        # SQLAlchemy keeps loaded attributes in __dict__: when the related
        # object is not loaded, its key is already in our own row.
        if (
            local_key is not None
            and not isinstance(instance, Mapping)
            and self.source_attrs[0] not in instance.__dict__
        ):
            value = getattr(instance, local_key)
            return None if value is None else _KnownPk(value)
        return super().get_attribute(instance)

    def represent_one(self, obj: Any, serializer: Serializer) -> Any:
        if type(obj) is _KnownPk:
            return _output_key(obj.pk)
        return _output_key(getattr(obj, self._pk_key))


def _router(serializer: Serializer) -> SimpleRouter:
    request = serializer.context.get("request")
    app = request.app if request is not None else serializer.context.get("app")
    if app is None:
        raise RuntimeError(
            "hyperlinked fields need context['request'] or context['app'] (its router builds the URLs)"
        )
    return app.router  # type: ignore[no-any-return]


class HyperlinkedRelatedField(RelatedField):
    """A related object written and read as the URL of its route.

    Output is ``router.reverse(view_name, **{lookup_url_kwarg: obj.<lookup_field>})``
    with the router of ``context["request"].app``; input is such a URL (a
    path, with or without its leading slash, or a full URL whose path is
    used, ``ws://`` and ``wss://`` included), or ``{"url": URL}``, resolved
    back with the router.

    Args:
        view_name: the name the route was registered with.
        lookup_field: the model attribute the URL carries.
        lookup_url_kwarg: the route parameter holding it (default: `lookup_field`).
        queryset: see `RelatedField`.
        many: see `RelatedField`.
        allow_empty: see `RelatedField`.
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `RelatedField`, and (when the fields are
            built) when the model has no `lookup_field` attribute.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "no_match": "Invalid hyperlink - No URL match.",
        "incorrect_match": "Invalid hyperlink - Incorrect URL match.",
        "does_not_exist": "Invalid hyperlink - Object does not exist.",
        "incorrect_type": "Incorrect type. Expected URL string, received {data_type}.",
    }

    def __init__(
        self,
        view_name: str,
        *,
        lookup_field: str = "id",
        lookup_url_kwarg: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.view_name = view_name
        self.lookup_field = lookup_field
        self.lookup_url_kwarg = lookup_url_kwarg or lookup_field
        self._key_type: type | None = None

    def bind(self, field_name: str, serializer_class: type[Serializer]) -> None:
        super().bind(field_name, serializer_class)
        if self.model is None:
            return
        attribute = getattr(self.model, self.lookup_field, None)
        if attribute is None:
            raise ConfigurationError(f"{field_name}: {self.model.__name__} has no {self.lookup_field!r}")
        self._key_type = pk_python_type(attribute)

    def lookup_attribute(self) -> str:
        return self.lookup_field

    def to_key(self, data: Any, serializer: Serializer) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("url"), str):
            data = data["url"]  # {"url": ...}, as aiorest-ws clients send it
        if not isinstance(data, str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        path = urlsplit(data).path
        if path and not path.startswith("/"):
            path = "/" + path  # relative to the root, as aiorest-ws took it
        try:
            match = _router(serializer).resolve("GET", path) if path else None
        except (NotFoundError, MethodNotAllowedError):
            match = None
        if match is None:
            self.fail("no_match")
        if match.name != self.view_name:
            self.fail("incorrect_match")
        value = match.params.get(self.lookup_url_kwarg, _MISSING)
        if value is _MISSING:
            self.fail("no_match")
        try:
            return _coerce_key(self, value, self._key_type, serializer)
        except ValidationError:
            # The URL names a key of the wrong type: no object can have it.
            return _MISSING

    def fail_missing(self, key: Any) -> NoReturn:
        self.fail("does_not_exist")

    def represent_one(self, obj: Any, serializer: Serializer) -> Any:
        value = getattr(obj, self.lookup_field)
        if value is None:  # not flushed yet: it has no URL
            return None
        return _router(serializer).reverse(self.view_name, **{self.lookup_url_kwarg: value})


class HyperlinkedIdentityField(HyperlinkedRelatedField):
    """The URL of the object itself (read-only), e.g. a ``"url"`` field.

    Args:
        view_name: the name the object's route was registered with.
        lookup_field: the attribute the URL carries.
        lookup_url_kwarg: the route parameter holding it (default: `lookup_field`).
        **kwargs: the `Field` options (``read_only`` and ``source="*"`` are forced).

    Raises:
        ConfigurationError: as `Field`.
    """

    def __init__(self, view_name: str, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        kwargs["source"] = "*"
        super().__init__(view_name, **kwargs)


class ForeignKeyField(Field):
    """A foreign key column written and read as the raw key, checked to exist.

    ModelSerializer uses it for foreign key columns (``user_id``), so that a
    dangling key is a 400 naming the field rather than a database error.

    Args:
        target: the column the foreign key references.
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = PrimaryKeyRelatedField.default_error_messages

    def __init__(self, target: sa.Column[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self._key_type = pk_python_type(target)

    def to_internal_value(self, data: Any, serializer: Serializer) -> Any:
        key = _coerce_key(self, data, self._key_type, serializer)
        if key is _MISSING:
            self.fail("does_not_exist", pk_value=data)
        statement = sa.select(self.target).where(self.target == key).limit(1)
        if serializer.session.execute(statement).first() is None:
            self.fail("does_not_exist", pk_value=key)
        return key

    def to_representation(self, value: Any, serializer: Serializer) -> Any:
        return _output_key(value)
