"""Permissions: who may run a view, checked before it runs (SUBSCRIBE included).

A view names its permissions as ``permission_classes`` (a `MethodBasedView` attribute, a list
for every method or a mapping from method to list) or ``@endpoint(permissions=[...])``; an App
gives the default for views that name none (``App(permissions=[...])``). Each entry is a
`BasePermission` subclass (instantiated once), an instance, or a plain callable
``fn(request) -> bool``. The first that refuses decides: 401 when the request has no user
(no credentials, or credentials that were refused), 403 when it has one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from .._errors import AuthenticationError, ConfigurationError, PermissionDeniedError

if TYPE_CHECKING:
    from .._request import Request

__all__ = [
    "AllowAny",
    "BasePermission",
    "IsAdmin",
    "IsAuthenticated",
    "Permission",
    "check_object_permissions",
    "check_permissions",
    "compile_permissions",
]


class BasePermission:
    """A rule a request must pass; subclass it and override `has_permission`.

    Attributes:
        message: the 403's detail when it refuses an authenticated user.
    """

    message: ClassVar[str] = "You do not have permission to do this."

    def has_permission(self, request: Request) -> bool:
        """Whether `request` may run the view (called before the view)."""
        return True

    def has_object_permission(self, request: Request, obj: Any) -> bool:
        """Whether `request` may act on `obj` (called by `Request.check_object_permissions`)."""
        return True


class AllowAny(BasePermission):
    """Everyone, with or without credentials."""


class IsAuthenticated(BasePermission):
    """Requests whose credentials were accepted."""

    def has_permission(self, request: Request) -> bool:
        return request.user is not None


class IsAdmin(BasePermission):
    """Authenticated users that are admins: an ``is_admin`` claim (or attribute) that is true."""

    message = "Only administrators may do this."

    def has_permission(self, request: Request) -> bool:
        user = request.user
        if user is None:
            return False
        if isinstance(user, Mapping):
            return user.get("is_admin") is True
        return getattr(user, "is_admin", False) is True


#: What a view may list as a permission.
Permission = type[BasePermission] | BasePermission | Callable[..., bool]


def compile_permissions(entries: Iterable[Any], owner: str) -> tuple[Any, ...]:
    """Check and instantiate a view's permissions once, when the App is built.

    Raises:
        ConfigurationError: an entry that is neither a `BasePermission` nor a callable.
    """
    compiled: list[Any] = []
    for entry in entries:
        if isinstance(entry, type) and issubclass(entry, BasePermission):
            compiled.append(entry())
        elif isinstance(entry, BasePermission) or callable(entry):
            compiled.append(entry)
        else:
            raise ConfigurationError(f"{owner}: {entry!r} is not a permission (BasePermission or callable)")
    return tuple(compiled)


def check_permissions(request: Request, permissions: tuple[Any, ...]) -> None:
    """Raise 401 or 403 unless every permission lets `request` through.

    Raises:
        AuthenticationError: refused, and the request has no user.
        PermissionDeniedError: refused, and the request has a user.
    """
    for permission in permissions:
        if isinstance(permission, BasePermission):
            allowed, message = permission.has_permission(request), permission.message
        else:
            allowed, message = bool(permission(request)), BasePermission.message
        if not allowed:
            _refuse(request, message)


def check_object_permissions(request: Request, obj: Any) -> None:
    """Raise 401 or 403 unless every permission of `request`'s view lets it act on `obj`."""
    for permission in request.permissions:
        if isinstance(permission, BasePermission) and not permission.has_object_permission(request, obj):
            _refuse(request, permission.message)


def _refuse(request: Request, message: str) -> NoReturn:
    if request.user is None:
        raise AuthenticationError(request.auth_error or "Authentication credentials were not provided.")
    raise PermissionDeniedError(message)
