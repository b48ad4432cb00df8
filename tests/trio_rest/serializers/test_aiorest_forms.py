"""What aiorest-ws's serializers accepted, as its users (and the article) wrote them, on both databases."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from trio_rest import App, ConflictError, MethodBasedView, Request, SimpleRouter, ValidationError
from trio_rest.serializers import (
    NON_FIELD_ERRORS,
    HyperlinkedIdentityField,
    HyperlinkedModelSerializer,
    HyperlinkedRelatedField,
    ModelSerializer,
    PrimaryKeyRelatedField,
)

from .models import Address, Tag, User


class BareUserSerializer(ModelSerializer):
    class Meta:  # the article's form: the model alone
        model = User


class AllUserSerializer(ModelSerializer):
    class Meta:
        model = User
        fields = "__all__"


def test_meta_with_only_a_model_means_every_column_and_relationship(session: Session) -> None:
    expected = ["id", "name", "email", "is_active", "password", "addresses", "tags"]
    assert list(BareUserSerializer().fields) == expected
    assert list(AllUserSerializer().fields) == expected
    assert isinstance(BareUserSerializer().fields["addresses"], PrimaryKeyRelatedField)
    tag = Tag(label="red")
    session.add(tag)
    session.flush()
    serializer = BareUserSerializer(data={"name": "ann", "tags": [tag.id]}, context={"session": session})
    assert serializer.is_valid(), serializer.errors
    user = serializer.save()
    assert serializer.data == {
        "id": user.id,
        "name": "ann",
        "email": None,
        "is_active": True,
        "password": "",
        "addresses": [],
        "tags": [tag.id],
    }


def test_exclude_may_name_a_relationship(session: Session) -> None:
    class S(ModelSerializer):
        class Meta:
            model = User
            exclude = ("addresses", "password")

    assert list(S().fields) == ["id", "name", "email", "is_active", "tags"]


def _no_admins(attrs: dict[str, Any]) -> None:
    if attrs.get("name") == "admin":
        raise ValidationError("That name is reserved.")


# An `assert` in the project's code raises what these raise; pytest rewrites asserts in
# test modules and would add its own explanation to the message.


def _email_needs_active(attrs: dict[str, Any], serializer: Any) -> None:
    if serializer.context["session"] is None or (attrs.get("email") and not attrs.get("is_active", True)):
        raise AssertionError("An inactive user has no email.")


_email_needs_active.requires_context = True  # type: ignore[attr-defined]


class CheckedUserSerializer(ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "name", "email", "is_active")
        validators: ClassVar[list[Any]] = [_no_admins, _email_needs_active]


def test_meta_validators_run_and_report_together(session: Session) -> None:
    context = {"session": session}
    bad = CheckedUserSerializer(data={"name": "admin", "email": "a@b.c", "is_active": False}, context=context)
    assert not bad.is_valid()
    assert bad.errors == {NON_FIELD_ERRORS: ["That name is reserved.", "An inactive user has no email."]}
    good = CheckedUserSerializer(data={"name": "ann", "email": "a@b.c"}, context=context)
    assert good.is_valid(), good.errors


class ValidatingSerializer(ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "name", "email")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["name"] == "list":
            raise ValidationError(["Names may not be 'list'.", "Pick another."])
        if attrs["name"] == "assert":
            raise AssertionError("Names may not be 'assert'.")
        return attrs


@pytest.mark.parametrize(
    ("name", "messages"),
    [("list", ["Names may not be 'list'.", "Pick another."]), ("assert", ["Names may not be 'assert'."])],
)
def test_validate_errors_are_flat_messages_not_a_500(
    session: Session, name: str, messages: list[str]
) -> None:
    serializer = ValidatingSerializer(data={"name": name}, context={"session": session})
    assert not serializer.is_valid()
    assert serializer.errors == {NON_FIELD_ERRORS: messages}


def test_an_update_of_a_row_deleted_meanwhile_is_a_conflict(engine: sa.Engine) -> None:
    with Session(engine) as setup:
        setup.add(User(name="ann"))
        setup.commit()
    with Session(engine) as session:
        user = session.scalars(sa.select(User)).one()
        context = {"session": session}
        serializer = AllUserSerializer(user, data={"email": "a@b.c"}, partial=True, context=context)
        assert serializer.is_valid(), serializer.errors
        with Session(engine) as other:  # another request deletes it between is_valid() and save()
            other.execute(sa.delete(User))
            other.commit()
        with pytest.raises(ConflictError) as info:
            serializer.save()
        assert info.value.status == 409
        session.rollback()


class Detail(MethodBasedView):
    async def get(self, request: Request, id: int) -> Any:
        return {"id": id}


def _context(session: Session) -> dict[str, Any]:
    router = SimpleRouter()
    router.register("/user/{id:int}", Detail, ["GET"], name="user-detail")
    router.register("/address/{id:int}", Detail, ["GET"], name="address-detail")
    router.register("/tag/{id:int}", Detail, ["GET"], name="tag-detail")
    return {"session": session, "request": SimpleNamespace(app=App(router))}


class LinkedAddressSerializer(ModelSerializer):
    user = HyperlinkedRelatedField(view_name="user-detail", queryset=User, allow_null=True)

    class Meta:
        model = Address
        fields = ("id", "street", "user")


def test_hyperlinks_in_the_forms_aiorest_ws_accepted(session: Session) -> None:
    bob = User(name="bob")
    session.add(bob)
    session.flush()
    for value in (
        f"ws://127.0.0.1:8080/user/{bob.id}",
        f"wss://api.example.com/user/{bob.id}",
        f"user/{bob.id}",
        {"url": f"ws://127.0.0.1:8080/user/{bob.id}"},
        {"url": f"/user/{bob.id}"},
    ):
        serializer = LinkedAddressSerializer(data={"street": "x", "user": value}, context=_context(session))
        assert serializer.is_valid(), (value, serializer.errors)
        assert serializer.validated_data["user"] is bob


class LinkedUserSerializer(HyperlinkedModelSerializer):
    class Meta:
        model = User
        exclude = ("password",)


def test_hyperlinked_model_serializer(session: Session) -> None:
    fields = LinkedUserSerializer().fields
    assert list(fields) == ["url", "name", "email", "is_active", "addresses", "tags"]
    assert isinstance(fields["url"], HyperlinkedIdentityField)
    assert isinstance(fields["tags"], HyperlinkedRelatedField)
    tag = Tag(label="red")
    session.add(tag)
    session.flush()
    context = _context(session)
    serializer = LinkedUserSerializer(data={"name": "ann", "tags": [f"/tag/{tag.id}"]}, context=context)
    assert serializer.is_valid(), serializer.errors
    user = serializer.save()
    assert serializer.data == {
        "url": f"/user/{user.id}",
        "name": "ann",
        "email": None,
        "is_active": True,
        "addresses": [],
        "tags": [f"/tag/{tag.id}"],
    }
    bad = LinkedUserSerializer(data={"name": "cy", "tags": [f"/user/{user.id}"]}, context=context)
    assert not bad.is_valid()
    assert bad.errors == {"tags": ["Invalid hyperlink - Incorrect URL match."]}
