"""The AsyncAPI 3.0 document of an App: its routes as request/reply operations over one WebSocket.

`asyncapi_document` describes what a client sends and what it receives, from three sources
only: the router (every route, every method), the views' docstrings (each operation's
summary and description), and what views declare about their data (`_jsonschema`): a
``serializer_class`` (a `ModelViewSet`'s, or a `MethodBasedView`'s), an
``@endpoint(body=...)`` type. Where nothing is declared, ``data`` gets the empty schema,
which accepts anything: the document never guesses.

How the wire protocol (docs/protocol.md, section 2) maps onto AsyncAPI:

- One channel, ``socket``: the WebSocket (any path; its handshake is in the channel's
  ``ws`` binding). Every message travels on it.
- One operation per route and method, e.g. ``get_user_id`` for ``GET /user/{id:int}``: the
  server *receives* the request envelope, and the operation's ``reply`` is the response
  envelope, success or error, on the same channel. The envelope's ``id`` is the correlation
  id of both.
- A SUBSCRIBE operation's reply also lists the notification: after a success, notifications
  carrying the request's ``id`` follow, until a ``final`` one or the client's ``cancel``.
- The protocol's own operations: ``cancel``, ``ping`` (its reply is ``pong``), ``auth`` (when
  the App has authentication), and ``notify``: what the server *sends* unasked (notifications
  of timers, topics and broadcasts, without an ``id``).
- With authentication, the handshake's credentials are the server's security schemes: an
  ``Authorization: Bearer`` header, or the ``token`` query parameter; the in-band ``auth``
  message and ``args.token`` are described where they are sent.

Which serializer schema a route's data gets (see `_jsonschema` for the three kinds):

- `ModelViewSet`: list (an array, or a page whose ``results`` is one), create, retrieve,
  update (in full) and partial update, as its actions do; DELETE replies null.
- `MethodBasedView` with a ``serializer_class``: POST sends the full request schema, PUT and
  PATCH the partial one (the view decides whether its update is partial: the seed example's
  PUT is); GET, POST, PUT and PATCH reply with the object, or with a list of them for a GET
  on a route whose last segment is not a parameter (Django REST framework's rule). Other
  methods, and every SUBSCRIBE reply and notification, stay open.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from trio_rest_protocol import reason_phrase

from ._jsonschema import Kind, Schemas, type_schema
from ._templates import parse_template

if TYPE_CHECKING:
    from ._app import App
    from ._routing import Route

__all__ = ["asyncapi_document"]

_CHANNEL: Final = "#/channels/socket"
_SCHEMAS: Final = "#/components/schemas/"
# A converter's segment, as a client writes it (an ECMA 262 regex, as JSON Schema wants).
_HEX: Final = "[0-9A-Fa-f]"
_SEGMENTS: Final = {
    "int": "[0-9]+",
    "uuid": "-".join(f"{_HEX}{{{n}}}" for n in (8, 4, 4, 4, 12)),
    "str": "[^/?#]+",
    "path": "[^?#]+",
}


def asyncapi_document(
    app: App,
    *,
    host: str | None = None,
    secure: bool = False,
    title: str = "trio-rest API",
    version: str = "1.0.0",
) -> dict[str, Any]:
    """Describe an App's WebSocket API as an AsyncAPI 3.0 document.

    The server serves it as ``GET /asyncapi.json``, and ``python -m trio_rest asyncapi
    MODULE:ATTR`` prints it. See the module docstring for what it says and how.

    Args:
        app: the App to describe.
        host: the server's ``host:port`` as clients reach it; None: a ``{host}`` variable
            whose default is the command line's default address.
        secure: the server speaks TLS (``wss``).
        title: the document's ``info.title``.
        version: the document's ``info.version``, the API's version.

    Returns:
        The document, JSON-ready (``orjson.dumps`` writes it as is).

    Raises:
        ConfigurationError: a view's serializer has inconsistent fields (its first use).
    """
    builder = _Builder(app)
    used: set[str] = set()
    for route in app.router.routes:
        for method in route.methods:
            builder.add_route(_operation_id(method, route.template, used), route, method)
    builder.add_protocol_operations()
    server: dict[str, Any] = {
        "host": host or "{host}",
        "protocol": "wss" if secure else "ws",
        "pathname": "/",
        "description": "The WebSocket, and plain HTTP on the same port (GET /health, GET /asyncapi.json).",
    }
    if host is None:
        server["variables"] = {"host": {"default": "127.0.0.1:8080", "description": "host:port"}}
    if app.auth is not None:
        # Either scheme will do; a client that can set neither sends an auth message first.
        server["security"] = [
            {"$ref": f"#/components/securitySchemes/{name}"} for name in ("bearer", "token")
        ]
        # Machine-readable for tools (the explorer asks for a token before connecting):
        # AsyncAPI's security says how credentials travel, not that every request needs them.
        server["x-trio-rest-require-auth"] = app.require_auth
        server["description"] += (
            " Credentials: in the handshake (a Bearer header or ?token=), an auth message, or args.token;"
            + (
                " required before any request."
                if app.require_auth
                else " needed where a view's permissions say so."
            )
        )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Requests and replies over one WebSocket, one JSON envelope per message "
                "(MessagePack with the trio-rest.msgpack subprotocol)."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {"server": server},
        "channels": {"socket": builder.channel()},
        "operations": builder.operations,
        "components": builder.components(),
    }


def _operation_id(method: str, template: str, used: set[str]) -> str:
    """``get_user_id`` for ``GET /user/{id:int}``: a key AsyncAPI accepts, unique in `used`."""
    words = [part.text for part in parse_template(template)] or ["root"]
    stem = "_".join([method.lower(), *(re.sub(r"\W+", "_", word).strip("_") or "_" for word in words)])
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}_{n}"
    used.add(name)
    return name


def _url_schema(route: Route) -> dict[str, Any]:
    """The request's ``url`` for a route: its template as a pattern, with a query string or not."""
    segments = [
        _SEGMENTS[part.kind]
        if part.kind != "static"
        else re.sub(r"([\\.^$*+?()\[\]{}|])", r"\\\1", part.text)
        for part in parse_template(route.template)
    ]
    # "/user/list" and "/user/list/" are one route (docs/protocol.md, section 2: url).
    path = "".join(f"/{segment}" for segment in segments) + "/?" if segments else "/"
    converters = ", ".join(f"{name} ({kind})" for name, kind in route.converters.items())
    description = f"{route.template}; a query string is merged into args"
    return {
        "type": "string",
        "pattern": f"^{path}(\\?.*)?$",
        "description": f"{description}; parameters: {converters}" if converters else description,
    }


def _docs(view: object, method: str) -> tuple[str | None, str | None]:
    """The summary (first paragraph) and description (all of it) of a view's docstring."""
    target: Any = view
    spec = getattr(view, "__trio_rest_viewset__", None)
    if spec is not None:  # a ModelViewSet action: (viewset, action name)
        target = getattr(spec[0], spec[1], None)
        owner_doc = spec[0].__doc__
    elif isinstance(view, type):
        target = getattr(view, method.lower(), None)
        owner_doc = view.__doc__
    else:
        owner_doc = None
    doc = inspect.getdoc(target) if target is not None else None
    if not doc and owner_doc:
        doc = inspect.cleandoc(owner_doc)
    if not doc:
        return None, None
    first = " ".join(doc.split("\n\n")[0].split())
    return first, (doc if doc != first else None)


class _Builder:
    """Collects the operations, messages and schemas of one document."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.schemas = Schemas()
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        # An attrs body refuses undeclared keys when the App's converter does (the default).
        self.forbid_extra_keys = bool(getattr(app.converter, "forbid_extra_keys", False))

    # -- the routes ------------------------------------------------------------------

    def add_route(self, name: str, route: Route, method: str) -> None:
        """Add the operation of one route and method, with its request and reply messages."""
        view = route.views[method]
        request_data, reply_data = self._data(view, method, route)
        summary, description = _docs(view, method)
        self.messages[f"{name}.request"] = _message(
            f"{method} {route.template}", self._request(method, route, request_data), correlated=True
        )
        self.messages[f"{name}.reply"] = _message(
            f"{method} {route.template}: success", _success(reply_data), correlated=True
        )
        replies = [f"{name}.reply", "error"]
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": {"$ref": _CHANNEL},
            "title": f"{method} {route.template}",
        }
        if summary:
            operation["summary"] = summary
        if description:
            operation["description"] = description
        if method == "SUBSCRIBE":
            replies.append("notification")
            note = (
                "After a success, notifications carrying this request's id follow, until one "
                "with final: true or the client's cancel with this id."
            )
            doc = description or summary
            operation["description"] = f"{doc}\n\n{note}" if doc else note
        operation["messages"] = [_in_channel(f"{name}.request")]
        operation["reply"] = {"channel": {"$ref": _CHANNEL}, "messages": [_in_channel(m) for m in replies]}
        self.operations[name] = operation

    def _data(self, view: object, method: str, route: Route) -> tuple[dict[str, Any], dict[str, Any]]:
        """The schemas of a route's request data and success reply data (``{}``: undeclared)."""
        spec = getattr(view, "__trio_rest_viewset__", None)
        if spec is not None:
            return self._viewset_data(spec[0], spec[1])
        if isinstance(view, type):
            serializer = getattr(view, "serializer_class", None)
            if serializer is None or method in ("DELETE", "HEAD", "OPTIONS", "SUBSCRIBE"):
                return {}, {}
            request: dict[str, Any] = {}
            if method in ("POST", "PUT", "PATCH"):
                request = self.schemas.serializer(serializer, "request" if method == "POST" else "patch")
            reply = self.schemas.serializer(serializer, "reply")
            last = parse_template(route.template)[-1:]
            if method == "GET" and not (last and last[0].kind != "static"):
                reply = {"type": "array", "items": reply}  # Django REST framework's rule: a list
            return request, reply
        body = getattr(getattr(view, "__trio_rest_endpoint__", None), "body", None)
        if body is None:
            return {}, {}
        return type_schema(body, forbid_extra_keys=self.forbid_extra_keys), {}

    def _viewset_data(self, viewset: Any, action: str) -> tuple[dict[str, Any], dict[str, Any]]:
        serializer = viewset.serializer_class
        if serializer is None:
            return {}, {}
        kinds: dict[str, tuple[Kind | None, bool]] = {  # action -> (request kind, replies with one)
            "create": ("request", True),
            "retrieve": (None, True),
            "update": ("request", True),
            "partial_update": ("patch", True),
            "subscribe_detail": (None, True),
        }
        if action == "destroy":
            return {}, {"type": "null"}
        if action == "list":
            items = {"type": "array", "items": self.schemas.serializer(serializer, "reply")}
            pagination = viewset.pagination
            if pagination is None:
                return {}, items
            from ._pagination import CursorPagination, LimitOffsetPagination  # loaded with the viewset

            # The page's count and links, as the built-in paginations write them; another's are open.
            properties: dict[str, Any] = {"results": items}
            link = {"type": ["string", "null"]}
            if isinstance(pagination, LimitOffsetPagination):
                properties.update(count={"type": "integer", "minimum": 0}, next=link, previous=dict(link))
            elif isinstance(pagination, CursorPagination):
                properties["next"] = link
            return {}, {"type": "object", "required": ["results"], "properties": properties}
        kind, one = kinds.get(action, (None, False))
        request = self.schemas.serializer(serializer, kind) if kind is not None else {}
        return request, (self.schemas.serializer(serializer, "reply") if one else {})

    def _request(self, method: str, route: Route, data: dict[str, Any]) -> dict[str, Any]:
        required = ["method", "url", "id"] if method == "SUBSCRIBE" else ["method", "url"]
        return {
            "type": "object",
            "required": required,
            "properties": {
                "type": {"const": "request"},
                # Methods are case-insensitive (docs/protocol.md, section 2).
                "method": {
                    "type": "string",
                    "pattern": "^" + "".join(f"[{c}{c.lower()}]" for c in method) + "$",
                    "examples": [method],
                },
                "url": _url_schema(route),
                "args": {"$ref": f"{_SCHEMAS}Args"},
                "data": data,
                "event_name": {"type": "string", "description": "Echoed on every reply to this request."},
                "id": _id(),
                "timeout": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": "Seconds; past them, 504.",
                },
                "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
            },
        }

    # -- the protocol's own messages ---------------------------------------------------------

    def add_protocol_operations(self) -> None:
        """``cancel``, ``ping``, ``auth`` (with authentication) and ``notify``, and the shared messages."""
        self.messages["error"] = _message(
            "An error response", {"$ref": f"{_SCHEMAS}ErrorResponse"}, correlated=True
        )
        self.messages["notification"] = _message(
            "A notification", {"$ref": f"{_SCHEMAS}Notification"}, correlated=True
        )
        self.messages["cancel"] = _message(
            "Cancel a request or end a subscription",
            _envelope("cancel", {"id": _id()}, required=["id"]),
            correlated=True,
        )
        self.messages["ping"] = _message("A ping", _envelope("ping", {"id": _id()}), correlated=True)
        pong = _envelope("pong", {"id": {"anyOf": [_id(), {"type": "null"}]}}, required=["id"])
        self.messages["pong"] = _message("The pong", pong, correlated=True)
        self._protocol_operation(
            "cancel", "receive", "cancel", "The request is answered 499; a subscription ends.", []
        )
        self._protocol_operation("ping", "receive", "ping", "Answered with a pong echoing the id.", ["pong"])
        if self.app.auth is not None:
            self.messages["auth"] = _message(
                "In-band credentials (browsers cannot set headers)",
                _envelope("auth", {"token": {"type": "string"}, "id": _id()}, required=["token"]),
                correlated=True,
            )
            self.messages["auth.reply"] = _message(
                "Credentials accepted", _success({"type": "null"}), correlated=True
            )
            self._protocol_operation(
                "auth",
                "receive",
                "auth",
                "Authenticate the connection, or renew its credentials; refused with 401.",
                ["auth.reply", "error"],
            )
        self.operations["notify"] = {
            "action": "send",
            "channel": {"$ref": _CHANNEL},
            "summary": "Notifications not tied to a subscription: timers, topics joined, broadcasts.",
            "messages": [_in_channel("notification")],
        }

    def _protocol_operation(
        self, name: str, action: str, message: str, summary: str, replies: list[str]
    ) -> None:
        operation: dict[str, Any] = {
            "action": action,
            "channel": {"$ref": _CHANNEL},
            "summary": summary,
            "messages": [_in_channel(message)],
        }
        if replies:
            operation["reply"] = {
                "channel": {"$ref": _CHANNEL},
                "messages": [_in_channel(m) for m in replies],
            }
        self.operations[name] = operation

    def channel(self) -> dict[str, Any]:
        """The one channel: the WebSocket, its messages, and its handshake as a ``ws`` binding."""
        headers: dict[str, Any] = {
            "Sec-WebSocket-Protocol": {
                "type": "string",
                "description": "trio-rest.json (the default), or trio-rest.msgpack for MessagePack.",
            }
        }
        binding: dict[str, Any] = {"method": "GET", "bindingVersion": "0.1.0"}
        if self.app.auth is not None:
            headers["Authorization"] = {
                "type": "string",
                "pattern": "^[Bb]earer .+",
                "description": "Bearer <token>",
            }
            binding["query"] = {
                "type": "object",
                "properties": {
                    "token": {"type": "string", "description": "The token, where headers cannot be set."}
                },
            }
        binding["headers"] = {"type": "object", "properties": headers}
        return {
            "address": "/",
            "title": "The WebSocket",
            "description": "One envelope per message: the requests, their replies and the notifications.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in self.messages},
            "bindings": {"ws": binding},
        }

    def components(self) -> dict[str, Any]:
        """``components``: the messages, the envelopes' schemas, the correlation id and the security."""
        components: dict[str, Any] = {
            "messages": self.messages,
            "schemas": {**_envelope_schemas(self.app.auth is not None), **self.schemas.components},
            "correlationIds": {
                "id": {
                    "location": "$message.payload#/id",
                    "description": "The request's id, echoed on its replies and notifications.",
                }
            },
        }
        auth = self.app.auth
        if auth is not None:
            from .auth._jwt import JWTAuth

            # Credentials are optional in the handshake: without them, a client may send an
            # auth message first (required then, with require_auth) or args.token per request.
            bearer: dict[str, Any] = {
                "type": "http",
                "scheme": "bearer",
                "description": "Authorization: Bearer <token>, in the handshake.",
            }
            if isinstance(auth, JWTAuth):
                bearer["bearerFormat"] = "JWT"
            token = {"type": "httpApiKey", "name": "token", "in": "query"}
            token["description"] = "?token=<token> in the WebSocket's URL."
            components["securitySchemes"] = {"bearer": bearer, "token": token}
        return components


def _id() -> dict[str, str]:
    """A reference to the request id's schema (a new dict each time: callers may change the document)."""
    return {"$ref": f"{_SCHEMAS}RequestId"}


def _in_channel(message: str) -> dict[str, str]:
    return {"$ref": f"{_CHANNEL}/messages/{message}"}


def _message(title: str, payload: dict[str, Any], *, correlated: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {"title": title, "payload": payload}
    if correlated:
        message["correlationId"] = {"$ref": "#/components/correlationIds/id"}
    return message


def _envelope(kind: str, properties: Mapping[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", *(required or [])],
        "properties": {"type": {"const": kind}, **properties},
    }


def _success(data: dict[str, Any]) -> dict[str, Any]:
    """A success response whose ``data`` is `data` (docs/protocol.md, section 2: Responses)."""
    return _envelope(
        "response",
        {
            "id": {"anyOf": [_id(), {"type": "null"}]},
            "event_name": {"type": ["string", "null"]},
            "status": {"type": "integer", "minimum": 100, "maximum": 399},
            "data": data,
        },
        required=["id", "event_name", "status", "data"],
    )


def _envelope_schemas(auth: bool) -> dict[str, Any]:
    """The schemas every document shares: ids, args, the error response, the notification."""
    args: dict[str, Any] = {
        "format": {"enum": ["json", "xml"], "description": "How the reply is rendered (json by default)."},
        "since": {
            "type": "object",
            "description": 'SUBSCRIBE: {topic: {"epoch": E, "offset": N}}, to recover what was missed.',
        },
    }
    if auth:
        args["token"] = {"type": "string", "description": "A credential for this request only."}
    statuses = ", ".join(
        f"{status} {reason_phrase(status)}"
        for status in (400, 401, 403, 404, 405, 409, 413, 429, 499, 500, 503, 504)
    )
    return {
        "RequestId": {
            "description": "A string, or a 64-bit integer; echoed on the replies.",
            "anyOf": [{"type": "string"}, {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1}],
        },
        "Args": {"type": "object", "description": "Query-like parameters.", "properties": args},
        "ErrorResponse": _envelope(
            "response",
            {
                "id": {"anyOf": [_id(), {"type": "null"}], "description": "null when it could not be read."},
                "event_name": {"type": ["string", "null"]},
                "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": statuses},
                "code": {"type": "string", "examples": ["invalid", "not_found", "parse_error"]},
                "detail": {"type": ["string", "object"]},
                "errors": {"description": "Per field, when there are details."},
                "data": {},
            },
            required=["id", "event_name", "status", "code", "detail"],
        ),
        "Notification": _envelope(
            "notification",
            {
                "id": {
                    "allOf": [_id()],
                    "description": "The subscription's request id; absent when unasked.",
                },
                "event_name": {"type": ["string", "null"]},
                "topic": {"type": "string"},
                "seq": {"type": "integer", "minimum": 0, "description": "Per subscription, without gaps."},
                "offset": {"type": "integer", "description": "Its position in the topic's history."},
                "epoch": {"type": "string", "description": "The history's epoch (with offset)."},
                "final": {"const": True, "description": "The last notification of its subscription."},
                "data": {},
            },
            required=["event_name", "data"],
        ),
    }
