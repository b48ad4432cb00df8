"""The serializers, as the article declared them: ``UserSerializer``'s Meta names no fields (all of them)."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import select

from trio_rest.serializers import ModelSerializer, PrimaryKeyRelatedField

from .models import Address, User


class AddressSerializer(ModelSerializer):
    class Meta:
        model = Address
        fields = ("id", "email_address")


class UserSerializer(ModelSerializer):
    addresses = PrimaryKeyRelatedField(queryset=select(Address), many=True, required=False)

    class Meta:
        model = User
        # Every column and relationship; the password may be written, never read back.
        extra_kwargs: ClassVar = {"password": {"write_only": True}}
