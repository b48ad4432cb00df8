"""Field validation and representation, without a database."""

from __future__ import annotations

import datetime
import decimal
import enum
import threading
import uuid
from typing import Any

import attrs
import pytest

from trio_rest import App, ConfigurationError, SimpleRouter, ValidationError, make_converter
from trio_rest.serializers import (
    BooleanField,
    CharField,
    ChoiceField,
    ConverterField,
    DateField,
    DateTimeField,
    DecimalField,
    EnumField,
    Field,
    FloatField,
    IntegerField,
    JSONField,
    ReadOnlyField,
    Serializer,
    SerializerMethodField,
    TimeField,
    UUIDField,
)


def check(field: Field, data: Any) -> Any:
    """Validate `data` as field "f" of a fresh serializer: the value, or the error messages."""

    class One(Serializer):
        f = field

    serializer = One(data={"f": data})
    if serializer.is_valid():
        return serializer.validated_data["f"]
    return serializer.errors["f"]


def show(field: Field, value: Any) -> Any:
    class One(Serializer):
        f = field

    return One({"f": value}).data["f"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("bob", "bob"),
        ("  bob ", "bob"),
        (12, "12"),
        (1.5, "1.5"),
        (True, ["Not a valid string."]),
        ([], ["Not a valid string."]),
        ({}, ["Not a valid string."]),
        ("", ["This field may not be blank."]),
        ("   ", ["This field may not be blank."]),
        ("a\x00b", ["Null characters are not allowed."]),
        ("x" * 6, ["Ensure this field has no more than 5 characters."]),
        ("x", ["Ensure this field has at least 2 characters."]),
        (None, ["This field may not be null."]),
    ],
)
def test_char_field(data: Any, expected: Any) -> None:
    assert check(CharField(max_length=5, min_length=2), data) == expected


def test_char_field_options() -> None:
    assert check(CharField(allow_blank=True), "  ") == ""
    assert check(CharField(trim_whitespace=False), " a ") == " a "
    assert check(CharField(allow_null=True), None) is None
    assert show(CharField(), 5) == "5"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (5, 5),
        ("5", 5),
        (" -7 ", -7),
        (5.0, 5),
        ("5.00", 5),
        (5.5, ["A valid integer is required."]),
        ("5.5", ["A valid integer is required."]),
        ("five", ["A valid integer is required."]),
        ("٣", ["A valid integer is required."]),  # an Arabic-Indic digit: int() would take it
        (True, ["A valid integer is required."]),
        ([1], ["A valid integer is required."]),
        (float("inf"), ["A valid integer is required."]),
        ("1" * 1001, ["String value too large."]),
        (2**63, ["Ensure this value is less than or equal to 9223372036854775807."]),
        (-(2**63) - 1, ["Ensure this value is greater than or equal to -9223372036854775808."]),
    ],
)
def test_integer_field(data: Any, expected: Any) -> None:
    field = IntegerField(min_value=-(2**63), max_value=2**63 - 1)
    assert check(field, data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (1.5, 1.5),
        (2, 2.0),
        ("2.5", 2.5),
        ("nan", ["A valid number is required."]),
        (float("inf"), ["A valid number is required."]),
        ("x", ["A valid number is required."]),
        (False, ["A valid number is required."]),
        (10.5, ["Ensure this value is less than or equal to 10."]),
    ],
)
def test_float_field(data: Any, expected: Any) -> None:
    assert check(FloatField(max_value=10), data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("12.5", decimal.Decimal("12.50")),
        (12, decimal.Decimal("12.00")),
        (1.25, decimal.Decimal("1.25")),
        ("-0.01", decimal.Decimal("-0.01")),
        ("abc", ["A valid number is required."]),
        ("NaN", ["A valid number is required."]),
        ("Infinity", ["A valid number is required."]),
        (True, ["A valid number is required."]),
        ("1.234", ["Ensure that there are no more than 2 decimal places."]),
        ("123456.7", ["Ensure that there are no more than 5 digits in total."]),
        ("1234.5", ["Ensure that there are no more than 3 digits before the decimal point."]),
        ("-1", ["Ensure this value is greater than or equal to 0."]),
    ],
)
def test_decimal_field(data: Any, expected: Any) -> None:
    assert check(
        DecimalField(max_digits=5, decimal_places=2, min_value=0 if data == "-1" else None), data
    ) == (expected)


def test_decimal_field_output() -> None:
    assert show(DecimalField(max_digits=5, decimal_places=2), decimal.Decimal("3.5")) == "3.50"
    assert show(DecimalField(), decimal.Decimal("3.5")) == "3.5"
    assert show(DecimalField(decimal_places=1, coerce_to_string=False), 2.25) == decimal.Decimal("2.2")


@pytest.mark.parametrize("data", [True, "true", "True", "yes", "on", "1", 1])
def test_boolean_true(data: Any) -> None:
    assert check(BooleanField(), data) is True


@pytest.mark.parametrize("data", [False, "false", "no", "off", "0", 0])
def test_boolean_false(data: Any) -> None:
    assert check(BooleanField(), data) is False


@pytest.mark.parametrize("data", ["maybe", 2, [], {}, 0.5])
def test_boolean_invalid(data: Any) -> None:
    assert check(BooleanField(), data) == ["Must be a valid boolean."]


def test_temporal_fields() -> None:
    assert check(DateField(), "2024-02-29") == datetime.date(2024, 2, 29)
    assert check(DateField(), "2024-02-30") == [
        "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
    ]
    assert check(DateField(), 20240229) == [
        "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
    ]
    assert check(TimeField(), "10:30") == datetime.time(10, 30)
    assert check(TimeField(), "25:00") == [
        "Time has wrong format. Use one of these formats instead: hh:mm[:ss[.uuuuuu]]."
    ]
    assert check(DateTimeField(), "yesterday") == [
        "Datetime has wrong format. Use one of these formats instead: "
        "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
    ]
    assert show(DateField(), datetime.date(2024, 1, 2)) == "2024-01-02"
    assert show(TimeField(), datetime.time(1, 2, 3)) == "01:02:03"


def test_datetime_time_zones() -> None:
    utc = datetime.UTC
    # Kept as sent, unless the column says otherwise.
    assert check(DateTimeField(), "2024-01-02T03:04:05+02:00") == datetime.datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    # A naive column stores UTC without the offset.
    assert check(DateTimeField(timezone=False), "2024-01-02T03:04:05+02:00") == datetime.datetime(
        2024, 1, 2, 1, 4, 5
    )
    # An aware column reads a naive input as UTC.
    assert check(DateTimeField(timezone=True), "2024-01-02T03:04:05") == datetime.datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=utc
    )
    assert show(DateTimeField(), datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc)) == "2024-01-02T03:04:05Z"
    assert show(DateTimeField(), datetime.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05"


class Color(enum.Enum):
    RED = "red"
    ONE = 1


def test_choice_and_enum_fields() -> None:
    assert check(ChoiceField(["s", "m", 3]), "m") == "m"
    assert check(ChoiceField(["s", "m", 3]), "3") == 3
    assert check(ChoiceField(["s", "m"]), "x") == ['"x" is not a valid choice.']
    assert check(ChoiceField(["s", "m"]), ["s"]) == ["\"['s']\" is not a valid choice."]
    assert check(ChoiceField({"s": "Small"}), "s") == "s"
    assert check(EnumField(Color), "red") is Color.RED
    assert check(EnumField(Color), "1") is Color.ONE
    assert check(EnumField(Color), "RED") == ['"RED" is not a valid choice.']
    assert show(EnumField(Color), Color.ONE) == 1


def test_uuid_and_json_fields() -> None:
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert check(UUIDField(), str(value)) == value
    assert check(UUIDField(as_uuid=False), value.hex) == str(value)
    assert check(UUIDField(), "nope") == ['"nope" is not a valid UUID.']
    assert check(UUIDField(), 5) == ['"5" is not a valid UUID.']
    assert show(UUIDField(), value) == str(value)
    assert check(JSONField(), {"a": [1, None]}) == {"a": [1, None]}
    assert check(JSONField(allow_null=True), None) is None


@attrs.frozen
class Point:
    x: int
    y: int


def test_converter_field_uses_the_converter() -> None:
    assert check(ConverterField(Point), {"x": 1, "y": 2}) == Point(1, 2)
    assert check(ConverterField(Point), {"x": 1}) == ["Invalid value."]
    assert show(ConverterField(Point), Point(1, 2)) == {"x": 1, "y": 2}


def test_converter_comes_from_the_context_then_the_request_then_a_default() -> None:
    special = make_converter()
    special.register_structure_hook(Point, lambda value, _: Point(*value))

    class S(Serializer):
        p = ConverterField(Point)

    assert S(data={"p": [3, 4]}, context={"converter": special}).is_valid()

    class Request:
        app = App(SimpleRouter(), converter=special)

    from_request = S(data={"p": [3, 4]}, context={"request": Request()})
    assert from_request.converter is special
    assert from_request.is_valid()
    assert not S(data={"p": [3, 4]}).is_valid()
    assert S().converter is S().converter  # one module-level default


class Signup(Serializer):
    name = CharField(max_length=10)
    age = IntegerField(required=False, allow_null=True)
    role = ChoiceField(["user", "admin"], default="user")
    secret = CharField(write_only=True)
    id = IntegerField(read_only=True)
    shout = SerializerMethodField()
    motto = SerializerMethodField(method_name="make_motto")

    def get_shout(self, obj: Any) -> str:
        return str(obj["name"]).upper()

    def make_motto(self, obj: Any) -> str:
        return f"{self.context.get('prefix', '')}{obj['name']}!"

    def validate_name(self, value: str) -> str:
        if value == "root":
            raise ValidationError("Reserved name.")
        return value.title()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("age") == 0 and attrs["role"] == "admin":
            raise ValidationError("Babies cannot be admins.")
        return attrs


def test_every_failing_field_is_reported_at_once() -> None:
    serializer = Signup(data={"name": "x" * 11, "age": "old", "role": "god", "id": 5})
    assert not serializer.is_valid()
    assert serializer.errors == {
        "name": ["Ensure this field has no more than 10 characters."],
        "age": ["A valid integer is required."],
        "role": ['"god" is not a valid choice.'],
        "secret": ["This field is required."],
    }
    with pytest.raises(ValidationError) as info:
        serializer.is_valid(raise_exception=True)
    assert info.value.status == 400
    assert info.value.errors == serializer.errors


def test_hooks_defaults_read_and_write_only() -> None:
    serializer = Signup(data={"name": "ada", "secret": "s", "id": 99}, context={"prefix": "go "})
    assert serializer.is_valid(), serializer.errors
    # read-only input is ignored, the default filled in, the hook's return kept
    assert serializer.validated_data == {"name": "Ada", "role": "user", "secret": "s"}
    assert serializer.data == {"name": "Ada", "role": "user", "shout": "ADA", "motto": "go Ada!"}


def test_field_hook_and_object_errors() -> None:
    serializer = Signup(data={"name": "root", "secret": "s"})
    assert not serializer.is_valid()
    assert serializer.errors == {"name": ["Reserved name."]}
    serializer = Signup(data={"name": "bo", "secret": "s", "age": 0, "role": "admin"})
    assert not serializer.is_valid()
    assert serializer.errors == {"non_field_errors": ["Babies cannot be admins."]}


def test_validate_may_name_fields() -> None:
    class S(Serializer):
        a = IntegerField()
        b = IntegerField()

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs["a"] > attrs["b"]:
                raise ValidationError({"a": "Must not exceed b.", "b": ["Must exceed a."]})
            return attrs

    serializer = S(data={"a": 2, "b": 1})
    assert not serializer.is_valid()
    assert serializer.errors == {"a": ["Must not exceed b."], "b": ["Must exceed a."]}


def test_validators_and_error_messages() -> None:
    def even(value: int) -> None:
        if value % 2:
            raise ValidationError("Must be even.")

    def small(value: int) -> None:
        if value > 10:
            raise ValidationError("Must be small.")

    field = IntegerField(validators=[even, small], error_messages={"invalid": "Numbers only."})
    assert check(field, 13) == ["Must be even.", "Must be small."]
    assert check(field, "x") == ["Numbers only."]
    assert check(field, 4) == 4


def test_partial_makes_every_field_optional() -> None:
    serializer = Signup(data={"age": 3}, partial=True)
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"age": 3}  # no default in a partial update


def test_many_validation_reports_per_item() -> None:
    serializer = Signup(data=[{"name": "a", "secret": "s"}, {"name": 5}, "x"], many=True)
    assert not serializer.is_valid()
    assert serializer.errors == [
        {},
        {"secret": ["This field is required."]},
        {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]},
    ]
    serializer = Signup(data={"name": "a"}, many=True)
    assert not serializer.is_valid()
    assert serializer.errors == {"non_field_errors": ['Expected a list of items but got type "dict".']}
    serializer = Signup(data=[], many=True, allow_empty=False)
    assert not serializer.is_valid()
    assert serializer.errors == {"non_field_errors": ["This list may not be empty."]}
    serializer = Signup(data=[{"name": "a", "secret": "s"}], many=True)
    assert serializer.is_valid()
    assert serializer.validated_data == [{"name": "A", "role": "user", "secret": "s"}]


def test_not_an_object() -> None:
    serializer = Signup(data=[1])
    assert not serializer.is_valid()
    assert serializer.errors == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}


def test_many_representation_and_sources() -> None:
    class Inner:
        def __init__(self, label: str) -> None:
            self.label = label

    class Outer:
        def __init__(self, label: str, inner: Inner | None) -> None:
            self.label = label
            self.inner = inner

    class S(Serializer):
        label = CharField()
        inner_label = CharField(source="inner.label")
        raw = ReadOnlyField(source="label")

    rows = [Outer("a", Inner("x")), Outer("b", None)]
    assert S(rows, many=True).data == [
        {"label": "a", "inner_label": "x", "raw": "a"},
        {"label": "b", "inner_label": None, "raw": "b"},
    ]


def test_declared_fields_are_inherited_in_order_and_can_be_removed() -> None:
    class Base(Serializer):
        a = IntegerField()
        b = IntegerField()

    class Child(Base):
        c = IntegerField()
        a = CharField()  # type: ignore[assignment]  # overrides, keeps its place
        b = None  # type: ignore[assignment]  # removes

    assert list(Child().fields) == ["a", "c"]
    assert isinstance(Child().fields["a"], CharField)
    assert list(Base().fields) == ["a", "b"]  # the parent is untouched


def test_misuse_is_reported() -> None:
    with pytest.raises(ConfigurationError):
        CharField(read_only=True, write_only=True)
    with pytest.raises(ConfigurationError):
        CharField(required=True, default="x")

    class NoMethod(Serializer):
        value = SerializerMethodField()

    with pytest.raises(ConfigurationError, match="get_value"):
        NoMethod().fields  # noqa: B018
    with pytest.raises(RuntimeError, match="is_valid"):
        Signup(data={}).save()
    with pytest.raises(RuntimeError, match="no data"):
        Signup().is_valid()
    with pytest.raises(RuntimeError, match="invalid"):
        invalid = Signup(data={})
        invalid.is_valid()
        invalid.save()


def test_fields_are_built_once_per_class_even_across_threads() -> None:
    class Fresh(Serializer):
        a = IntegerField()
        b = CharField()

    barrier = threading.Barrier(8)
    seen: list[Any] = []

    def build() -> None:
        barrier.wait()
        seen.append(Fresh().fields)

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(fields) for fields in seen}) == 1
    assert Fresh().fields is Fresh(data={}).fields
    assert Fresh().fields["a"] is not Fresh._declared_fields["a"]  # the declaration stays unbound
