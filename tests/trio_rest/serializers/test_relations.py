"""Relations: primary keys in both input shapes, hyperlinks, nested serializers, on both databases."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from trio_rest import App, ConfigurationError, MethodBasedView, Request, SimpleRouter
from trio_rest.serializers import (
    HyperlinkedIdentityField,
    HyperlinkedRelatedField,
    ModelSerializer,
    PrimaryKeyRelatedField,
    SerializerMethodField,
)

from .models import Address, Document, Tag, User


class AddressSerializer(ModelSerializer):
    class Meta:
        model = Address
        fields = ("id", "street", "user")


class UserSerializer(ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "name", "addresses", "tags")


@pytest.fixture
def people(session: Session) -> dict[str, Any]:
    ann, bob = User(name="ann"), User(name="bob")
    red, blue = Tag(label="red"), Tag(label="blue")
    home = Address(street="1 Main St", user=ann)
    work = Address(street="2 High St", user=ann)
    session.add_all([ann, bob, red, blue, home, work])
    session.flush()
    return {"ann": ann, "bob": bob, "red": red, "blue": blue, "home": home, "work": work}


def test_primary_keys_accept_both_input_shapes(session: Session, people: dict[str, Any]) -> None:
    ann, bob = people["ann"], people["bob"]
    serializer: ModelSerializer
    for value in (bob.id, {"id": bob.id}, str(bob.id)):
        serializer = AddressSerializer(data={"street": "x", "user": value}, context={"session": session})
        assert serializer.is_valid(), serializer.errors
        assert serializer.validated_data["user"] is bob
    serializer = UserSerializer(
        ann,
        data={"name": "ann", "tags": [people["blue"].id, {"id": people["red"].id}, people["blue"].id]},
        context={"session": session},
    )
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["tags"] == [people["blue"], people["red"]]  # input order, no duplicates
    serializer.save()
    assert ann.tags == [people["blue"], people["red"]]
    assert serializer.data["tags"] == [people["blue"].id, people["red"].id]


def test_primary_key_errors(session: Session, people: dict[str, Any]) -> None:
    context = {"session": session}
    serializer: ModelSerializer
    cases: list[tuple[Any, list[str]]] = [
        (999, ['Invalid pk "999" - object does not exist.']),
        ({"id": 999}, ['Invalid pk "999" - object does not exist.']),
        ("abc", ["Incorrect type. Expected pk value, received str."]),
        ({"pk": 1}, ["Incorrect type. Expected pk value, received dict."]),
        ([1], ["Incorrect type. Expected pk value, received list."]),
        (True, ["Incorrect type. Expected pk value, received bool."]),
        (2**70, [f'Invalid pk "{2**70}" - object does not exist.']),
    ]
    for value, messages in cases:
        serializer = AddressSerializer(data={"street": "x", "user": value}, context=context)
        assert not serializer.is_valid()
        assert serializer.errors == {"user": messages}, value
    serializer = UserSerializer(
        data={"name": "cy", "tags": [people["red"].id, 998, "x", 999]}, context=context
    )
    assert not serializer.is_valid()
    assert serializer.errors == {
        "tags": [
            "Incorrect type. Expected pk value, received str.",
            'Invalid pk "998" - object does not exist.',
            'Invalid pk "999" - object does not exist.',
        ]
    }
    serializer = UserSerializer(data={"name": "cy", "tags": 1}, context=context)
    assert not serializer.is_valid()
    assert serializer.errors == {"tags": ['Expected a list of items but got type "int".']}


def test_nullable_relation(session: Session, people: dict[str, Any]) -> None:
    serializer = AddressSerializer(data={"street": "x", "user": None}, context={"session": session})
    assert serializer.is_valid(), serializer.errors
    address = serializer.save()
    assert address.user is None
    assert serializer.data == {"id": address.id, "street": "x", "user": None}
    assert not AddressSerializer().fields["user"].required


def test_many_primary_keys_are_looked_up_in_one_query(
    session: Session, people: dict[str, Any], queries: list[str]
) -> None:
    tag_ids = [tag.id for tag in (people["red"], people["blue"])]
    more = [Tag(label=f"t{i}") for i in range(10)]
    session.add_all(more)
    session.flush()
    session.expunge_all()  # nothing in the identity map: every key must come from the database
    queries.clear()
    serializer = UserSerializer(
        data={"name": "cy", "tags": tag_ids + [tag.id for tag in more]}, context={"session": session}
    )
    assert serializer.is_valid(), serializer.errors
    tag_queries = [statement for statement in queries if "FROM tags" in statement]
    assert len(tag_queries) == 1
    assert len(serializer.validated_data["tags"]) == 12


def test_reading_a_many_to_one_key_loads_nothing(
    engine: sa.Engine, session: Session, people: dict[str, Any], queries: list[str]
) -> None:
    session.commit()
    home_id, ann_id = people["home"].id, people["ann"].id
    with Session(engine) as other:
        addresses = other.scalars(sa.select(Address).order_by(Address.id)).all()
        queries.clear()
        data = AddressSerializer(addresses, many=True).data
        assert queries == []  # the key comes from address.user_id
        assert data[0] == {"id": home_id, "street": "1 Main St", "user": ann_id}
        # Once the relationship is loaded (or changed), it wins over the stale column.
        addresses[0].user = other.get(User, people["bob"].id)
        assert AddressSerializer(addresses[0]).data["user"] == people["bob"].id


def test_queryset_narrows_the_choice(session: Session, people: dict[str, Any]) -> None:
    class S(ModelSerializer):
        user = PrimaryKeyRelatedField(queryset=sa.select(User).where(User.name != "bob"))

        class Meta:
            model = Address
            fields = ("street", "user")

    context = {"session": session}
    assert S(data={"street": "x", "user": people["ann"].id}, context=context).is_valid()
    refused = S(data={"street": "x", "user": people["bob"].id}, context=context)
    assert not refused.is_valid()
    assert refused.errors == {"user": [f'Invalid pk "{people["bob"].id}" - object does not exist.']}


def test_uuid_primary_keys(session: Session) -> None:
    document = Document(title="spec")
    session.add(document)
    session.flush()

    class S(ModelSerializer):
        document = PrimaryKeyRelatedField(queryset=Document, source="key", read_only=True)
        pick = PrimaryKeyRelatedField(queryset=Document, write_only=True)

        class Meta:
            model = Document
            fields = ("title",)

    serializer = S(data={"title": "t", "pick": str(document.key)}, context={"session": session})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["pick"] is document
    bad = S(data={"title": "t", "pick": "zzz"}, context={"session": session})
    assert not bad.is_valid()
    assert bad.errors == {"pick": ["Incorrect type. Expected pk value, received str."]}
    missing = uuid.UUID(int=1)
    bad = S(data={"title": "t", "pick": str(missing)}, context={"session": session})
    assert not bad.is_valid()
    assert bad.errors == {"pick": [f'Invalid pk "{missing}" - object does not exist.']}


def test_foreign_key_columns_are_checked(session: Session, people: dict[str, Any]) -> None:
    class S(ModelSerializer):
        class Meta:
            model = Address
            fields = "__all__"

    assert list(S().fields) == ["id", "street", "user_id", "user"]
    ok = S(data={"street": "x", "user_id": people["bob"].id}, context={"session": session})
    assert ok.is_valid(), ok.errors
    assert ok.save().user is people["bob"]
    assert ok.data["user_id"] == people["bob"].id
    bad = S(data={"street": "x", "user_id": 12345}, context={"session": session})
    assert not bad.is_valid()
    assert bad.errors == {"user_id": ['Invalid pk "12345" - object does not exist.']}


class Detail(MethodBasedView):
    async def get(self, request: Request, id: int) -> Any:
        return {"id": id}


def _request() -> Any:
    router = SimpleRouter()
    router.register("/user/{id:int}", Detail, ["GET"], name="user-detail")
    router.register("/address/{id:int}", Detail, ["GET"], name="address-detail")
    router.register("/tag/{label}", Detail, ["GET"], name="tag-detail")
    return SimpleNamespace(app=App(router))


class LinkedAddress(ModelSerializer):
    url = HyperlinkedIdentityField(view_name="address-detail")
    user = HyperlinkedRelatedField(view_name="user-detail", queryset=User, allow_null=True)

    class Meta:
        model = Address
        fields = ("url", "street", "user")


class LinkedUser(ModelSerializer):
    url = HyperlinkedIdentityField(view_name="user-detail", lookup_url_kwarg="id")
    tags = HyperlinkedRelatedField(
        view_name="tag-detail", lookup_field="label", queryset=Tag, many=True, required=False
    )

    class Meta:
        model = User
        fields = ("url", "name", "tags")


def test_hyperlinks_out(session: Session, people: dict[str, Any]) -> None:
    people["ann"].tags = [people["red"], people["blue"]]
    session.flush()
    context = {"session": session, "request": _request()}
    assert LinkedAddress(people["home"], context=context).data == {
        "url": f"/address/{people['home'].id}",
        "street": "1 Main St",
        "user": f"/user/{people['ann'].id}",
    }
    assert LinkedUser(people["ann"], context=context).data == {
        "url": f"/user/{people['ann'].id}",
        "name": "ann",
        "tags": ["/tag/red", "/tag/blue"],
    }
    with pytest.raises(RuntimeError, match="request"):
        LinkedUser(people["ann"], context={"session": session}).data  # noqa: B018


def test_hyperlinks_in(session: Session, people: dict[str, Any]) -> None:
    request = _request()
    request.session = session  # the request's own session serves when the context has none
    context = {"request": request}
    bob = people["bob"]
    serializer: ModelSerializer
    for url in (f"/user/{bob.id}", f"/user/{bob.id}/", f"https://api.example.com/user/{bob.id}?x=1"):
        serializer = LinkedAddress(data={"street": "x", "user": url}, context=context)
        assert serializer.is_valid(), serializer.errors
        assert serializer.validated_data["user"] is bob
    serializer = LinkedUser(data={"name": "cy", "tags": ["/tag/blue", "/tag/red"]}, context=context)
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["tags"] == [people["blue"], people["red"]]
    cases: list[tuple[Any, list[str]]] = [
        ("/nowhere/1", ["Invalid hyperlink - No URL match."]),
        ("user", ["Invalid hyperlink - No URL match."]),
        (f"/address/{people['home'].id}", ["Invalid hyperlink - Incorrect URL match."]),
        ("/user/4242", ["Invalid hyperlink - Object does not exist."]),
        (7, ["Incorrect type. Expected URL string, received int."]),
    ]
    for value, messages in cases:
        serializer = LinkedAddress(data={"street": "x", "user": value}, context=context)
        assert not serializer.is_valid()
        assert serializer.errors == {"user": messages}, value
    serializer = LinkedUser(data={"name": "cy", "tags": ["/tag/green", "/tag/red"]}, context=context)
    assert not serializer.is_valid()
    assert serializer.errors == {"tags": ["Invalid hyperlink - Object does not exist."]}


def test_hyperlinks_need_a_real_attribute() -> None:
    class Broken(ModelSerializer):
        user = HyperlinkedRelatedField(view_name="user-detail", lookup_field="nope", queryset=User)

        class Meta:
            model = Address
            fields = ("user",)

    with pytest.raises(ConfigurationError, match="nope"):
        Broken().fields  # noqa: B018


def test_depth_nests_related_objects(session: Session, people: dict[str, Any]) -> None:
    class Deep(ModelSerializer):
        class Meta:
            model = User
            fields = ("id", "name", "addresses")
            depth = 1

    class Deeper(ModelSerializer):
        class Meta:
            model = Address
            fields = "__all__"
            depth = 2

    ann, home, work = people["ann"], people["home"], people["work"]
    assert Deep(ann).data == {
        "id": ann.id,
        "name": "ann",
        "addresses": [  # the last level shows its own relationships as keys, as DRF does
            {"id": home.id, "street": "1 Main St", "user_id": ann.id, "user": ann.id},
            {"id": work.id, "street": "2 High St", "user_id": ann.id, "user": ann.id},
        ],
    }
    data = Deeper(home).data
    assert list(data) == ["id", "street", "user_id", "user"]
    assert data["user"]["name"] == "ann"
    assert [address["street"] for address in data["user"]["addresses"]] == ["1 Main St", "2 High St"]
    assert data["user"]["addresses"][0] == {
        "id": home.id,
        "street": "1 Main St",
        "user_id": ann.id,
        "user": ann.id,
    }
    assert Deep().fields["addresses"].read_only
    serializer = Deep(data={"name": "cy", "addresses": [1]}, context={"session": session})
    assert serializer.is_valid(), serializer.errors
    assert "addresses" not in serializer.validated_data  # nested is read-only


def test_explicit_nested_serializers_and_method_fields(session: Session, people: dict[str, Any]) -> None:
    class NameSerializer(ModelSerializer):
        class Meta:
            model = User
            fields = ("name",)

    class StreetSerializer(ModelSerializer):
        owner = SerializerMethodField()
        resident = NameSerializer(source="user", read_only=True)

        class Meta:
            model = Address
            fields = ("street",)

        def get_owner(self, obj: Address) -> str | None:
            return obj.user.name if obj.user is not None else None

    class WithAddresses(ModelSerializer):
        addresses = StreetSerializer(many=True, read_only=True)
        count = SerializerMethodField()

        class Meta:
            model = User
            fields = ("name", "addresses")

        def get_count(self, obj: User) -> int:
            return len(obj.addresses)

    ann, bob = people["ann"], people["bob"]
    assert WithAddresses([ann, bob], many=True).data == [
        {
            "name": "ann",
            "addresses": [
                {"street": "1 Main St", "owner": "ann", "resident": {"name": "ann"}},
                {"street": "2 High St", "owner": "ann", "resident": {"name": "ann"}},
            ],
            "count": 2,
        },
        {"name": "bob", "addresses": [], "count": 0},
    ]
    orphan = Address(street="nowhere")
    assert StreetSerializer(orphan).data == {"street": "nowhere", "owner": None, "resident": None}
