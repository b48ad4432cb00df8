"""`Field`, the base of every serializer field, and the helpers all fields share.

A field is built once per serializer *class* and shared by every instance and
every worker thread, so it holds configuration only. Everything that varies
per call (the context, the session, the converter) arrives as the
``serializer`` argument of `Field.to_representation` and
`Field.to_internal_value`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, NoReturn

from .._converter import REQUIRED
from .._errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    from ._serializer import Serializer

__all__ = ["Field", "SkipField", "empty", "messages_of"]


class _Empty:
    """The type of `empty`: "no value was given", as distinct from ``None``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "empty"

    def __bool__(self) -> bool:
        return False

    def __copy__(self) -> _Empty:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Empty:
        return self

    def __reduce__(self) -> str:
        return "empty"  # pickled by name, so it stays the one instance


#: Marks a missing value: a field absent from the input, or a field without a default.
empty: Final = _Empty()


class SkipField(Exception):
    """Raised inside validation or representation to leave a field out of the result."""


def messages_of(exc: ValidationError) -> Any:
    """Return the messages a `ValidationError` carries, as the ``errors`` value of one field.

    Args:
        exc: the error a field, a validator or a ``validate_<field>`` hook raised.

    Returns:
        A list of strings, or the nested mapping/list ``errors`` held (nested
        serializers and ``many`` inputs report structured errors).
    """
    errors = exc.errors
    if errors is None:
        return [exc.detail]
    if isinstance(errors, str):
        return [errors]
    if isinstance(errors, Mapping):
        return dict(errors)
    if isinstance(errors, Iterable):
        return list(errors)
    return [str(errors)]


def _merged_messages(cls: type) -> dict[str, str]:
    merged: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get("default_error_messages", {}))
    return merged


class Field:
    """One named value of a serializer: how it is read from an object and validated from input.

    Subclasses override `to_representation` (object value -> JSON-ready value)
    and `to_internal_value` (input value -> Python value, raising
    `trio_rest.ValidationError` through `fail`).

    Args:
        read_only: only in the output; input for it is ignored.
        write_only: only in the input; never in the output.
        required: whether the input must contain it; by default True unless
            the field is read-only or has a default.
        default: the value used when the input lacks the field (a callable is
            called); not applied in partial updates.
        allow_null: whether ``None`` is a valid input.
        source: the attribute to read and write, when it differs from the
            field's name; dotted paths read through objects (``"owner.name"``);
            ``"*"`` passes the whole object.
        validators: callables run on the validated value; each may raise
            `trio_rest.ValidationError`, and every message is reported.
        error_messages: overrides of the messages, by key (``"required"``,
            ``"null"``, ``"invalid"``...).
        help_text: a description, for generated documentation.

    Raises:
        ConfigurationError: for contradictory options (read-only and
            write-only, read-only and required, required with a default).
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "required": REQUIRED,
        "null": "This field may not be null.",
    }
    # Merged default messages per class: fields are built once per class, but
    # merging the MRO on every construction is still wasted work.
    _messages_cache: ClassVar[dict[type, dict[str, str]]] = {}

    def __init__(
        self,
        *,
        read_only: bool = False,
        write_only: bool = False,
        required: bool | None = None,
        default: Any = empty,
        allow_null: bool = False,
        source: str | None = None,
        validators: Iterable[Callable[[Any], object]] = (),
        error_messages: Mapping[str, str] | None = None,
        help_text: str | None = None,
    ) -> None:
        if read_only and write_only:
            raise ConfigurationError("a field cannot be both read_only and write_only")
        if read_only and required:
            raise ConfigurationError("a read_only field cannot be required")
        if required and default is not empty:
            raise ConfigurationError("a required field cannot have a default")
        self.read_only = read_only
        self.write_only = write_only
        self.required = (default is empty and not read_only) if required is None else required
        self.default = default
        self.allow_null = allow_null
        self.source = source
        self.validators = tuple(validators)
        self.help_text = help_text
        base = Field._messages_cache.get(type(self))
        if base is None:
            base = Field._messages_cache[type(self)] = _merged_messages(type(self))
        self.error_messages = {**base, **error_messages} if error_messages else base
        self.field_name = ""
        self.source_attrs: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.field_name or '(unbound)'}>"

    def clone(self) -> Field:
        """Return an unbound copy, so one declaration can serve several serializer classes.

        Returns:
            A shallow copy of this field.
        """
        return copy.copy(self)

    def bind(self, field_name: str, serializer_class: type[Serializer]) -> None:
        """Attach the field to its name in a serializer class (once, when the class's fields are built).

        Args:
            field_name: the key in the input and output.
            serializer_class: the serializer class the field belongs to.

        Raises:
            ConfigurationError: if the field cannot work in that class.
        """
        self.field_name = field_name
        source = self.source or field_name
        self.source_attrs = () if source == "*" else tuple(source.split("."))

    # Reading ------------------------------------------------------------------

    def get_attribute(self, instance: Any) -> Any:
        """Read this field's value from an object (or a mapping), following `source`.

        Args:
            instance: the object being represented.

        Returns:
            The value, or None when an intermediate object is None.

        Raises:
            SkipField: when `instance` is a mapping without the key.
        """
        for attr in self.source_attrs:
            if instance is None:
                return None
            if isinstance(instance, Mapping):
                instance = instance.get(attr, empty)
                if instance is empty:
                    raise SkipField()
            else:
                instance = getattr(instance, attr)
        return instance

    def to_representation(self, value: Any, serializer: Serializer) -> Any:
        """Turn a non-None value read from an object into its JSON-ready form.

        Args:
            value: what `get_attribute` returned.
            serializer: the serializer instance doing the work (for its
                context and converter).

        Returns:
            The value itself; subclasses convert.
        """
        return value

    # Writing ------------------------------------------------------------------

    def get_default(self) -> Any:
        """Return the default value (calling it when it is callable).

        Returns:
            The default.

        Raises:
            SkipField: when the field has no default.
        """
        if self.default is empty:
            raise SkipField()
        return self.default() if callable(self.default) else self.default

    def run_validation(self, data: Any, serializer: Serializer) -> Any:
        """Validate one present input value: null handling, conversion, then validators.

        Args:
            data: the value from the input (never `empty`).
            serializer: the serializer instance doing the work.

        Returns:
            The validated Python value.

        Raises:
            ValidationError: with this field's messages.
        """
        if data is None:
            if not self.allow_null:
                self.fail("null")
            return None
        value = self.to_internal_value(data, serializer)
        if self.validators:
            self.run_validators(value)
        return value

    def to_internal_value(self, data: Any, serializer: Serializer) -> Any:
        """Turn a non-None input value into the Python value to store.

        Args:
            data: the input value.
            serializer: the serializer instance doing the work.

        Returns:
            The value itself; subclasses check and convert.

        Raises:
            ValidationError: when the value is not acceptable.
        """
        return data

    def run_validators(self, value: Any) -> None:
        """Run every validator and report all their messages together.

        Args:
            value: the converted value.

        Raises:
            ValidationError: listing every failing validator's messages.
        """
        messages: list[Any] = []
        for validator in self.validators:
            try:
                validator(value)
            except ValidationError as exc:
                found = messages_of(exc)
                messages.extend(found if isinstance(found, list) else [found])
        if messages:
            raise ValidationError(errors=messages)

    def fail(self, key: str, **params: Any) -> NoReturn:
        """Raise the field's message `key`, formatted with `params`.

        Args:
            key: a key of `error_messages`.
            **params: values for the message's placeholders.

        Raises:
            ValidationError: always.
        """
        raise ValidationError(errors=[self.error_messages[key].format(**params)])
