"""The AsyncAPI 3.0 document: valid against the official schema, true to the routes and serializers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import trio
import trio_websocket
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from examples.users.app import build_app as build_users_app
from examples.users.models import User
from examples.users.serializers import UserSerializer
from tests._environment import child_env
from tests._node import need_package, run_node_tests
from trio_rest import App, ModelViewSet, SimpleRouter, asyncapi_document
from trio_rest.db import Database

from ._sockets import http_get, running
from .conftest import build_app

ROOT = Path(__file__).parents[2]
SCHEMA = ROOT / "tests" / "data" / "asyncapi" / "3.0.0-without-$id.json"
SECRET = "a-secret-long-enough-for-hs256-tokens-0123456789"


def _asyncapi_errors(document: dict[str, Any]) -> list[str]:
    """What the official AsyncAPI 3.0.0 schema finds wrong with `document` (nothing, we hope)."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)]


def _resolve(document: dict[str, Any], ref: str) -> Any:
    """Follow a local ``$ref`` (and the references it leads to) to what it names."""
    seen = set()
    while True:
        assert ref.startswith("#/") and ref not in seen, ref
        seen.add(ref)
        node: Any = document
        for key in ref[2:].split("/"):
            node = node[key.replace("~1", "/").replace("~0", "~")]
        if not (isinstance(node, dict) and set(node) == {"$ref"}):
            return node
        ref = node["$ref"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [ref for key, value in node.items() for ref in ([value] if key == "$ref" else _refs(value))]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _payload_validator(document: dict[str, Any], message: str) -> jsonschema.Draft7Validator:
    """A validator for the payload of a message of the document (its references resolved in it)."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:asyncapi", Resource.from_contents(document, default_specification=DRAFT7)
    )
    pointer = f"urn:asyncapi#/components/messages/{message}/payload"
    return jsonschema.Draft7Validator({"$ref": pointer}, registry=registry)


def _message_names(document: dict[str, Any], refs: list[dict[str, str]]) -> list[str]:
    """The component names of an operation's message references (``#/channels/socket/messages/X``)."""
    names = []
    for ref in refs:
        in_channel = _resolve(document, ref["$ref"])
        name = ref["$ref"].rpartition("/")[2]
        assert in_channel is document["components"]["messages"][name]
        names.append(name)
    return names


def _operation(document: dict[str, Any], method: str, template: str) -> dict[str, Any]:
    found = [op for op in document["operations"].values() if op.get("title") == f"{method} {template}"]
    assert len(found) == 1, (method, template)
    return found[0]


def _data_schema(document: dict[str, Any], operation: dict[str, Any], which: str) -> Any:
    """The ``data`` schema of an operation's request (``"request"``) or success reply (``"reply"``)."""
    refs = operation["messages"] if which == "request" else operation["reply"]["messages"][:1]
    name = _message_names(document, refs)[0]
    return document["components"]["messages"][name]["payload"]["properties"]["data"]


@pytest.fixture
def users_app(tmp_path: Path) -> App:
    return build_users_app(f"sqlite:///{tmp_path / 'users.db'}", secret=SECRET)


def test_the_seed_example_validates_against_the_official_schema(users_app: App) -> None:
    document = asyncapi_document(users_app)
    assert document["asyncapi"] == "3.0.0"
    assert _asyncapi_errors(document) == []


@pytest.mark.parametrize("make_app", [build_app, lambda: App(SimpleRouter())], ids=["no-auth", "no-routes"])
def test_other_apps_validate_too(make_app: Any) -> None:
    assert _asyncapi_errors(asyncapi_document(make_app())) == []


def test_the_schema_is_the_real_one_and_catches_mistakes(users_app: App) -> None:
    # The bundled file is the whole official schema (its 100-odd definitions), not a lenient stand-in.
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"] == "AsyncAPI 3.0.0 schema." and len(schema["definitions"]) > 100
    document = asyncapi_document(users_app)
    broken = {**document, "operations": {"x": {"action": "ask", "channel": {"$ref": "#/channels/socket"}}}}
    assert _asyncapi_errors(broken)


def test_every_route_and_method_is_an_operation_with_a_reply(users_app: App) -> None:
    document = asyncapi_document(users_app)
    routes = {f"{method} {route.template}" for route in users_app.router.routes for method in route.methods}
    assert len(routes) == 11
    titles = [op["title"] for op in document["operations"].values() if "title" in op]
    assert sorted(titles) == sorted(routes)
    for operation in document["operations"].values():
        assert _resolve(document, operation["channel"]["$ref"]) is document["channels"]["socket"]
        _message_names(document, operation["messages"])
        if "title" not in operation:
            continue
        assert operation["action"] == "receive"
        replies = _message_names(document, operation["reply"]["messages"])
        assert replies[1] == "error"
        assert ("notification" in replies) == operation["title"].startswith("SUBSCRIBE")
    assert {"cancel", "ping", "auth", "notify"} <= set(document["operations"])
    assert document["operations"]["notify"]["action"] == "send"
    # Every reference resolves, and every message of the channel is a component.
    for ref in _refs(document):
        _resolve(document, ref)
    assert set(document["channels"]["socket"]["messages"]) == set(document["components"]["messages"])


def test_docstrings_become_summaries_and_descriptions(users_app: App) -> None:
    document = asyncapi_document(users_app)
    assert _operation(document, "GET", "/user/list")["summary"] == "Every user, by id."
    subscribe = _operation(document, "SUBSCRIBE", "/user/{id:int}")
    assert subscribe["summary"] == "Live: this user's changes, as soon as they are committed."
    assert "notifications carrying this request's id follow" in subscribe["description"]
    assert _operation(document, "GET", "/me")["summary"].startswith("The logged-in user")


def test_the_user_serializer_gives_the_right_required_read_and_write_only_fields(users_app: App) -> None:
    document = asyncapi_document(users_app)
    schemas = document["components"]["schemas"]
    reply, request, patch = schemas["User"], schemas["UserRequest"], schemas["PatchedUserRequest"]
    # The server writes every readable field: the password never, the id (read-only) always.
    assert set(reply["properties"]) == {"id", "name", "fullname", "addresses"}
    integer = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}  # an Integer column's range
    assert reply["properties"]["id"] == {**integer, "readOnly": True}
    assert reply["properties"]["name"] == {"type": "string", "maxLength": 50}
    assert reply["properties"]["addresses"] == {"type": "array", "items": {"type": "integer"}}
    assert "required" not in reply
    # A client sends the writable fields; only the name is required (fullname has a default).
    assert set(request["properties"]) == {"name", "fullname", "password", "addresses"}
    assert request["required"] == ["name"]
    assert request["properties"]["password"] == {
        "type": ["string", "null"],
        "maxLength": 512,
        "writeOnly": True,
    }
    assert "required" not in patch and set(patch["properties"]) == set(request["properties"])
    # Each route names the schema its view's serializer gives.
    ref = {"$ref": "#/components/schemas/User"}
    assert _data_schema(document, _operation(document, "GET", "/user/{id:int}"), "reply") == ref
    assert _data_schema(document, _operation(document, "GET", "/user/list"), "reply") == {
        "type": "array",
        "items": ref,
    }
    post = _operation(document, "POST", "/user/")
    assert _data_schema(document, post, "request") == {"$ref": "#/components/schemas/UserRequest"}
    put = _operation(document, "PUT", "/user/{id:int}")  # the example's PUT is a partial update
    assert _data_schema(document, put, "request") == {"$ref": "#/components/schemas/PatchedUserRequest"}
    # Views that declare nothing get the empty schema, which accepts anything.
    assert _data_schema(document, _operation(document, "POST", "/login"), "request") == {}
    assert _data_schema(document, _operation(document, "GET", "/me"), "reply") == {}


def test_an_endpoint_body_type_is_its_request_schema() -> None:
    document = asyncapi_document(build_app())
    assert _data_schema(document, _operation(document, "POST", "/item/"), "request") == {
        "type": "object",
        "title": "NewItem",
        "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
        "required": ["name"],
        "additionalProperties": False,  # the App's converter forbids extra keys
    }


def test_auth_schemes_only_when_the_app_has_auth(users_app: App) -> None:
    document = asyncapi_document(users_app)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer" and schemes["bearer"]["bearerFormat"] == "JWT"
    assert (schemes["token"]["type"], schemes["token"]["in"], schemes["token"]["name"]) == (
        "httpApiKey",
        "query",
        "token",
    )
    assert [_resolve(document, r["$ref"]) for r in document["servers"]["server"]["security"]] == [
        schemes["bearer"],
        schemes["token"],
    ]
    assert document["servers"]["server"]["x-trio-rest-require-auth"] is False
    strict = asyncapi_document(App(users_app.router, auth=users_app.auth, require_auth=True))
    assert strict["servers"]["server"]["x-trio-rest-require-auth"] is True and _asyncapi_errors(strict) == []
    binding = document["channels"]["socket"]["bindings"]["ws"]
    assert "token" in binding["query"]["properties"] and "Authorization" in binding["headers"]["properties"]
    assert "token" in document["components"]["schemas"]["Args"]["properties"]

    plain = asyncapi_document(build_app())
    assert "securitySchemes" not in plain["components"] and "security" not in plain["servers"]["server"]
    assert "x-trio-rest-require-auth" not in plain["servers"]["server"]
    assert "auth" not in plain["operations"] and "query" not in plain["channels"]["socket"]["bindings"]["ws"]
    assert "token" not in plain["components"]["schemas"]["Args"]["properties"]


def test_an_app_without_routes_has_only_the_protocol_operations() -> None:
    document = asyncapi_document(App(SimpleRouter()))
    assert set(document["operations"]) == {"cancel", "ping", "notify"}
    assert document["components"]["schemas"].keys() == {"RequestId", "Args", "ErrorResponse", "Notification"}


def test_envelopes_follow_the_routes_templates(users_app: App) -> None:
    document = asyncapi_document(users_app)
    names = {
        op["title"]: _message_names(document, op["messages"])[0]
        for op in document["operations"].values()
        if "title" in op
    }

    def valid(title: str, envelope: dict[str, Any]) -> bool:
        return _payload_validator(document, names[title]).is_valid(envelope)

    assert valid("GET /user/{id:int}", {"method": "get", "url": "/user/6/?expand=addresses", "id": 1})
    assert not valid("GET /user/{id:int}", {"method": "GET", "url": "/user/list"})
    assert not valid("GET /user/{id:int}", {"method": "POST", "url": "/user/6"})
    assert valid("GET /user/list", {"method": "GET", "url": "/user/list"})
    assert not valid("SUBSCRIBE /user/list", {"method": "SUBSCRIBE", "url": "/user/list"})  # needs an id
    assert valid("SUBSCRIBE /user/list", {"method": "SUBSCRIBE", "url": "/user/list", "id": "s1"})
    assert not valid("POST /user/", {"method": "POST", "url": "/user/", "data": {"fullname": "No Name"}})
    assert not valid("POST /user/", {"method": "POST", "url": "/user/", "data": {"name": "a" * 51}})
    assert valid("PUT /user/{id:int}", {"method": "PUT", "url": "/user/6", "data": {"fullname": "Only this"}})


async def test_the_example_client_requests_and_real_replies_fit_the_document(users_app: App) -> None:
    document = asyncapi_document(users_app)
    operations = {op["title"]: op for op in document["operations"].values() if "title" in op}

    def check(title: str, request: dict[str, Any], reply: dict[str, Any]) -> None:
        operation = operations[title]
        (name,) = _message_names(document, operation["messages"])
        assert _payload_validator(document, name).is_valid(request), (title, request)
        replies = _message_names(document, operation["reply"]["messages"])
        fits = [r for r in replies if _payload_validator(document, r).is_valid(reply)]
        assert len(fits) == 1, (title, reply, fits)  # one and only one, as AsyncAPI requires

    with trio.fail_after(20):
        async with (
            running(users_app) as server,
            trio_websocket.open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws,
        ):

            async def send(title: str, request: dict[str, Any]) -> dict[str, Any]:
                await ws.send_message(orjson.dumps(request).decode())
                reply: dict[str, Any] = orjson.loads(await ws.get_message())
                check(title, request, reply)
                return reply

            address = await send(
                "POST /address/",
                {"method": "POST", "url": "/address/", "data": {"email_address": "a@example.com"}, "id": 1},
            )
            assert address["status"] == 201
            new_user = {"name": "Ada", "password": "pw", "addresses": [{"id": address["data"]["id"]}]}
            user = await send("POST /user/", {"method": "POST", "url": "/user/", "data": new_user, "id": 2})
            assert user["status"] == 201
            url = f"/user/{user['data']['id']}"
            await send("GET /user/{id:int}", {"method": "GET", "url": url, "id": 3})
            await send(
                "GET /user/list", {"method": "GET", "url": "/user/list", "event_name": "list", "id": 4}
            )
            changed = {"method": "PUT", "url": url, "data": {"fullname": "Ada L."}, "id": 5}
            assert (await send("PUT /user/{id:int}", changed))["data"]["fullname"] == "Ada L."
            missing = await send("GET /user/{id:int}", {"method": "GET", "url": "/user/999", "id": 6})
            assert missing["status"] == 404


@pytest.mark.parametrize(
    ("host", "served_as"), [("api.example.test:9000", "api.example.test:9000"), ("a b", "{host}")]
)
async def test_get_asyncapi_json_over_a_real_socket(users_app: App, host: str, served_as: str) -> None:
    with trio.fail_after(10):
        async with running(users_app) as server:
            head, body = await http_get(server.port, "/asyncapi.json", host=host)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nContent-Type: application/json\r\n" in head
    document = orjson.loads(body)
    assert document["servers"]["server"]["host"] == served_as  # a Host header unfit to echo is not
    expected = asyncapi_document(users_app)
    assert {**document, "servers": None} == {**expected, "servers": None}
    assert _asyncapi_errors(document) == []


def test_viewset_routes_get_their_actions_schemas_and_docstrings(tmp_path: Path) -> None:
    class UserViewSet(ModelViewSet):
        """Users, the generic way."""

        queryset = User
        serializer_class = UserSerializer
        observe = True

    router = SimpleRouter()
    router.register_viewset("/user", UserViewSet, basename="user")
    document = asyncapi_document(App(router, database=Database(f"sqlite:///{tmp_path / 'v.db'}")))
    assert _asyncapi_errors(document) == []
    ref = {"$ref": "#/components/schemas/User"}

    def data(method: str, template: str, which: str) -> Any:
        return _data_schema(document, _operation(document, method, template), which)

    page = data("GET", "/user", "reply")
    assert page["required"] == ["results"]
    assert page["properties"]["results"] == {"type": "array", "items": ref}
    assert page["properties"]["count"] == {"type": "integer", "minimum": 0}
    assert page["properties"]["next"] == page["properties"]["previous"] == {"type": ["string", "null"]}
    assert data("POST", "/user", "request") == {"$ref": "#/components/schemas/UserRequest"}
    assert data("PUT", "/user/{id:int}", "request") == {"$ref": "#/components/schemas/UserRequest"}
    assert data("PATCH", "/user/{id:int}", "request") == {"$ref": "#/components/schemas/PatchedUserRequest"}
    assert data("DELETE", "/user/{id:int}", "reply") == {"type": "null"}
    assert data("SUBSCRIBE", "/user/{id:int}", "reply") == ref
    assert data("SUBSCRIBE", "/user", "reply") == {}
    assert (
        _operation(document, "GET", "/user")["summary"] == "GET on the list route: a page of serialized rows."
    )


def _asyncapi_cli(target: str) -> subprocess.CompletedProcess[str]:
    """``python -m trio_rest asyncapi TARGET`` from the repository, with a JWT secret set."""
    env = child_env({"TRIO_REST_JWT_SECRET": SECRET})  # the environment's settings count, as for `run`
    return subprocess.run(
        [sys.executable, "-m", "trio_rest", "asyncapi", target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_prints_the_document(users_app: App) -> None:
    done = _asyncapi_cli("tests.trio_rest.conftest:build_app")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('{\n  "asyncapi": "3.0.0"')  # indented
    document = json.loads(done.stdout)
    assert _asyncapi_errors(document) == []
    assert set(document["operations"]) == set(asyncapi_document(build_app())["operations"]) | {"auth"}
    assert "securitySchemes" in document["components"]

    refused = _asyncapi_cli("no.such.module:app")
    assert refused.returncode != 0 and "cannot import" in refused.stderr and refused.stdout == ""


def test_the_seed_document_is_valid_for_the_asyncapi_parser_in_node() -> None:
    """tests/js/asyncapi.test.mjs: @asyncapi/parser validates the seed example's document."""
    need_package("@asyncapi/parser")
    counts = run_node_tests("asyncapi.test.mjs")
    assert counts["pass"] == counts["tests"] == 2, counts
