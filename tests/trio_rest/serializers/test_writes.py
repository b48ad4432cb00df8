"""create() and update(): @validates hooks, uniqueness (checked and raced), savepoints, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from trio_rest import ValidationError
from trio_rest.serializers import ModelSerializer, _model, _unique

from .models import Product, Tag, User


class UserSerializer(ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "name", "email", "tags")


class ProductSerializer(ModelSerializer):
    class Meta:
        model = Product
        fields = "__all__"


def count(session: Session, model: type) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def product(**values: Any) -> dict[str, Any]:
    return {"sku": "s1", "code": "c1", "shop": "north", "position": 1, "slug": None, **values}


def test_create_flushes_and_leaves_the_commit_to_the_caller(engine: sa.Engine) -> None:
    with Session(engine) as session:
        tag = Tag(label="x")
        session.add(tag)
        session.commit()
        serializer = UserSerializer(data={"name": "ann", "tags": [tag.id]}, context={"session": session})
        serializer.is_valid(raise_exception=True)
        user = serializer.save()
        assert user.id is not None and user.tags == [tag]
        assert serializer.data == {"id": user.id, "name": "ann", "email": None, "tags": [tag.id]}
        # The framework's choice: nothing was committed behind its back. On SQLite
        # this needs the BEGIN _begin_outer_transaction sends: pysqlite would
        # otherwise let the SAVEPOINT's RELEASE commit the row.
        session.rollback()
    with Session(engine) as session:
        assert count(session, User) == 0


def test_save_passes_extra_values(session: Session) -> None:
    serializer = UserSerializer(data={"name": "ann"}, context={"session": session})
    serializer.is_valid(raise_exception=True)
    user = serializer.save(email="set@by.view")
    assert user.email == "set@by.view"


def test_validates_hooks_become_field_errors(session: Session) -> None:
    serializer = UserSerializer(data={"name": "a@b", "email": "nope"}, context={"session": session})
    assert serializer.is_valid()  # the model's hooks run when the values are set
    with pytest.raises(ValidationError) as info:
        serializer.save()
    assert info.value.status == 400
    assert info.value.errors == {"name": ["Invalid value."], "email": ["Enter a valid email address."]}
    assert serializer.errors == info.value.errors
    assert count(session, User) == 0
    session.execute(sa.select(1))  # the session is still usable


def test_refused_update_leaves_the_instance_as_stored(session: Session) -> None:
    user = User(name="ann", email="a@b")
    session.add(user)
    session.flush()
    serializer = UserSerializer(
        user, data={"name": "ann2", "email": "bad"}, partial=True, context={"session": session}
    )
    assert serializer.is_valid()
    with pytest.raises(ValidationError) as info:
        serializer.save()
    assert info.value.errors == {"email": ["Enter a valid email address."]}
    assert (user.name, user.email) == ("ann", "a@b")  # the savepoint rolled back the half-update
    session.commit()


def test_update_sets_to_many_relations(session: Session) -> None:
    red, blue, green = Tag(label="red"), Tag(label="blue"), Tag(label="green")
    user = User(name="ann", tags=[red])
    session.add_all([user, red, blue, green])
    session.flush()
    serializer = UserSerializer(
        user, data={"tags": [green.id, blue.id]}, partial=True, context={"session": session}
    )
    serializer.is_valid(raise_exception=True)
    serializer.save()
    session.expire_all()
    assert [tag.label for tag in session.get(User, user.id).tags] == ["blue", "green"]  # type: ignore[union-attr]


def test_unique_columns_are_checked_before_writing(session: Session, queries: list[str]) -> None:
    session.add(Product(sku="s1", code="c1", shop="north", position=1, slug="first"))
    session.flush()
    queries.clear()
    serializer = ProductSerializer(
        data=product(sku="s1", code="c1", position=1, slug="first"), context={"session": session}
    )
    assert not serializer.is_valid()
    assert serializer.errors == {
        "sku": ["product with this sku already exists."],
        "code": ["product with this code already exists."],
        "slug": ["product with this slug already exists."],
        "non_field_errors": ["The fields shop, position must make a unique set."],
    }
    assert len(queries) == 1  # every rule in one query
    assert ProductSerializer(
        data=product(sku="s2", code="c2", position=2, slug=None), context={"session": session}
    ).is_valid()


def test_unique_checks_exclude_the_instance_being_updated(session: Session) -> None:
    first = Product(sku="s1", code="c1", shop="north", position=1)
    second = Product(sku="s2", code="c2", shop="north", position=2)
    session.add_all([first, second])
    session.flush()
    context = {"session": session}
    unchanged = ProductSerializer(first, data=product(), context=context)
    assert unchanged.is_valid(), unchanged.errors
    clash = ProductSerializer(first, data={"sku": "s2", "position": 2}, partial=True, context=context)
    assert not clash.is_valid()
    assert clash.errors == {
        "sku": ["product with this sku already exists."],
        "non_field_errors": ["The fields shop, position must make a unique set."],
    }


def test_a_constraint_hit_at_flush_becomes_the_field_error(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_recheck(*args: Any) -> dict[str, list[str]]:
        raise AssertionError("the driver's error should have named the constraint")

    monkeypatch.setattr(_model, "conflicts", no_recheck)
    session.add(Product(sku="s1", code="c1", shop="north", position=1, slug="taken"))
    session.flush()
    cases: list[tuple[dict[str, Any], dict[str, list[str]]]] = [
        ({"sku": "s1"}, {"sku": ["product with this sku already exists."]}),
        ({"code": "c1"}, {"code": ["product with this code already exists."]}),
        ({"slug": "taken"}, {"slug": ["product with this slug already exists."]}),
        ({"position": 1}, {"non_field_errors": ["The fields shop, position must make a unique set."]}),
    ]
    for values, errors in cases:
        data = product(sku="s9", code="c9", position=9, slug=None) | values
        # create() directly: what is_valid would have caught reaches the database
        with pytest.raises(ValidationError) as info:
            ProductSerializer(context={"session": session}).create(data)
        assert info.value.errors == errors, values
    session.execute(sa.select(1))  # the SAVEPOINT kept the outer transaction alive
    session.add(Tag(label="after"))
    session.commit()
    assert count(session, Product) == 1 and count(session, Tag) == 1


def test_a_lost_race_is_a_field_error(engine: sa.Engine) -> None:
    with Session(engine) as first, Session(engine) as second:
        winner = UserSerializer(data={"name": "ann"}, context={"session": first})
        loser = UserSerializer(data={"name": "ann"}, context={"session": second})
        assert winner.is_valid() and loser.is_valid()  # both pass the check
        winner.save()
        first.commit()
        with pytest.raises(ValidationError) as info:
            loser.save()
        assert info.value.status == 400
        assert info.value.errors == {"name": ["user with this name already exists."]}
        assert loser.errors == info.value.errors
        second.add(Tag(label="still usable"))
        second.commit()
    with Session(engine) as session:
        assert count(session, User) == 1 and count(session, Tag) == 1


def test_many_create_reports_the_failing_item(session: Session) -> None:
    serializer = UserSerializer(
        data=[{"name": "a"}, {"name": "b"}, {"name": "a"}], many=True, context={"session": session}
    )
    assert serializer.is_valid()  # the duplicate is within the batch: only the database sees it
    with pytest.raises(ValidationError) as info:
        serializer.save()
    assert info.value.errors == [{}, {}, {"name": ["user with this name already exists."]}]


def test_other_integrity_errors_propagate(session: Session) -> None:
    class Loose(ModelSerializer):
        class Meta:
            model = Product
            fields = ("sku",)

    serializer = Loose(data={"sku": "s1"}, context={"session": session})
    assert serializer.is_valid()
    with pytest.raises(sa.exc.IntegrityError):  # NOT NULL: a bug in the serializer, not the input
        serializer.save()
    session.execute(sa.select(1))


def test_writes_need_a_session() -> None:
    serializer = UserSerializer(data={"name": "ann"})
    with pytest.raises(RuntimeError, match="Session"):
        serializer.is_valid()


class _DriverError(Exception):
    """An IntegrityError's ``orig`` from a driver whose messages we do not parse."""


def test_unreadable_violations_are_checked_again() -> None:
    rules = ProductSerializer._plan().rules
    error = sa.exc.IntegrityError("INSERT ...", {}, _DriverError("duplicate"))
    found = {"sku": ["product with this sku already exists."]}
    assert _unique.integrity_errors(error, rules, lambda: found) == found
    assert _unique.integrity_errors(error, rules, dict) == {}  # nothing found: the caller re-raises


def test_sqlite_messages_are_read() -> None:
    import sqlite3

    rules = ProductSerializer._plan().rules

    def errors(message: str) -> dict[str, list[str]]:
        error = sa.exc.IntegrityError("INSERT ...", {}, sqlite3.IntegrityError(message))
        return _unique.integrity_errors(error, rules, lambda: {"checked": ["again"]})

    assert errors("UNIQUE constraint failed: products.sku") == {
        "sku": ["product with this sku already exists."]
    }
    assert errors("UNIQUE constraint failed: products.shop, products.position") == {
        "non_field_errors": ["The fields shop, position must make a unique set."]
    }
    assert errors("UNIQUE constraint failed: index 'ix_products_slug'") == {
        "slug": ["product with this slug already exists."]
    }
    assert errors("UNIQUE constraint failed: other.sku") == {"checked": ["again"]}
    assert errors("NOT NULL constraint failed: products.code") == {}


def test_sqlite_engines_configured_per_sqlalchemys_recipe(tmp_path: Any) -> None:
    # SQLAlchemy's pysqlite documentation: driver autocommit, and BEGIN on begin.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'recipe.db'}")

    @sa.event.listens_for(engine, "connect")
    def _autocommit(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    User.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            serializer = UserSerializer(data={"name": "ann"}, context={"session": session})
            serializer.is_valid(raise_exception=True)
            serializer.save()
            session.rollback()
            assert count(session, User) == 0
            serializer = UserSerializer(data={"name": "bob"}, context={"session": session})
            serializer.is_valid(raise_exception=True)
            serializer.save()
            session.commit()
            assert count(session, User) == 1
    finally:
        engine.dispose()
