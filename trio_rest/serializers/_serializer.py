"""`Serializer`: validates input into Python values and represents objects as JSON-ready data.

The fields of a serializer class are built once, on first use, and shared by
every instance and thread (`FieldSet`); an instance holds only the state of
one call: the instance or input, the context, the results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

import cattrs

from .._converter import make_converter
from .._errors import ValidationError
from ._field import Field, SkipField, empty, messages_of
from ._fieldset import BUILD_LOCK, FieldSet, NestedField, class_cache

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["NON_FIELD_ERRORS", "Serializer"]

#: The key of errors that concern the whole object rather than one field.
NON_FIELD_ERRORS: Final = "non_field_errors"
_default_converter: cattrs.Converter | None = None


def default_converter() -> cattrs.Converter:
    """Return the module's own converter, for serializers used outside any App (built once)."""
    global _default_converter
    if _default_converter is None:
        with BUILD_LOCK:
            if _default_converter is None:
                _default_converter = make_converter()
    return _default_converter


def _field_errors(exc: ValidationError) -> dict[str, Any]:
    """The errors of an object-level `ValidationError`, keyed by field."""
    found = messages_of(exc)
    if isinstance(found, dict):
        return {key: value if isinstance(value, list | dict) else [value] for key, value in found.items()}
    return {NON_FIELD_ERRORS: found}


def _set_value(target: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    if not keys:
        target.update(value)
        return
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


class Serializer:
    """Declared fields turn input into validated data and objects into JSON-ready data.

    Declare fields as class attributes (another serializer as a field
    represents nested objects, read-only). Construct one per call, as in
    Django REST framework: ``S(instance)`` to read, ``S(data=...)`` to
    create, ``S(instance, data=...)`` to update, then `is_valid`, `save`,
    `data`.

    Hooks: ``validate_<field>(self, value)`` returns the value to keep or
    raises `trio_rest.ValidationError` (reported on that field); then the
    callables of ``Meta.validators`` (`get_validators`) and `validate` check
    the whole object.

    Args:
        instance: the object (or list, with `many`) to represent or update.
        data: the input to validate (a mapping, or a list with `many`).
        many: work on a list of objects / inputs.
        partial: every field is optional (a PATCH).
        context: ``"session"`` (a SQLAlchemy Session, for anything touching
            the database), ``"request"`` (a `trio_rest.Request`: URLs, the
            App's converter, and its session as a fallback), ``"converter"``.
        read_only: as a nested field: accepted for Django REST framework
            compatibility; nested serializers are always read-only.
        required: as a nested field: `Field`'s option.
        allow_null: as a nested field: `Field`'s option.
        source: as a nested field: the attribute holding the related object(s).
        allow_empty: with `many`, whether an empty input list is valid.
        help_text: as a nested field: a description.

    Raises:
        ConfigurationError: on first use of a class whose fields are
            inconsistent (see the fields and `ModelSerializer`).
    """

    _declared_fields: ClassVar[dict[str, Field | Serializer]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared: dict[str, Field | Serializer] = {}
        for base in reversed(cls.__bases__):
            declared.update(getattr(base, "_declared_fields", {}))
        for name, value in list(vars(cls).items()):
            if isinstance(value, Field | Serializer):
                declared[name] = value
                # Like Django REST framework: the class attribute is the
                # declaration, not something instances should see.
                delattr(cls, name)
            elif value is None and name in declared:
                del declared[name]  # a subclass removes an inherited field
        cls._declared_fields = declared

    def __init__(
        self,
        instance: Any = None,
        data: Any = empty,
        *,
        many: bool = False,
        partial: bool = False,
        context: dict[str, Any] | None = None,
        read_only: bool = True,
        required: bool | None = None,
        allow_null: bool = False,
        source: str | None = None,
        allow_empty: bool = True,
        help_text: str | None = None,
    ) -> None:
        self.instance = instance
        self.initial_data = data
        self.many = many
        self.partial = partial
        self.context: dict[str, Any] = context if context is not None else {}
        self.allow_empty = allow_empty
        self._field_options: dict[str, Any] = {
            "required": False if required is None else required,
            "allow_null": allow_null,
            "source": source,
            "help_text": help_text,
        }
        self._converter: cattrs.Converter | None = None
        self._fieldset_: FieldSet | None = None
        self._validated: Any = empty
        self._errors: Any = None
        self._data: Any = None
        self._children: dict[Field, Serializer] | None = None

    # Fields ---------------------------------------------------------------------

    @classmethod
    def build_fields(cls) -> dict[str, Field]:
        """Return this class's fields, in output order, unbound (called once per class).

        Returns:
            Field name -> a fresh `Field`.

        Raises:
            ConfigurationError: when the declarations are inconsistent.
        """
        return {
            name: NestedField(value) if isinstance(value, Serializer) else value.clone()
            for name, value in cls._declared_fields.items()
        }

    @classmethod
    def _fieldset(cls) -> FieldSet:
        return class_cache(cls, "_fieldset_cache", lambda: FieldSet(cls, cls.build_fields()))

    def _fs(self) -> FieldSet:
        fieldset = self._fieldset_
        if fieldset is None:
            fieldset = self._fieldset_ = type(self)._fieldset()
        return fieldset

    @property
    def fields(self) -> Mapping[str, Field]:
        """Field name -> bound `Field`, in output order (shared by the class: do not modify)."""
        return self._fs().fields

    # Context ------------------------------------------------------------------

    @property
    def converter(self) -> cattrs.Converter:
        """The cattrs converter: ``context["converter"]``, else the request's App's, else a default."""
        converter = self._converter
        if converter is None:
            converter = self.context.get("converter")
            if converter is None:
                request = self.context.get("request")
                converter = request.app.converter if request is not None else default_converter()
            self._converter = converter
        return converter

    @property
    def session(self) -> Session:
        """The SQLAlchemy Session: ``context["session"]``, else the request's.

        Raises:
            RuntimeError: when the context provides none.
        """
        session = self.context.get("session")
        if session is None:
            session = getattr(self.context.get("request"), "session", None)
        if session is None:
            raise RuntimeError(
                f"{type(self).__name__} needs a SQLAlchemy Session here: pass context={{'session': session}}"
            )
        return session  # type: ignore[no-any-return]

    def _child(self, field: Field) -> Serializer:
        """The serializer a nested field uses, made once per parent instance."""
        children = self._children
        if children is None:
            children = self._children = {}
        child = children.get(field)
        if child is None:
            assert isinstance(field, NestedField)
            child = children[field] = field.serializer_class(context=self.context)
            child._converter = self.converter
        return child

    # Reading ------------------------------------------------------------------

    @property
    def data(self) -> Any:
        """The representation: of the instance (after `save`, the saved one), else of the validated data.

        A list with `many`. Computed once.

        Raises:
            RuntimeError: when the input was validated and is invalid.
        """
        if self._data is None:
            if self._errors:
                raise RuntimeError("the input is invalid: see .errors; there is no data to show")
            source = self.instance
            if source is None and self._validated is not empty:
                source = self._validated
            if self.many:
                self._data = [self.to_representation(item) for item in source or ()]
            else:
                self._data = {} if source is None else self.to_representation(source)
        return self._data

    def to_representation(self, instance: Any) -> dict[str, Any]:
        """Represent one object (or mapping) as a dict of JSON-ready values.

        Args:
            instance: the object.

        Returns:
            Field name -> value, in field order; write-only fields are left out.
        """
        result: dict[str, Any] = {}
        plain = not isinstance(instance, Mapping)
        for name, getter, field in self._fs().readable:
            try:
                value = getter(instance) if plain and getter is not None else field.get_attribute(instance)
            except SkipField:
                continue
            result[name] = None if value is None else field.to_representation(value, self)
        return result

    # Validation ---------------------------------------------------------------

    def is_valid(self, raise_exception: bool = False) -> bool:
        """Validate `initial_data` (once), filling `validated_data` or `errors`.

        Args:
            raise_exception: raise instead of returning False.

        Returns:
            Whether the input is valid.

        Raises:
            ValidationError: when invalid and `raise_exception` is set; its
                ``errors`` is `errors`.
            RuntimeError: when no ``data`` was given.
        """
        if self.initial_data is empty:
            raise RuntimeError(f"{type(self).__name__} was given no data= to validate")
        if self._errors is None:
            try:
                if self.many:
                    self._validated = self._validate_many(self.initial_data)
                else:
                    self._validated = self._validate_one(self.initial_data)
                self._errors = {}
            except ValidationError as exc:
                self._validated = empty
                self._errors = self._normalise(exc)
        if self._errors and raise_exception:
            raise ValidationError(errors=self._errors)
        return not self._errors

    @property
    def errors(self) -> Any:
        """``{"field": ["message", ...]}`` (``non_field_errors`` for the object); with `many`, one per item.

        Raises:
            RuntimeError: before `is_valid`.
        """
        if self._errors is None:
            raise RuntimeError("call .is_valid() before reading .errors")
        return self._errors

    @property
    def validated_data(self) -> Any:
        """The validated values, keyed by attribute (``source``); a list with `many`.

        Raises:
            RuntimeError: before `is_valid`, or when the input is invalid.
        """
        if self._errors is None:
            raise RuntimeError("call .is_valid() before reading .validated_data")
        if self._errors:
            raise RuntimeError("the input is invalid: see .errors")
        return self._validated

    def _normalise(self, exc: ValidationError) -> Any:
        found = messages_of(exc)
        if isinstance(found, list) and not (self.many and all(isinstance(item, dict) for item in found)):
            return {NON_FIELD_ERRORS: found}
        return found

    def _validate_many(self, data: Any) -> list[Any]:
        if not isinstance(data, list | tuple):
            message = f'Expected a list of items but got type "{type(data).__name__}".'
            raise ValidationError(errors={NON_FIELD_ERRORS: [message]})
        if not data and not self.allow_empty:
            raise ValidationError(errors={NON_FIELD_ERRORS: ["This list may not be empty."]})
        results: list[Any] = []
        errors: list[Any] = []
        for item in data:
            try:
                results.append(self._validate_one(item))
                errors.append({})
            except ValidationError as exc:
                errors.append(_field_errors(exc))
        if any(errors):
            raise ValidationError(errors=errors)
        return results

    def _validate_one(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            message = f"Invalid data. Expected a dictionary, but got {type(data).__name__}."
            raise ValidationError(errors={NON_FIELD_ERRORS: [message]})
        values = self.to_internal_value(data)
        self._run_validators(values)
        try:
            result = self.validate(values)
        except ValidationError as exc:
            raise ValidationError(errors=_field_errors(exc)) from None
        except AssertionError as exc:  # aiorest-ws's validate() asserted its rules
            raise ValidationError(errors={NON_FIELD_ERRORS: [str(exc) or "Invalid data."]}) from None
        if result is None:
            raise TypeError(f"{type(self).__name__}.validate() must return the validated data")
        return result

    def get_validators(self) -> list[Callable[..., Any]]:
        """The object-level validators: ``Meta.validators`` (none by default)."""
        return list(getattr(getattr(type(self), "Meta", None), "validators", None) or ())

    def _run_validators(self, values: dict[str, Any]) -> None:
        """Run every object-level validator and report all their messages together.

        A validator raises `ValidationError` (or fails an ``assert``); one whose
        ``requires_context`` attribute is true is also given the serializer.
        """
        errors: dict[str, Any] = {}
        for validator in self.get_validators():
            try:
                if getattr(validator, "requires_context", False):
                    validator(values, self)
                else:
                    validator(values)
            except ValidationError as exc:
                for key, messages in _field_errors(exc).items():
                    if isinstance(messages, list):
                        errors.setdefault(key, []).extend(messages)
                    else:  # a nested serializer's structured errors
                        errors[key] = messages
            except AssertionError as exc:
                errors.setdefault(NON_FIELD_ERRORS, []).append(str(exc) or "Invalid data.")
        if errors:
            raise ValidationError(errors=errors)

    def to_internal_value(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Validate every writable field of one input mapping, reporting every failure at once.

        Args:
            data: the input object.

        Returns:
            The validated values, keyed by source attribute.

        Raises:
            ValidationError: with ``errors`` naming every failing field.
        """
        values: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        partial = self.partial
        for field, hook in self._fs().writable:
            name = field.field_name
            raw = data.get(name, empty)
            try:
                if raw is empty:
                    if partial:
                        continue
                    if field.default is not empty:
                        value = field.get_default()
                    elif field.required:
                        field.fail("required")
                    else:
                        continue
                else:
                    value = field.run_validation(raw, self)
                if hook is not None:
                    value = getattr(self, hook)(value)
            except ValidationError as exc:
                errors[name] = messages_of(exc)
                continue
            except SkipField:
                continue
            _set_value(values, field.source_attrs, value)
        self._check_values(values, errors)
        if errors:
            raise ValidationError(errors=errors)
        return values

    def _check_values(self, values: dict[str, Any], errors: dict[str, Any]) -> None:
        """Checks across fields that belong with the field errors (ModelSerializer: uniqueness)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check the object as a whole, after every field passed; override to add rules.

        Args:
            attrs: the validated values.

        Returns:
            The values to keep (possibly changed).

        Raises:
            ValidationError: a message or a list of them (reported under
                ``non_field_errors``), or a field -> messages mapping.
            AssertionError: as aiorest-ws's serializers did: its message is
                reported under ``non_field_errors`` (a 400, not a 500).
        """
        return attrs

    # Saving -------------------------------------------------------------------

    def save(self, **kwargs: Any) -> Any:
        """Create or update from the validated data (plus `kwargs`), and return the instance.

        Calls `update` when the serializer was given an instance, else
        `create`; with `many`, `create` once per item.

        Args:
            **kwargs: extra values to store, e.g. ``owner=request.user``.

        Returns:
            The saved instance (a list with `many`), also kept as `instance`.

        Raises:
            ValidationError: when saving fails in a way the client caused
                (see `ModelSerializer.create`); `errors` then shows it too.
            RuntimeError: before a successful `is_valid`, or to update
                several instances at once.
        """
        if self._errors is None:
            raise RuntimeError("call .is_valid() before .save()")
        if self._errors:
            raise RuntimeError("cannot .save() invalid data: see .errors")
        try:
            if self.many:
                if self.instance is not None:
                    raise RuntimeError("updating several instances at once is not supported")
                self.instance = self._create_many(self._validated, kwargs)
            elif self.instance is not None:
                self.instance = self.update(self.instance, {**self._validated, **kwargs})
            else:
                self.instance = self.create({**self._validated, **kwargs})
        except ValidationError as exc:
            self._errors = self._normalise(exc)
            raise
        self._data = None
        return self.instance

    def _create_many(self, items: list[dict[str, Any]], extra: dict[str, Any]) -> list[Any]:
        created: list[Any] = []
        for index, item in enumerate(items):
            try:
                created.append(self.create({**item, **extra}))
            except ValidationError as exc:
                errors: list[Any] = [{} for _ in items]
                errors[index] = _field_errors(exc)
                raise ValidationError(errors=errors) from None
        return created

    def create(self, validated_data: dict[str, Any]) -> Any:
        """Make a new object from validated data; `ModelSerializer` implements it.

        Args:
            validated_data: the validated values plus `save`'s extras.

        Returns:
            The new object.

        Raises:
            NotImplementedError: in a plain `Serializer`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement create()")

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        """Change an object from validated data; `ModelSerializer` implements it.

        Args:
            instance: the object to change.
            validated_data: the validated values plus `save`'s extras.

        Returns:
            The changed object.

        Raises:
            NotImplementedError: in a plain `Serializer`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement update()")
