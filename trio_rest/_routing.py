"""URL routing: matching a request to a view, and building URLs back from route names.

The template syntax and the converters are described in ``_templates``.

Several templates may match one URL. The winner is decided segment by segment,
from the left: a literal segment beats ``int`` and ``uuid``, which beat ``str``,
which beats ``path``. Templates of the same shape (differing only in parameter
names) are tried in registration order. A template that matches but does not
accept the method lets the next candidate try; only when none accepts it is the
answer 405, listing every method the matching templates accept.

Everything is built at registration. At request time, templates without
parameters are one dict lookup; the others are a walk down a segment trie that
visits each trie node at most once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote

import attrs
from trio_rest_protocol import METHODS

from ._errors import (
    ConfigurationError,
    MethodNotAllowedError,
    NoReverseMatchError,
    NotFoundError,
)
from ._templates import (
    INT_DIGITS,
    INT_MAX,
    Part,
    format_path,
    parse_template,
    to_int,
    to_uuid,
)

# METHODS, the methods a route may accept, is the protocol's
# (docs/protocol.md, "Client to server": ``method``).
__all__ = ["METHODS", "Route", "RouteMatch", "SimpleRouter"]

# Ranks of the converters a trie node tries, lowest first (the module docstring's
# precedence); they double as the converter tags checked in `_walk`.
_INT: Final = 0
_UUID: Final = 1
_STR: Final = 2
_RANKS: Final = {"int": _INT, "uuid": _UUID, "str": _STR}
# The params of a parameter-free match: shared by every such match, so read-only.
_NO_PARAMS: Final[Mapping[str, Any]] = MappingProxyType({})


@attrs.frozen(eq=False)
class Route:
    """A registered route template, as documentation generators see it.

    Attributes:
        template: the template as first registered, e.g. ``"/user/{id:int}"``.
        name: the name `SimpleRouter.reverse` knows it by, or None.
        views: method (upper case) -> the view registered for it.
        converters: parameter name -> converter name ("str", "int", "uuid",
            "path"), in template order.
    """

    template: str
    name: str | None
    views: Mapping[str, object]
    converters: Mapping[str, str]

    @property
    def methods(self) -> tuple[str, ...]:
        """The accepted methods, sorted."""
        return tuple(sorted(self.views))


# slots=False: attrs' frozen __init__ is a third faster without slots (measured),
# and one RouteMatch is built per request.
@attrs.frozen(slots=False)
class RouteMatch:
    """The result of resolving a request: which view handles it, with which parameters.

    Attributes:
        route: the matched `Route`.
        view: the view registered for the request's method.
        params: parameter name -> converted value, to pass as keyword
            arguments; read-only (shared) when the route has no parameters.
        name: the route's name, or None.
    """

    route: Route
    view: object
    params: Mapping[str, Any]
    name: str | None


# What a trie endpoint yields for one method: a match to copy (or, for a
# parameter-free route, to return as is) and the parameter names in order.
_Hit = tuple[RouteMatch, tuple[str, ...]]


@attrs.define(eq=False)
class _Entry:
    """The router's mutable record of one template; `route` is its public snapshot."""

    route: Route
    parts: tuple[Part, ...]
    names: tuple[str, ...]
    trailing_slash: bool
    hits: dict[str, _Hit] = attrs.Factory(dict)

    def set_views(self, views: dict[str, object], name: str | None) -> None:
        """Replace the views and name, rebuilding the snapshot and the prebuilt matches."""
        self.route = attrs.evolve(self.route, views=MappingProxyType(views), name=name)
        # Built once here so that resolving a parameter-free route allocates nothing.
        self.hits = {
            method: (RouteMatch(self.route, view, _NO_PARAMS, name), self.names)
            for method, view in views.items()
        }


class _Node:
    """A segment trie node. Plain slots class: it is read on every request."""

    __slots__ = ("entries", "params", "rest", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        # (rank, child) per converter, sorted by rank.
        self.params: list[tuple[int, _Node]] = []
        self.rest: _Node | None = None  # the `path` converter's child
        self.entries: list[_Entry] = []  # templates ending here, in registration order

    def child(self, part: Part, *, create: bool) -> _Node | None:
        """Return the child reached through `part`, creating it if asked."""
        if part.kind == "static":
            found = self.static.get(part.text)
            if found is None and create:
                found = self.static[part.text] = _Node()
            return found
        if part.kind == "path":
            if self.rest is None and create:
                self.rest = _Node()
            return self.rest
        rank = _RANKS[part.kind]
        for known, node in self.params:
            if known == rank:
                return node
        if not create:
            return None
        node = _Node()
        self.params.append((rank, node))
        self.params.sort(key=lambda item: item[0])
        return node


def _pick(entries: list[_Entry], method: str, allowed: set[str] | None) -> _Hit | None:
    for entry in entries:
        hit = entry.hits.get(method)
        if hit is not None:
            return hit
        if allowed is not None:
            allowed.update(entry.hits)
    return None


def _walk(
    node: _Node,
    segs: list[str],
    i: int,
    values: list[Any],
    method: str,
    allowed: set[str] | None,
) -> _Hit | None:
    """Depth-first search in precedence order; `values` collects converted parameters.

    With `allowed` given, every template matching the path adds its methods to it.
    The converters are inlined: this runs per segment of every request.
    """
    if i == len(segs):
        return _pick(node.entries, method, allowed)
    seg = segs[i]
    child = node.static.get(seg)
    if child is not None:
        hit = _walk(child, segs, i + 1, values, method, allowed)
        if hit is not None:
            return hit
    value: Any
    for rank, child in node.params:
        if rank == _INT:
            # to_int inlined, to save a call per segment on the hot path.
            if not (seg.isdigit() and seg.isascii()):
                continue
            if len(seg) > INT_DIGITS:
                value = to_int(seg)  # leading zeros, or out of range
                if value is None:
                    continue
            else:
                value = int(seg)
                if value > INT_MAX:
                    continue
        elif rank == _STR:
            value = seg or None
        else:
            value = to_uuid(seg)
        if value is not None:
            values.append(value)
            hit = _walk(child, segs, i + 1, values, method, allowed)
            if hit is not None:
                return hit
            values.pop()
    if node.rest is not None:
        rest = "/".join(segs[i:])
        if rest:
            values.append(rest)
            hit = _pick(node.rest.entries, method, allowed)
            if hit is not None:
                return hit
            values.pop()
    return None


def _parse_methods(template: str, methods: str | Sequence[str]) -> list[str]:
    if isinstance(methods, str):
        methods = (methods,)
    result: list[str] = []
    for method in methods:
        upper = method.upper() if isinstance(method, str) else None
        if upper not in METHODS:
            raise ConfigurationError(f"route {template!r}: unknown method {method!r}")
        if upper not in result:
            result.append(upper)
    if not result:
        raise ConfigurationError(f"route {template!r}: no methods given")
    return result


class SimpleRouter:
    """Maps (method, path) to a view, and route names back to URLs.

    See the module docstring for the template syntax and the precedence between
    templates that match the same URL.
    """

    def __init__(self) -> None:
        # Parameter-free templates by normalised path: the O(1) fast path. Their
        # entries are also in the trie, which the slow path and 405 rely on.
        self._static: dict[str, _Entry] = {}
        self._root = _Node()
        self._entries: list[_Entry] = []
        self._names: dict[str, _Entry] = {}
        #: The viewsets `register_viewset` registered, with their list and detail topics
        #: (an `App` observes the models of those that ask for it).
        self.viewsets: list[tuple[Any, str, str]] = []

    @property
    def routes(self) -> tuple[Route, ...]:
        """Every registered template, in registration order."""
        return tuple(entry.route for entry in self._entries)

    def register(
        self,
        path: str,
        view: object,
        methods: str | Sequence[str],
        name: str | None = None,
    ) -> None:
        """Route `methods` on the template `path` to `view`.

        Registering a template again (trailing slash or not) with other methods
        adds them to it, possibly with another view.

        Args:
            path: the template, e.g. ``"/user/{id:int}"``.
            view: what handles the request; the router only hands it back.
            methods: one method or several, case-insensitive.
            name: a name for `reverse`, unique in this router.

        Raises:
            ConfigurationError: if the template, a method or the name is
                malformed; if a method is already routed for a template that
                matches exactly the same URLs; if the name is taken by another
                template, or the template already has another name.
        """
        parts = parse_template(path)
        wanted = _parse_methods(path, methods)
        if view is None:
            raise ConfigurationError(f"route {path!r}: view must not be None")
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigurationError(f"route {path!r}: name must be a non-empty string")
        names = tuple(part.text for part in parts if part.kind != "static")
        node = self._node(parts, create=False)
        same = self._check_conflicts(path, node, names, wanted, name)
        if same is None:
            self._add(path, parts, names, view, wanted, name)
            return
        views = {**same.route.views, **dict.fromkeys(wanted, view)}
        same.set_views(views, name or same.route.name)
        if name is not None:
            self._names[name] = same

    def _check_conflicts(
        self,
        path: str,
        node: _Node | None,
        names: tuple[str, ...],
        wanted: list[str],
        name: str | None,
    ) -> _Entry | None:
        """Return the entry with the same template, if any, after the conflict checks."""
        same = None
        for entry in node.entries if node is not None else ():
            if entry.names == names:
                same = entry
            taken = sorted(set(wanted) & entry.route.views.keys())
            if taken:
                raise ConfigurationError(
                    f"route {path!r}: {', '.join(taken)} already routed by "
                    f"{entry.route.template!r}, which matches the same URLs"
                )
        if name is not None:
            owner = self._names.get(name)
            if owner is not None and owner is not same:
                raise ConfigurationError(
                    f"route {path!r}: name {name!r} is taken by {owner.route.template!r}"
                )
            if same is not None and same.route.name not in (None, name):
                raise ConfigurationError(f"route {path!r} is already named {same.route.name!r}, not {name!r}")
        return same

    def _add(
        self,
        path: str,
        parts: tuple[Part, ...],
        names: tuple[str, ...],
        view: object,
        wanted: list[str],
        name: str | None,
    ) -> None:
        converters = {part.text: part.kind for part in parts if part.kind != "static"}
        route = Route(
            template=path,
            name=name,
            views=_NO_PARAMS,
            converters=MappingProxyType(converters),
        )
        entry = _Entry(route, parts, names, trailing_slash=path.endswith("/"))
        entry.set_views(dict.fromkeys(wanted, view), name)
        node = self._node(parts, create=True)
        assert node is not None  # create=True always returns a node
        node.entries.append(entry)
        self._entries.append(entry)
        # A literal '%' in a template would make raw and decoded request paths
        # ambiguous in the fast path; such templates are left to the trie.
        if not names and "%" not in path:
            self._static["/" + "/".join(part.text for part in parts)] = entry
        if name is not None:
            self._names[name] = entry

    def _node(self, parts: tuple[Part, ...], *, create: bool) -> _Node | None:
        node: _Node | None = self._root
        for part in parts:
            if node is None:
                return None
            node = node.child(part, create=create)
        return node

    def resolve(self, method: str, path: str) -> RouteMatch:
        """Find the view for a request.

        Args:
            method: the request method, case-insensitive.
            path: the URL path, without query string; each segment is
                percent-decoded after splitting on "/".

        Returns:
            The `RouteMatch`, with converted parameters.

        Raises:
            NotFoundError: if no template matches the path.
            MethodNotAllowedError: if templates match but none accepts the
                method; its ``allowed`` lists what they accept, sorted.
        """
        if not method.isupper():
            method = method.upper()
        if path[-1:] == "/" and len(path) > 1:
            path = path[:-1]
        entry = self._static.get(path)
        if entry is not None:
            hit = entry.hits.get(method)
            if hit is not None:
                return hit[0]
        if path[:1] != "/":
            raise NotFoundError()
        # "/" has no segments; splitting would give one empty segment.
        segs = path[1:].split("/") if len(path) > 1 else []
        if "%" in path:
            # unquote() costs ~1 us a call: skip the segments it would not change.
            segs = [unquote(seg) if "%" in seg else seg for seg in segs]
        values: list[Any] = []
        hit = _walk(self._root, segs, 0, values, method, None)
        if hit is not None:
            match, names = hit
            # One parameter is the common case, and dict(zip()) costs 3x more.
            params = {names[0]: values[0]} if len(names) == 1 else dict(zip(names, values, strict=True))
            return RouteMatch(match.route, match.view, params, match.name)
        # Error path: walk again to learn every method the matching templates accept.
        allowed: set[str] = set()
        _walk(self._root, segs, 0, [], "", allowed)
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")  # HTTP's rule, which the dispatcher follows: GET without a body
            raise MethodNotAllowedError(allowed=sorted(allowed), method=method)
        raise NotFoundError()

    def register_endpoint(self, fn: Callable[..., Any]) -> None:
        """Register a function view decorated in aiorest-ws's form, ``@endpoint(path, methods)``.

        Args:
            fn: the decorated function.

        Raises:
            ConfigurationError: the function carries no route: decorate it with
                ``@endpoint("/path", ["GET"])``, or call ``register(path, fn, methods)``.
        """
        spec = getattr(fn, "__trio_rest_endpoint__", None)
        path = getattr(spec, "path", None)
        if path is None:
            raise ConfigurationError(
                f"{getattr(fn, '__qualname__', fn)!r} carries no route: decorate it with "
                '@endpoint("/path", ["GET"]) or call router.register("/path", view, ["GET"])'
            )
        self.register(path, fn, spec.methods, name=spec.name)  # type: ignore[union-attr]

    def register_viewset(self, prefix: str, viewset: type, *, basename: str) -> None:
        """Register a `ModelViewSet`'s list and detail routes; see `trio_rest.ModelViewSet`.

        Args:
            prefix: e.g. ``"/user"``: ``/user`` lists and creates, ``/user/{id:int}``
                retrieves, updates, partially updates and destroys.
            viewset: the `ModelViewSet` subclass.
            basename: names the routes ``{basename}-list`` and ``{basename}-detail``.

        Raises:
            ConfigurationError: the viewset has no queryset, or a route conflicts.
        """
        from ._generics import register_viewset  # the generic views import the router's users

        register_viewset(self, prefix, viewset, basename=basename)

    def reverse(self, name: str, /, **params: Any) -> str:
        """Build the URL of a named route.

        Values are written with `str()` and percent-quoted; a ``path``
        parameter keeps its slashes. The result resolves back to the same
        route and values. A template registered with a trailing slash gives
        URLs with one.

        Args:
            name: the route's name.
            **params: one value per template parameter.

        Returns:
            The URL path, e.g. ``"/user/6"``.

        Raises:
            NoReverseMatchError: if no route has that name, if parameters are
                missing or unexpected, or if a value does not fit its
                converter (a negative number for ``int``, or one above
                2**63 - 1; an empty string).
        """
        entry = self._names.get(name)
        if entry is None:
            raise NoReverseMatchError(f"no route named {name!r}")
        missing = sorted(set(entry.names) - params.keys())
        extra = sorted(params.keys() - set(entry.names))
        if missing or extra:
            raise NoReverseMatchError(
                f"route {name!r} takes {list(entry.names)}; missing {missing}, unexpected {extra}"
            )
        return format_path(entry.parts, params, trailing_slash=entry.trailing_slash)

    def include(self, prefix: str, other: SimpleRouter) -> None:
        """Register every route of `other` under `prefix`, keeping names and views.

        Args:
            prefix: a template prefix such as ``"/api"`` (may hold parameters).
            other: the router to copy from; later changes to it are not seen.

        Raises:
            ConfigurationError: as `register`, for any copied route.
        """
        if not prefix.startswith("/"):
            raise ConfigurationError(f"prefix must start with '/': {prefix!r}")
        prefix = prefix.rstrip("/")
        for route in other.routes:
            template = prefix + route.template if prefix else route.template
            for method, view in route.views.items():
                self.register(template, view, method, name=route.name)
