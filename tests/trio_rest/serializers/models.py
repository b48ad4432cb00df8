"""Models the serializer tests write to both databases."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates


class Base(DeclarativeBase):
    pass


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


user_tags = sa.Table(
    "user_tags",
    Base.metadata,
    sa.Column("user_id", sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("tag_id", sa.ForeignKey("tags.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(20), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(50))
    is_active: Mapped[bool] = mapped_column(default=True)
    password: Mapped[str] = mapped_column(sa.String(100), default="")

    addresses: Mapped[list[Address]] = relationship(back_populates="user", order_by="Address.id")
    tags: Mapped[list[Tag]] = relationship(secondary=user_tags, order_by="Tag.id")

    @validates("name")
    def _check_name(self, key: str, value: str) -> str:
        assert "@" not in value
        return value

    @validates("email")
    def _check_email(self, key: str, value: str | None) -> str | None:
        if value is not None and "@" not in value:
            raise ValueError("Enter a valid email address.")
        return value

    @property
    def display(self) -> str:
        return f"<{self.name}>"


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    street: Mapped[str] = mapped_column(sa.String(50))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    user: Mapped[User | None] = relationship(back_populates="addresses")


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(20))


class Everything(Base):
    """One column of every type the serializers infer fields for."""

    __tablename__ = "everything"

    id: Mapped[int] = mapped_column(primary_key=True)
    small: Mapped[int] = mapped_column(sa.SmallInteger)
    count: Mapped[int] = mapped_column(sa.Integer)
    big: Mapped[int] = mapped_column(sa.BigInteger)
    title: Mapped[str] = mapped_column(sa.String(20))
    body: Mapped[str] = mapped_column(sa.Text)
    flag: Mapped[bool] = mapped_column(sa.Boolean)
    ratio: Mapped[float] = mapped_column(sa.Float)
    price: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(8, 2))
    day: Mapped[datetime.date] = mapped_column(sa.Date)
    moment: Mapped[datetime.datetime] = mapped_column(sa.DateTime)
    alarm: Mapped[datetime.time] = mapped_column(sa.Time)
    color: Mapped[Color] = mapped_column(sa.Enum(Color))
    size: Mapped[str] = mapped_column(sa.Enum("s", "m", "l", name="size"))
    payload: Mapped[Any] = mapped_column(sa.JSON)
    token: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    nickname: Mapped[str | None] = mapped_column(sa.String(10))
    level: Mapped[int] = mapped_column(default=5)
    created: Mapped[datetime.datetime] = mapped_column(server_default=sa.func.current_timestamp())


class Product(Base):
    """Uniqueness declared in every way: a column flag, a one-column constraint, a pair."""

    __tablename__ = "products"
    __table_args__ = (sa.UniqueConstraint("code"), sa.UniqueConstraint("shop", "position"))

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(sa.String(10), unique=True)
    code: Mapped[str] = mapped_column(sa.String(10))
    shop: Mapped[str] = mapped_column(sa.String(10))
    position: Mapped[int]
    slug: Mapped[str | None] = mapped_column(sa.String(10), unique=True, index=True)


class Document(Base):
    """A non-integer primary key."""

    __tablename__ = "documents"

    key: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(sa.String(20))
