"""ModelSerializer: field inference, order, and the round trip of every column type, on both databases."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from trio_rest import ConfigurationError
from trio_rest.serializers import (
    BooleanField,
    CharField,
    ChoiceField,
    DateField,
    DateTimeField,
    DecimalField,
    EnumField,
    FloatField,
    IntegerField,
    JSONField,
    ModelSerializer,
    PrimaryKeyRelatedField,
    ReadOnlyField,
    SerializerMethodField,
    TimeField,
    UUIDField,
)

from .models import Color, Everything, User

# SQLite stores NUMERIC as a float; SQLAlchemy warns once per process about it.
pytestmark = pytest.mark.filterwarnings("ignore:Dialect sqlite.*Decimal:sqlalchemy.exc.SAWarning")


class EverythingSerializer(ModelSerializer):
    class Meta:
        model = Everything
        fields = "__all__"


class UserSerializer(ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "name", "email", "is_active", "password", "addresses", "tags")
        extra_kwargs: ClassVar[dict[str, Any]] = {"password": {"write_only": True}}


TOKEN = uuid.UUID("12345678-1234-5678-1234-567812345678")
INPUT: dict[str, Any] = {
    "small": 7,
    "count": 2**31 - 1,
    "big": 2**63 - 1,
    "title": "A title",
    "body": "x" * 5000,
    "flag": "true",
    "ratio": 0.25,
    "price": "123456.7",
    "day": "2024-02-29",
    "moment": "2024-02-29T23:59:58+01:00",
    "alarm": "07:30:15",
    "color": "green",
    "size": "m",
    "payload": {"list": [1, 2.5, None, True], "nested": {"k": "v"}},
    "token": str(TOKEN),
}


def test_field_order_is_table_order_then_declared() -> None:
    assert list(EverythingSerializer().fields) == [
        "id", "small", "count", "big", "title", "body", "flag", "ratio", "price", "day", "moment",
        "alarm", "color", "size", "payload", "token", "nickname", "level", "created",
    ]  # fmt: skip

    class Listed(ModelSerializer):
        extra = SerializerMethodField()
        name = CharField(max_length=3)

        class Meta:
            model = User
            fields = ["name", "id", "display"]  # noqa: RUF012 (DRF's spelling works too)

        def get_extra(self, obj: Any) -> int:
            return 1

    assert list(Listed().fields) == ["name", "id", "display", "extra"]
    # The same declarations always give the same order, in every class built from them.
    assert [list(type(f"Copy{i}", (Listed,), {})().fields) for i in range(3)] == [list(Listed().fields)] * 3

    class Excluding(ModelSerializer):
        class Meta:
            model = Everything
            exclude = ("body", "payload")

    assert "body" not in Excluding().fields
    assert list(Excluding().fields)[:3] == ["id", "small", "count"]


def test_inferred_fields() -> None:
    fields = EverythingSerializer().fields
    expected_classes = {
        "id": IntegerField, "small": IntegerField, "count": IntegerField, "big": IntegerField,
        "title": CharField, "body": CharField, "flag": BooleanField, "ratio": FloatField,
        "price": DecimalField, "day": DateField, "moment": DateTimeField, "alarm": TimeField,
        "color": EnumField, "size": ChoiceField, "payload": JSONField, "token": UUIDField,
        "nickname": CharField, "level": IntegerField, "created": DateTimeField,
    }  # fmt: skip
    assert {name: type(field) for name, field in fields.items()} == expected_classes
    assert fields["id"].read_only
    assert (fields["small"].min_value, fields["small"].max_value) == (-(2**15), 2**15 - 1)  # type: ignore[attr-defined]
    assert fields["count"].max_value == 2**31 - 1  # type: ignore[attr-defined]
    assert fields["big"].max_value == 2**63 - 1  # type: ignore[attr-defined]
    assert fields["title"].max_length == 20  # type: ignore[attr-defined]
    assert fields["body"].max_length is None  # type: ignore[attr-defined]
    assert (fields["price"].max_digits, fields["price"].decimal_places) == (8, 2)  # type: ignore[attr-defined]
    assert fields["size"].choices == {"s": "s", "m": "m", "l": "l"}  # type: ignore[attr-defined]
    assert fields["color"].enum_class is Color  # type: ignore[attr-defined]
    required = {name for name, field in fields.items() if field.required}
    assert required == set(INPUT)
    assert fields["nickname"].allow_null and not fields["title"].allow_null
    assert not fields["level"].required and not fields["level"].allow_null  # a default
    assert not fields["created"].required  # a server default

    user_fields = UserSerializer().fields
    assert user_fields["password"].write_only
    assert user_fields["password"].allow_blank  # type: ignore[attr-defined]  # its default is ""
    assert not user_fields["name"].allow_blank  # type: ignore[attr-defined]
    assert isinstance(user_fields["addresses"], PrimaryKeyRelatedField) and user_fields["addresses"].many
    assert not user_fields["addresses"].required


def test_every_type_round_trips_through_the_database(engine: sa.Engine) -> None:
    with Session(engine) as session:
        serializer = EverythingSerializer(data=INPUT, context={"session": session})
        assert serializer.is_valid(), serializer.errors
        saved = serializer.save()
        assert isinstance(saved.id, int)
        session.commit()
        created_id = saved.id
    with Session(engine) as session:
        row = session.get(Everything, created_id)
        data = EverythingSerializer(row).data
    assert isinstance(data.pop("created"), str)
    assert data == {
        "id": created_id,
        "small": 7,
        "count": 2**31 - 1,
        "big": 2**63 - 1,
        "title": "A title",
        "body": "x" * 5000,
        "flag": True,
        "ratio": 0.25,
        "price": "123456.70",
        "day": "2024-02-29",
        "moment": "2024-02-29T22:59:58",  # a naive column keeps UTC
        "alarm": "07:30:15",
        "color": "green",
        "size": "m",
        "payload": {"list": [1, 2.5, None, True], "nested": {"k": "v"}},
        "token": str(TOKEN),
        "nickname": None,
        "level": 5,
    }
    assert row is not None
    assert row.color is Color.GREEN and row.token == TOKEN and row.price == decimal.Decimal("123456.70")
    assert row.moment == datetime.datetime(2024, 2, 29, 22, 59, 58)


def test_required_optional_and_null_errors(session: Session) -> None:
    serializer = EverythingSerializer(
        data={**INPUT, "title": None, "nickname": None, "big": 2**63, "count": 2**31, "price": "123456789"},
        context={"session": session},
    )
    assert not serializer.is_valid()
    assert serializer.errors == {
        "count": ["Ensure this value is less than or equal to 2147483647."],
        "big": ["Ensure this value is less than or equal to 9223372036854775807."],
        "title": ["This field may not be null."],
        "price": ["Ensure that there are no more than 8 digits in total."],
    }
    missing = EverythingSerializer(data={"small": 1}, context={"session": session})
    assert not missing.is_valid()
    assert missing.errors == {name: ["This field is required."] for name in INPUT if name != "small"}


def test_type_error_snapshot(session: Session) -> None:
    bad = {
        "small": "x", "count": 1.5, "big": True, "title": "t" * 21, "body": [], "flag": "maybe",
        "ratio": "fast", "price": "1.234", "day": "29/02/2024", "moment": "noon", "alarm": "7pm",
        "color": "blue", "size": "xl", "token": "not-a-uuid", "nickname": "a\x00",
    }  # fmt: skip
    serializer = EverythingSerializer(data={**bad, "payload": None}, context={"session": session})
    assert not serializer.is_valid()
    assert serializer.errors == {
        "small": ["A valid integer is required."],
        "count": ["A valid integer is required."],
        "big": ["A valid integer is required."],
        "title": ["Ensure this field has no more than 20 characters."],
        "body": ["Not a valid string."],
        "flag": ["Must be a valid boolean."],
        "ratio": ["A valid number is required."],
        "price": ["Ensure that there are no more than 2 decimal places."],
        "day": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."],
        "moment": [
            "Datetime has wrong format. Use one of these formats instead: "
            "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
        ],
        "alarm": ["Time has wrong format. Use one of these formats instead: hh:mm[:ss[.uuuuuu]]."],
        "color": ['"blue" is not a valid choice.'],
        "size": ['"xl" is not a valid choice.'],
        "payload": ["This field may not be null."],
        "token": ['"not-a-uuid" is not a valid UUID.'],
        "nickname": ["Null characters are not allowed."],
    }


def test_read_only_write_only_and_extra_kwargs(session: Session) -> None:
    class S(ModelSerializer):
        class Meta:
            model = User
            fields = ("id", "name", "email", "password", "is_active", "display")
            read_only_fields = ("is_active",)
            extra_kwargs: ClassVar[dict[str, Any]] = {
                "password": {"write_only": True, "min_length": 3},
                "email": {"required": True},
            }

    serializer = S(data={"name": "ann", "password": "pw", "is_active": False}, context={"session": session})
    assert not serializer.is_valid()
    assert serializer.errors == {
        "email": ["This field is required."],
        "password": ["Ensure this field has at least 3 characters."],
    }
    serializer = S(
        data={"id": 42, "name": "ann", "email": "a@b", "password": "secret", "is_active": False},
        context={"session": session},
    )
    assert serializer.is_valid(), serializer.errors
    user = serializer.save()
    assert user.password == "secret" and user.is_active is True  # read-only input ignored
    assert user.id != 42 or session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
    assert serializer.data == {
        "id": user.id,
        "name": "ann",
        "email": "a@b",
        "is_active": True,
        "display": "<ann>",
    }
    assert isinstance(S().fields["display"], ReadOnlyField)


def test_partial_update(session: Session) -> None:
    user = User(name="ann", email="a@b", password="pw")
    session.add(user)
    session.flush()
    serializer = UserSerializer(user, data={"email": None}, partial=True, context={"session": session})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"email": None}
    assert serializer.save() is user
    assert serializer.data == {
        "id": user.id,
        "name": "ann",
        "email": None,
        "is_active": True,
        "addresses": [],
        "tags": [],
    }
    full = UserSerializer(user, data={"email": "c@d"}, context={"session": session})
    assert not full.is_valid()
    assert full.errors == {"name": ["This field is required."]}


def test_many_read_and_create(session: Session) -> None:
    serializer = UserSerializer(
        data=[{"name": "a", "password": "x"}, {"name": "b", "email": "b@b", "password": "y"}],
        many=True,
        context={"session": session},
    )
    assert serializer.is_valid(), serializer.errors
    users = serializer.save()
    assert [user.name for user in users] == ["a", "b"]
    listed = UserSerializer(session.scalars(sa.select(User).order_by(User.name)).all(), many=True).data
    assert [row["name"] for row in listed] == ["a", "b"]
    assert serializer.data == listed
    assert "password" not in listed[0]


def test_configuration_errors() -> None:
    class Unknown(ModelSerializer):
        class Meta:
            model = User
            fields = ("nope",)

    class Both(ModelSerializer):
        class Meta:
            model = User
            fields = ("id",)
            exclude = ("name",)

    class NoModel(ModelSerializer):
        class Meta:
            fields = "__all__"

    class NotMapped(ModelSerializer):
        class Meta:
            model = dict
            fields = "__all__"

    class BadOption(ModelSerializer):
        class Meta:
            model = User
            fields = ("name",)
            extra_kwargs: ClassVar[dict[str, Any]] = {"name": {"colour": "red"}}

    messages = {
        Unknown: "'nope' is not valid for model User",
        Both: "not both",
        NoModel: "Meta.model is required",
        NotMapped: "not a mapped class",
        BadOption: "colour",
    }
    for serializer_class, message in messages.items():
        with pytest.raises(ConfigurationError, match=message):
            serializer_class().fields  # noqa: B018
