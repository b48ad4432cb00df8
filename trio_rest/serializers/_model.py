"""`ModelSerializer`: a `Serializer` whose fields come from a SQLAlchemy model, and which writes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .._errors import ConfigurationError, ValidationError
from ..db import conflict
from ._field import Field, messages_of
from ._fieldset import NestedField, class_cache
from ._inference import (
    MetaOptions,
    hyperlinked_field,
    identity_field,
    infer_field,
    link_foreign_keys,
)
from ._serializer import Serializer
from ._unique import UniqueRule, conflicts, integrity_errors, unique_rules

__all__ = ["HyperlinkedModelSerializer", "ModelSerializer"]

# What a SQLAlchemy @validates hook raises to refuse a value: `assert` or a
# plain ValueError are the idioms of SQLAlchemy's own documentation.
_REFUSALS: Final = (AssertionError, ValueError)


def _nested_field(model: type, depth: int, many: bool) -> Field:
    meta = type("Meta", (), {"model": model, "fields": "__all__", "depth": depth})
    serializer_class = type(f"{model.__name__}NestedSerializer", (ModelSerializer,), {"Meta": meta})
    return NestedField(serializer_class(many=many))


class _ModelPlan:
    """What writing a model needs, computed once per serializer class."""

    __slots__ = ("field_of", "model", "relationships", "rules")

    def __init__(self, serializer_class: type[ModelSerializer]) -> None:
        fields = serializer_class._fieldset().fields
        options = MetaOptions(serializer_class)
        self.model = options.model
        self.relationships = frozenset(options.mapper.relationships.keys())
        # attribute -> field name, to report a refused attribute on its field.
        self.field_of: dict[str, str] = {}
        for name, field in fields.items():
            if field.read_only:
                continue
            if len(field.source_attrs) != 1:
                raise ConfigurationError(
                    f"{serializer_class.__name__}.{name}: a writable field of a ModelSerializer "
                    "needs a plain attribute as its source"
                )
            self.field_of[field.source_attrs[0]] = name
        self.rules: tuple[UniqueRule, ...] = unique_rules(options.mapper, fields)


def _begin_outer_transaction(session: Session, model: type) -> None:
    """Make sure a real transaction surrounds the SAVEPOINT we are about to open.

    pysqlite, in its default mode, issues BEGIN only before INSERT, UPDATE and
    DELETE. A SAVEPOINT sent first would itself become the outermost
    transaction, and releasing it would COMMIT, behind the back of the
    framework that owns the transaction. Engines configured as SQLAlchemy's
    pysqlite documentation recommends are already in a transaction here.
    """
    connection = session.connection(bind_arguments={"mapper": sa.inspect(model)})
    if connection.dialect.name != "sqlite":
        return
    dbapi_connection = connection.connection.dbapi_connection
    if getattr(dbapi_connection, "isolation_level", None) is None:
        return  # driver-level autocommit: the application manages BEGIN itself
    if not getattr(dbapi_connection, "in_transaction", True):
        connection.exec_driver_sql("BEGIN")


class ModelSerializer(Serializer):
    """A `Serializer` whose fields are inferred from a SQLAlchemy model, which it creates and updates.

    Configure it with an inner ``Meta`` class:

    - ``model``: the mapped class (required).
    - ``fields``: the field names, in output order, or ``"__all__"`` (the
      table's columns in table order, then the relationships); or
      ``exclude``: names to leave out of ``"__all__"``. Without either,
      ``"__all__"``, as in aiorest-ws. Declared fields not listed come last.
    - ``validators``: callables run on the validated data as a whole, before
      ``validate()`` (see `Serializer`).
    - ``read_only_fields``: inferred fields to make read-only.
    - ``extra_kwargs``: per-field options for inferred fields, e.g.
      ``{"password": {"write_only": True}}``.
    - ``depth``: represent relationships as nested objects (read-only), this
      many levels deep, instead of primary keys.

    Columns become fields by type; a column is optional when it is nullable
    or has a default, read-only when the database generates it (an
    autoincrement primary key, an identity, a computed column). Relationships
    become `PrimaryKeyRelatedField`; foreign key columns check the key
    exists; properties become `ReadOnlyField`. Unique constraints are checked
    during validation (one query).

    Writes need ``context["session"]``; they never commit: the caller owns
    the transaction.

    Args:
        See `Serializer`.

    Raises:
        ConfigurationError: on first use, when ``Meta`` is inconsistent or
            names something the model does not have.
    """

    Meta: ClassVar[type]

    @classmethod
    def build_fields(cls) -> dict[str, Field]:
        """Return the inferred and declared fields in output order (see the class docstring).

        Returns:
            Field name -> a fresh `Field`.

        Raises:
            ConfigurationError: when ``Meta`` is inconsistent.
        """
        options = MetaOptions(cls)
        declared = super().build_fields()
        fields = {
            name: declared[name] if name in declared else cls._infer(name, options)
            for name in options.field_names(declared, cls._all_names(options))
        }
        link_foreign_keys(fields, options.mapper)
        return fields

    @classmethod
    def _all_names(cls, options: MetaOptions) -> list[str]:
        """What ``'__all__'`` stands for."""
        return options.all_names()

    @classmethod
    def _infer(cls, name: str, options: MetaOptions) -> Field:
        """The field of one name the serializer does not declare."""
        return infer_field(name, options, _nested_field)

    @classmethod
    def _plan(cls) -> _ModelPlan:
        return class_cache(cls, "_model_plan_cache", lambda: _ModelPlan(cls))

    def _check_values(self, values: dict[str, Any], errors: dict[str, Any]) -> None:
        rules = type(self)._plan().rules
        if not rules:
            return
        instance = None if self.many else self.instance
        for field, messages in conflicts(self.session, rules, values, instance).items():
            errors.setdefault(field, []).extend(messages)

    def create(self, validated_data: dict[str, Any]) -> Any:
        """Build a model instance from validated data, add it to the session and flush it.

        Attributes are set one by one, scalars first, then relationships
        (to-many ones from lists of related instances), so that a
        ``@validates`` hook that asserts or raises ValueError becomes an
        error on its field. The flush runs inside a SAVEPOINT: a unique
        violation (a concurrent insert won the race) becomes the same field
        error as the check during validation, and the outer transaction
        stays usable. Nothing is committed.

        Args:
            validated_data: attribute -> value (`save` adds its extras).

        Returns:
            The new, flushed instance (its primary key is set).

        Raises:
            ValidationError: with every refused attribute, or the violated
                unique constraint, as field errors.
            RuntimeError: when the context has no session.
            sqlalchemy.exc.IntegrityError: for violations other than
                uniqueness (a broken foreign key...).
        """
        return self._write(None, validated_data)

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        """Set validated values on an instance and flush it, as `create` does.

        When a value is refused, the SAVEPOINT is rolled back and the
        instance reloads its stored values.

        Args:
            instance: a persistent instance of the model.
            validated_data: attribute -> value (`save` adds its extras).

        Returns:
            The instance, flushed.

        Raises:
            ValidationError: as `create`.
            ConflictError: the row was deleted (or its version changed) since
                it was read: a 409.
            RuntimeError: when the context has no session.
            sqlalchemy.exc.IntegrityError: as `create`.
        """
        return self._write(instance, validated_data)

    def new_instance(self) -> Any:
        """Make the empty model instance `create` fills in; override for custom constructors.

        Returns:
            ``Meta.model()``.
        """
        return type(self)._plan().model()

    def _write(self, instance: Any, values: dict[str, Any]) -> Any:
        plan = type(self)._plan()
        session = self.session
        # Whatever the caller left pending is flushed now, so that its own
        # errors surface as they are, not as this write's.
        session.flush()
        _begin_outer_transaction(session, plan.model)
        try:
            # The SAVEPOINT also undoes refused assignments: rolling it back
            # expires what changed inside it (begin_nested flushed the rest).
            with session.begin_nested():
                # A @validates hook that queries must not flush a half-built object.
                with session.no_autoflush:
                    target = self.new_instance() if instance is None else instance
                    errors = self._assign(target, values, plan)
                    if errors:
                        raise ValidationError(errors=errors)
                    if instance is None:
                        session.add(target)
                session.flush()
        except sa.orm.exc.StaleDataError as exc:  # the row was deleted since it was read
            raise conflict(exc) from None
        except sa.exc.IntegrityError as exc:
            errors = integrity_errors(
                exc, plan.rules, lambda: conflicts(session, plan.rules, values, instance)
            )
            if not errors:
                raise
            raise ValidationError(errors=errors) from exc
        return target

    def _assign(self, target: Any, values: Mapping[str, Any], plan: _ModelPlan) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        model = type(target)
        # Scalars first: a relationship's @validates hook may look at them.
        for key in sorted(values, key=lambda key: key in plan.relationships):
            if not hasattr(model, key):
                raise TypeError(f"{model.__name__} has no attribute {key!r} to store")
            try:
                setattr(target, key, values[key])
            except _REFUSALS as exc:
                errors[plan.field_of.get(key, key)] = [str(exc) or "Invalid value."]
            except ValidationError as exc:
                errors[plan.field_of.get(key, key)] = messages_of(exc)
        return errors


class HyperlinkedModelSerializer(ModelSerializer):
    """A `ModelSerializer` whose relationships are URLs, as in Django REST framework and aiorest-ws.

    Relationships become `HyperlinkedRelatedField`, and a ``url`` field
    (`HyperlinkedIdentityField`) gives the object's own URL. Both point at the
    route named ``"<model>-detail"`` (the model's class name in lower case),
    whose parameter is the primary key's attribute (``{id:int}``);
    ``Meta.extra_kwargs`` changes ``view_name``, ``lookup_field`` or
    ``lookup_url_kwarg`` per field. ``"__all__"`` (or no ``fields``) means
    ``url``, the columns other than the primary key, then the relationships.
    The URLs are built and resolved with ``context["request"]``'s router.
    """

    #: The name of the field holding the object's own URL.
    url_field_name: ClassVar[str] = "url"

    @classmethod
    def _all_names(cls, options: MetaOptions) -> list[str]:
        keys = {options.mapper.get_property_by_column(column).key for column in options.mapper.primary_key}
        return [cls.url_field_name, *(name for name in options.all_names() if name not in keys)]

    @classmethod
    def _infer(cls, name: str, options: MetaOptions) -> Field:
        if name == cls.url_field_name:
            return identity_field(options, name)
        return infer_field(name, options, _nested_field, hyperlinked_field)
