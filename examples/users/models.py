"""The models: a user has addresses; a user's name may not contain '@'; passwords are stored hashed."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from trio_rest.auth import hash_password


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    fullname: Mapped[str] = mapped_column(String(50), default="")
    password: Mapped[str | None] = mapped_column(String(512))
    addresses: Mapped[list[Address]] = relationship(back_populates="user", lazy="selectin")

    @validates("name")
    def validate_name(self, key: str, name: str) -> str:
        assert "@" not in name, "A name may not contain '@'."
        return name

    @validates("password")
    def store_password_hash(self, key: str, password: str | None) -> str | None:
        """Keep an scrypt hash, never the password itself (`trio_rest.auth.verify_password` checks it)."""
        return None if password is None else hash_password(password)


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_address: Mapped[str] = mapped_column(String(50))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    user: Mapped[User | None] = relationship(back_populates="addresses")
