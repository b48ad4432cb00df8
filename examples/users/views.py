"""The views: plain ``def`` methods, as in the article; trio-rest runs them in worker threads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from trio_rest import MethodBasedView, NotFound, Request, Response

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
    def get(self, request: Request) -> Any:
        users = request.session.scalars(select(User).order_by(User.id)).all()
        return UserSerializer(users, many=True, context=_context(request)).data


class UserView(MethodBasedView):
    def get(self, request: Request, id: int) -> Any:
        return UserSerializer(_get(request, User, id), context=_context(request)).data

    def put(self, request: Request, id: int) -> Any:
        return _update(request, UserSerializer, User, id)


class CreateUserView(MethodBasedView):
    def post(self, request: Request) -> Response:
        return _create(request, UserSerializer)


class AddressView(MethodBasedView):
    def get(self, request: Request, id: int) -> Any:
        return AddressSerializer(_get(request, Address, id), context=_context(request)).data

    def put(self, request: Request, id: int) -> Any:
        return _update(request, AddressSerializer, Address, id)


class CreateAddressView(MethodBasedView):
    def post(self, request: Request) -> Response:
        return _create(request, AddressSerializer)
