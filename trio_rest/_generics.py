"""`ModelViewSet`: list, create, retrieve, update, partial update and destroy for a model.

A viewset is a plain class of a few attributes and six async actions; each
action runs its database work in one worker thread (`Request.run_sync`),
inside the request's session and transaction. `register_viewset` maps the
actions to two routes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import cattrs
import sqlalchemy
import trio
from sqlalchemy.orm import Session

from ._errors import ConfigurationError, NotFoundError, ValidationError
from ._pagination import CursorPagination, LimitOffsetPagination, column_int_range
from ._request import Request, Response
from ._views import EndpointSpec

if TYPE_CHECKING:
    from ._routing import SimpleRouter

__all__ = ["ModelViewSet", "register_viewset"]


class ModelViewSet:
    """The six REST actions over one model, driven by its serializer.

    Attributes:
        queryset: the model class, or a ``select()`` of it (to pre-filter).
        serializer_class: a ModelSerializer of the model.
        pagination: `LimitOffsetPagination()` (the default), `CursorPagination()`
            or None for unpaginated lists.
        filter_fields: columns a client may filter on: ``args={"name": "Ada"}``.
        ordering_fields: columns a client may order by: ``args={"ordering": "-name,id"}``.
        ordering: the default order (the primary key when empty).
        lookup_field: the column the detail route names (``"id"``).
        permission_classes: who may call it (see `trio_rest.auth`), as for a
            `MethodBasedView`: a list, or a mapping from method to list; the
            detail actions check the object permissions on the row they read.
        observe: publish every committed write to the model (see `Database.observe`)
            and take SUBSCRIBE on both routes: ``SUBSCRIBE /user`` receives each
            ``created``, ``updated`` and ``deleted`` object, ``SUBSCRIBE /user/6``
            answers with the object and receives its changes. The App needs a database.
            Each object is checked against the view's object permissions first.

    Example:
        class UserViewSet(ModelViewSet):
            queryset = User
            serializer_class = UserSerializer
            filter_fields = ("name",)

        router.register_viewset("/user", UserViewSet, basename="user")
    """

    queryset: ClassVar[Any] = None
    serializer_class: ClassVar[Any] = None
    pagination: ClassVar[LimitOffsetPagination | CursorPagination | None] = LimitOffsetPagination()
    filter_fields: ClassVar[Sequence[str]] = ()
    ordering_fields: ClassVar[Sequence[str]] = ()
    ordering: ClassVar[Sequence[str]] = ()
    lookup_field: ClassVar[str] = "id"
    observe: ClassVar[bool] = False
    permission_classes: ClassVar[Any] = None

    # -- the actions -------------------------------------------------------------

    async def list(self, request: Request) -> Any:
        """GET on the list route: a page of serialized rows."""
        return await request.run_sync(self._list, request)

    async def create(self, request: Request) -> Response:
        """POST on the list route: 201 with the created row."""
        return Response(await request.run_sync(self._save, request, None, False), status=201)

    async def retrieve(self, request: Request, **lookup: Any) -> Any:
        """GET on the detail route: the row, or 404."""
        return await request.run_sync(self._retrieve, request, lookup)

    async def update(self, request: Request, **lookup: Any) -> Any:
        """PUT on the detail route: every writable field."""
        return await request.run_sync(self._save, request, lookup, False)

    async def partial_update(self, request: Request, **lookup: Any) -> Any:
        """PATCH on the detail route: only the fields sent."""
        return await request.run_sync(self._save, request, lookup, True)

    async def destroy(self, request: Request, **lookup: Any) -> Response:
        """DELETE on the detail route: 204."""
        await request.run_sync(self._destroy, request, lookup)
        return Response(None, status=204)

    async def subscribe_list(self, request: Request, topic: str) -> None:
        """SUBSCRIBE on the list route (with `observe`): every change of the model, as it commits."""
        await request.follow(topic)
        await trio.sleep_forever()

    async def subscribe_detail(self, request: Request, topic: str, **lookup: Any) -> None:
        """SUBSCRIBE on the detail route (with `observe`): 200 with the object, then its changes."""
        data = await request.run_sync(self._retrieve, request, lookup)
        await request.accept(data)
        await request.follow(topic.format_map(lookup))
        await trio.sleep_forever()

    # -- hooks (worker thread) ------------------------------------------------------

    def get_queryset(self, request: Request) -> sqlalchemy.Select[Any]:
        """The base query; override to restrict it (say, to the user's rows)."""
        queryset = self.queryset
        if queryset is None:
            raise ConfigurationError(f"{type(self).__name__}.queryset is not set")
        return queryset if isinstance(queryset, sqlalchemy.Select) else sqlalchemy.select(queryset)

    def get_serializer(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        """Build the serializer, with the session and the request in its context."""
        if self.serializer_class is None:
            raise ConfigurationError(f"{type(self).__name__}.serializer_class is not set")
        context = {"session": request.session, "request": request, "converter": request.app.converter}
        return self.serializer_class(*args, context=context, **kwargs)

    def get_object(self, request: Request, lookup: Mapping[str, Any]) -> Any:
        """The row the detail route names, once the view's object permissions allow it.

        Raises:
            NotFoundError: no row matches.
            AuthenticationError, PermissionDeniedError: an object permission refuses it.
        """
        statement = self.get_queryset(request)
        model = _model_of(statement)
        for name, value in lookup.items():
            column = getattr(model, name)
            integers = column_int_range(column, _session(request))
            if integers is not None and type(value) is int and value not in integers:
                raise NotFoundError(f"No {model.__name__} matches the given query.")  # no row can hold it
            statement = statement.where(column == value)
        instance = _session(request).scalars(statement).unique().first()
        if instance is None:
            raise NotFoundError(f"No {model.__name__} matches the given query.")
        request.check_object_permissions(instance)
        return instance

    # -- implementations --------------------------------------------------------------

    def _list(self, request: Request) -> Any:
        statement = self._ordered(request, self._filtered(request, self.get_queryset(request)))
        if self.pagination is None:
            rows = _session(request).scalars(statement).unique().all()
            return self.get_serializer(request, rows, many=True).data
        page = self.pagination.paginate(_session(request), statement, request.path, request.args)
        return {**page.meta, "results": self.get_serializer(request, page.rows, many=True).data}

    def _retrieve(self, request: Request, lookup: Mapping[str, Any]) -> Any:
        return self.get_serializer(request, self.get_object(request, lookup)).data

    def _save(self, request: Request, lookup: Mapping[str, Any] | None, partial: bool) -> Any:
        instance = None if lookup is None else self.get_object(request, lookup)
        serializer = self.get_serializer(request, instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return serializer.data

    def _destroy(self, request: Request, lookup: Mapping[str, Any]) -> None:
        session = _session(request)
        session.delete(self.get_object(request, lookup))
        session.flush()

    def _filtered(self, request: Request, statement: sqlalchemy.Select[Any]) -> sqlalchemy.Select[Any]:
        model = _model_of(statement)
        errors: dict[str, list[str]] = {}
        for name in self.filter_fields:
            if name not in request.args:
                continue
            column = getattr(model, name)
            try:
                integers = column_int_range(column, _session(request))
                value = _convert(request.app.converter, request.args[name], column, integers)
            except (cattrs.BaseValidationError, ValueError, TypeError):
                errors[name] = [f"Invalid value for filter {name!r}."]
                continue
            statement = statement.where(column == value)
        if errors:
            raise ValidationError(errors=errors)
        return statement

    def _ordered(self, request: Request, statement: sqlalchemy.Select[Any]) -> sqlalchemy.Select[Any]:
        model = _model_of(statement)
        requested = request.args.get("ordering")
        names = [name.strip() for name in str(requested).split(",") if name.strip()] if requested else []
        unknown = [name for name in names if name.lstrip("-") not in self.ordering_fields]
        if unknown:
            allowed = ", ".join(self.ordering_fields) or "none"
            raise ValidationError(
                errors={"ordering": [f"Cannot order by {', '.join(unknown)}; allowed: {allowed}."]}
            )
        names = names or list(self.ordering)
        clauses = [
            getattr(model, n.lstrip("-")).desc() if n.startswith("-") else getattr(model, n) for n in names
        ]
        # A deterministic order always ends with the primary key, so pages never overlap.
        clauses += [column for column in sqlalchemy.inspect(model).primary_key if column.key not in names]
        return statement.order_by(*clauses)


def _session(request: Request) -> Session:
    if request.session is None:
        raise ConfigurationError("a ModelViewSet needs an App with a database")
    return request.session  # type: ignore[no-any-return]


def _model_of(statement: sqlalchemy.Select[Any]) -> Any:
    return statement.column_descriptions[0]["entity"]


def _convert(converter: cattrs.Converter, value: Any, column: Any, integers: range | None) -> Any:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    if python_type is bool and isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(value)
        return value.lower() in ("true", "1")
    converted = converter.structure(value, python_type)
    if integers is not None and converted not in integers:
        # The database could not compare it: a 400 for the filter, not a 500.
        raise ValueError(value)
    return converted


_ACTIONS = {
    "list": (("GET", "list"), ("POST", "create")),
    "detail": (("GET", "retrieve"), ("PUT", "update"), ("PATCH", "partial_update"), ("DELETE", "destroy")),
}


def _action(viewset: type[ModelViewSet], action: str, method: str, **extra: Any) -> Any:
    async def view(request: Request, **params: Any) -> Any:
        return await getattr(viewset(), action)(request, **extra, **params)

    declared = viewset.permission_classes
    if isinstance(declared, Mapping):
        declared = declared.get(method, declared.get("*"))
    if declared is not None:
        view.__trio_rest_endpoint__ = EndpointSpec(permissions=declared)  # type: ignore[attr-defined]

    view.__qualname__ = f"{viewset.__name__}.{action}"
    # What the AsyncAPI document reads: the action's docstring and the viewset's serializer.
    view.__trio_rest_viewset__ = (viewset, action)  # type: ignore[attr-defined]
    return view


def model_of(viewset: type[ModelViewSet]) -> Any:
    """The model a viewset serves (its queryset's entity)."""
    queryset = viewset.queryset
    model = _model_of(queryset) if isinstance(queryset, sqlalchemy.Select) else queryset
    if model is None:
        raise ConfigurationError(f"{viewset.__name__}.queryset is not set")
    return model


def _lookup_converter(viewset: type[ModelViewSet]) -> str:
    column = getattr(model_of(viewset), viewset.lookup_field)
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return "str"
    return {int: "int", uuid.UUID: "uuid"}.get(python_type, "str")


def register_viewset(
    router: SimpleRouter, prefix: str, viewset: type[ModelViewSet], *, basename: str
) -> None:
    """Register the list and detail routes of a viewset.

    ``{prefix}`` (named ``{basename}-list``) takes GET (list) and POST
    (create); ``{prefix}/{lookup}`` (named ``{basename}-detail``) takes GET,
    PUT, PATCH and DELETE. The lookup converter follows the column's type.
    With ``observe = True``, both also take SUBSCRIBE, following the topics
    ``{prefix}`` and ``{prefix}/{value}`` that the App's database publishes to.

    Args:
        router: the router.
        prefix: e.g. ``"/user"``.
        viewset: a `ModelViewSet` subclass.
        basename: the route names' stem, e.g. ``"user"``.

    Raises:
        ConfigurationError: the viewset has no queryset, or a route conflicts.
    """
    prefix = prefix.rstrip("/") or ""
    lookup = f"{{{viewset.lookup_field}:{_lookup_converter(viewset)}}}"
    list_path, detail_path = prefix or "/", f"{prefix}/{lookup}"
    topics = {"list": list_path, "detail": f"{prefix}/{{{viewset.lookup_field}}}"}
    for kind, path in (("list", list_path), ("detail", detail_path)):
        for index, (method, action) in enumerate(_ACTIONS[kind]):
            # The name belongs to the route: given with its first method only.
            name = f"{basename}-{kind}" if index == 0 else None
            router.register(path, _action(viewset, action, method), [method], name=name)
        if viewset.observe:
            subscribe = _action(viewset, f"subscribe_{kind}", "SUBSCRIBE", topic=topics[kind])
            router.register(path, subscribe, ["SUBSCRIBE"])
    router.viewsets.append((viewset, topics["list"], topics["detail"]))
