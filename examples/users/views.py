"""The views: plain ``def`` methods, as in the article; trio-rest runs them in worker threads.

The ``subscribe`` methods are ``async def``: they follow the topics the database publishes
each committed write of a user to (see ``app.py``)."""

from __future__ import annotations

from typing import Any

import trio
from sqlalchemy import select

from trio_rest import AuthenticationError, MethodBasedView, NotFound, Request, Response, endpoint
from trio_rest.auth import IsAuthenticated, verify_password

from .models import Address, User
from .serializers import AddressSerializer, UserSerializer


def _context(request: Request) -> dict[str, Any]:
    return {"session": request.session, "request": request}


def _get(request: Request, model: type, id: int) -> Any:
    instance = request.session.get(model, id)
    if instance is None:
        raise NotFound(f"No {model.__name__.lower()} with id {id}.")
    return instance


def _update(request: Request, serializer_class: type, model: type, id: int) -> Any:
    """A partial update, as the article's clients send it (PUT with some fields)."""
    serializer = serializer_class(
        _get(request, model, id), data=request.data, partial=True, context=_context(request)
    )
    serializer.is_valid(raise_exception=True)
    serializer.save()
    return serializer.data


def _create(request: Request, serializer_class: type) -> Response:
    serializer = serializer_class(data=request.data, context=_context(request))
    serializer.is_valid(raise_exception=True)
    serializer.save()
    return Response(serializer.data, status=201)


class UserListView(MethodBasedView):
    """Every user."""

    serializer_class = UserSerializer  # what the AsyncAPI document describes the data with

    def get(self, request: Request) -> Any:
        """Every user, by id."""
        users = request.session.scalars(select(User).order_by(User.id)).all()
        return self.serializer_class(users, many=True, context=_context(request)).data

    async def subscribe(self, request: Request) -> None:
        """Live: each user created, updated or deleted, as soon as it is committed."""
        await request.follow("/user/list")
        await trio.sleep_forever()


class UserView(MethodBasedView):
    """One user."""

    serializer_class = UserSerializer

    def get(self, request: Request, id: int) -> Any:
        """The user, or 404."""
        return self.serializer_class(_get(request, User, id), context=_context(request)).data

    async def subscribe(self, request: Request, id: int) -> None:
        """Live: this user's changes, as soon as they are committed."""
        await request.follow(f"/user/{id}")
        await trio.sleep_forever()

    def put(self, request: Request, id: int) -> Any:
        """Change the fields sent (a partial update, as the article's clients send it)."""
        return _update(request, self.serializer_class, User, id)


class CreateUserView(MethodBasedView):
    serializer_class = UserSerializer

    def post(self, request: Request) -> Response:
        """Create a user: 201 with it."""
        return _create(request, self.serializer_class)


class AddressView(MethodBasedView):
    """One address."""

    serializer_class = AddressSerializer

    def get(self, request: Request, id: int) -> Any:
        """The address, or 404."""
        return self.serializer_class(_get(request, Address, id), context=_context(request)).data

    def put(self, request: Request, id: int) -> Any:
        """Change the fields sent."""
        return _update(request, self.serializer_class, Address, id)


class CreateAddressView(MethodBasedView):
    serializer_class = AddressSerializer

    def post(self, request: Request) -> Response:
        """Create an address: 201 with it."""
        return _create(request, self.serializer_class)


@endpoint
def login(request: Request) -> Any:
    """``{"name", "password"}`` -> ``{"token"}``: a JSON Web Token for the next requests."""
    data = request.data if isinstance(request.data, dict) else {}
    name, password = data.get("name"), data.get("password")
    user = request.session.scalars(select(User).where(User.name == name)).first() if name else None
    if user is None or not isinstance(password, str) or not verify_password(password, user.password or ""):
        raise AuthenticationError("Unknown name or wrong password.")
    assert request.app.auth is not None
    return {"token": request.app.auth.issue(str(user.id), name=user.name)}


@endpoint(permissions=[IsAuthenticated])
def me(request: Request) -> Any:
    """The logged-in user (send the token as ``args.token``, a Bearer header or an auth message)."""
    return UserSerializer(_get(request, User, int(request.user["sub"])), context=_context(request)).data
