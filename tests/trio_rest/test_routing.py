from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trio_rest_protocol import METHODS

import trio_rest._routing
from trio_rest._errors import (
    ConfigurationError,
    MethodNotAllowedError,
    NoReverseMatchError,
    NotFoundError,
)
from trio_rest._routing import Route, RouteMatch, SimpleRouter

U = uuid.UUID("12345678-9abc-def0-1234-56789abcdef0")
INT64_MAX = 2**63 - 1


class UserView:
    pass


class UserListView:
    pass


class OtherView:
    pass


def seed_router() -> SimpleRouter:
    """The aiorest-ws seed app's routes."""
    router = SimpleRouter()
    router.register("/user/", UserView, ["POST"], name="user-create")
    router.register("/user/list", UserListView, ["GET"], name="user-list")
    router.register("/user/{id:int}", UserView, ["GET", "PUT", "PATCH", "DELETE"], name="user-detail")
    return router


def resolve(router: SimpleRouter, method: str, path: str) -> tuple[object, dict[str, Any]]:
    match = router.resolve(method, path)
    return match.view, dict(match.params)


# --- resolving ---------------------------------------------------------------------------------


def test_seed_routes() -> None:
    router = seed_router()
    assert resolve(router, "POST", "/user/") == (UserView, {})
    assert resolve(router, "POST", "/user") == (UserView, {})
    assert resolve(router, "GET", "/user/list") == (UserListView, {})
    assert resolve(router, "GET", "/user/6") == (UserView, {"id": 6})


def test_match_fields() -> None:
    router = seed_router()
    match = router.resolve("GET", "/user/6")
    assert isinstance(match, RouteMatch)
    assert match.name == "user-detail"
    assert match.route.template == "/user/{id:int}"
    assert match.route.name == "user-detail"
    assert match.view is UserView
    assert match.params == {"id": 6}


@pytest.mark.parametrize("method", ["get", "Get", "GET"])
def test_method_is_case_insensitive(method: str) -> None:
    assert resolve(seed_router(), method, "/user/list") == (UserListView, {})
    assert resolve(seed_router(), method, "/user/1") == (UserView, {"id": 1})


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/user/list", "/user/list"),
        ("/user/list", "/user/list/"),
        ("/user/list/", "/user/list"),
        ("/user/list/", "/user/list/"),
        ("/user/{id:int}", "/user/5/"),
        ("/user/{id:int}/", "/user/5"),
        ("/user/{id:int}/", "/user/5/"),
    ],
)
def test_trailing_slash_both_ways(template: str, path: str) -> None:
    router = SimpleRouter()
    router.register(template, UserView, "GET")
    assert router.resolve("GET", path).view is UserView


def test_only_one_trailing_slash_is_ignored() -> None:
    router = seed_router()
    with pytest.raises(NotFoundError):
        router.resolve("GET", "/user/list//")
    with pytest.raises(NotFoundError):
        router.resolve("GET", "/user//list")


def test_root() -> None:
    router = SimpleRouter()
    router.register("/", UserView, ["GET"], name="root")
    assert resolve(router, "GET", "/") == (UserView, {})
    with pytest.raises(MethodNotAllowedError) as info:
        router.resolve("POST", "/")
    assert info.value.allowed == ("GET", "HEAD")
    assert router.reverse("root") == "/"
    with pytest.raises(NotFoundError):
        router.resolve("GET", "/x")


@pytest.mark.parametrize("path", ["", "user/list", "//", "/nope", "/user/list/extra", "/user/6/x"])
def test_not_found(path: str) -> None:
    router = seed_router()
    with pytest.raises(NotFoundError) as info:
        router.resolve("GET", path)
    assert info.value.status == 404


def test_root_unregistered_is_404() -> None:
    with pytest.raises(NotFoundError):
        SimpleRouter().resolve("GET", "/")


def test_method_not_allowed_lists_allowed_methods() -> None:
    router = seed_router()
    with pytest.raises(MethodNotAllowedError) as info:
        router.resolve("POST", "/user/6")
    assert info.value.allowed == ("DELETE", "GET", "HEAD", "PATCH", "PUT")
    assert info.value.method == "POST"
    assert info.value.status == 405
    with pytest.raises(MethodNotAllowedError) as info:
        router.resolve("delete", "/user/list/")
    assert info.value.allowed == ("GET", "HEAD")
    assert info.value.method == "DELETE"


def test_unknown_method_is_405_on_a_known_url() -> None:
    with pytest.raises(MethodNotAllowedError):
        seed_router().resolve("BREW", "/user/list")


def test_405_collects_every_matching_template() -> None:
    router = SimpleRouter()
    router.register("/a/{x}", UserView, "GET")
    router.register("/a/{n:int}", OtherView, "PUT")
    router.register("/a/b", OtherView, "POST")
    with pytest.raises(MethodNotAllowedError) as info:
        router.resolve("DELETE", "/a/b")
    assert info.value.allowed == ("GET", "HEAD", "POST")
    with pytest.raises(MethodNotAllowedError) as info:
        router.resolve("DELETE", "/a/1")
    assert info.value.allowed == ("GET", "HEAD", "PUT")


# --- converters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/n/0", 0),
        ("/n/42", 42),
        ("/n/007", 7),
        ("/n/" + "0" * 30 + "42", 42),
        (f"/n/{INT64_MAX}", INT64_MAX),
        (f"/n/000{INT64_MAX}", INT64_MAX),
    ],
)
def test_int_converter(path: str, expected: int) -> None:
    router = SimpleRouter()
    router.register("/n/{id:int}", UserView, "GET")
    params = router.resolve("GET", path).params
    assert params == {"id": expected}
    assert type(params["id"]) is int


@pytest.mark.parametrize("segment", ["abc", "-1", "+1", "1.5", "1e3", " 1", "1_000", "²", "٣", "0x1"])
def test_int_converter_rejects(segment: str) -> None:
    router = SimpleRouter()
    router.register("/n/{id:int}", UserView, "GET")
    with pytest.raises(NotFoundError):
        router.resolve("GET", "/n/" + segment)


def test_int_converter_rejects_more_digits_than_python_parses() -> None:
    router = SimpleRouter()
    router.register("/n/{id:int}", UserView, "GET")
    with pytest.raises(NotFoundError):
        router.resolve("GET", "/n/" + "1" * 5000)


@pytest.mark.parametrize(
    "segment",
    [
        str(INT64_MAX + 1),
        "99999999999999999999",
        str(2**64),
        "9" * 30,
        f"000{INT64_MAX + 1}",
        "%39" * 20,  # percent-encoded digits are decoded first
    ],
)
def test_int_beyond_64_bits_is_404_not_a_database_error(segment: str) -> None:
    router = seed_router()
    with pytest.raises(NotFoundError) as info:
        router.resolve("GET", "/user/" + segment)
    assert info.value.status == 404
    # The other methods of the route get the same answer: no template matches.
    with pytest.raises(NotFoundError):
        router.resolve("DELETE", "/user/" + segment)


@given(st.integers(min_value=INT64_MAX + 1))
def test_int_converter_refuses_every_value_beyond_64_bits(value: int) -> None:
    with pytest.raises(NotFoundError):
        seed_router().resolve("GET", f"/user/{value}")


def test_an_out_of_range_int_falls_through_to_a_str_template() -> None:
    router = SimpleRouter()
    router.register("/a/{n:int}", "int", "GET")
    router.register("/a/{s}", "str", "GET")
    assert resolve(router, "GET", f"/a/{INT64_MAX}") == ("int", {"n": INT64_MAX})
    assert resolve(router, "GET", f"/a/{INT64_MAX + 1}") == ("str", {"s": str(INT64_MAX + 1)})


@pytest.mark.parametrize("text", [str(U), str(U).upper(), "12345678-9ABC-def0-1234-56789ABCDEF0"])
def test_uuid_converter(text: str) -> None:
    router = SimpleRouter()
    router.register("/u/{key:uuid}", UserView, "GET")
    assert router.resolve("GET", "/u/" + text).params == {"key": U}


@pytest.mark.parametrize(
    "text",
    [
        U.hex,
        "{" + str(U) + "}",
        "urn:uuid:" + str(U),
        str(U)[:-1],
        str(U) + "0",
        str(U).replace("-", "_"),
        "12345678-9abc-def0-1234-56789abcdefg",
        "1234567-89abc-def0-1234-56789abcdef0",
        "12345678-9abc-def0-12_4-56789abcdef0",
    ],
)
def test_uuid_converter_rejects(text: str) -> None:
    router = SimpleRouter()
    router.register("/u/{key:uuid}", UserView, "GET")
    with pytest.raises(NotFoundError):
        router.resolve("GET", "/u/" + text)


@pytest.mark.parametrize("template", ["/s/{name}", "/s/{name:str}"])
def test_str_converter(template: str) -> None:
    router = SimpleRouter()
    router.register(template, UserView, "GET")
    assert router.resolve("GET", "/s/bob").params == {"name": "bob"}
    assert router.resolve("GET", "/s/42").params == {"name": "42"}
    with pytest.raises(NotFoundError):
        router.resolve("GET", "/s/a/b")
    with pytest.raises(NotFoundError):
        router.resolve("GET", "/s//")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/files/a", "a"),
        ("/files/a/b/c.txt", "a/b/c.txt"),
        ("/files/a/b/", "a/b"),
        ("/files/a//b", "a//b"),
        ("/files/a%2Fb", "a/b"),
        ("/files/a%2F", "a/"),
    ],
)
def test_path_converter(path: str, expected: str) -> None:
    router = SimpleRouter()
    router.register("/files/{rest:path}", UserView, "GET")
    assert router.resolve("GET", path).params == {"rest": expected}


@pytest.mark.parametrize("path", ["/files", "/files/", "/files//"])
def test_path_converter_needs_one_character(path: str) -> None:
    router = SimpleRouter()
    router.register("/files/{rest:path}", UserView, "GET")
    with pytest.raises(NotFoundError):
        router.resolve("GET", path)


def test_several_parameters() -> None:
    router = SimpleRouter()
    router.register("/org/{org:uuid}/user/{id:int}/file/{p:path}", UserView, "GET")
    params = router.resolve("GET", f"/org/{U}/user/3/file/x/y").params
    assert params == {"org": U, "id": 3, "p": "x/y"}


def test_static_match_params_are_read_only() -> None:
    # Parameter-free matches are prebuilt and shared between requests.
    params = seed_router().resolve("GET", "/user/list").params
    assert params == {}
    with pytest.raises(TypeError):
        params["x"] = 1  # type: ignore[index]


# --- percent-decoding --------------------------------------------------------------------------


def test_percent_encoded_segments_are_decoded() -> None:
    router = SimpleRouter()
    router.register("/s/{name}", UserView, "GET")
    router.register("/café/list", OtherView, "GET")
    router.register("/user/{id:int}", UserView, "GET")
    assert router.resolve("GET", "/s/hello%20world").params == {"name": "hello world"}
    assert router.resolve("GET", "/s/caf%C3%A9").params == {"name": "café"}
    assert router.resolve("GET", "/caf%C3%A9/list").view is OtherView
    assert router.resolve("GET", "/café/list").view is OtherView
    assert router.resolve("GET", "/user/4%32").params == {"id": 42}
    # Decoding happens after splitting: %2F is part of the segment, not a separator.
    assert router.resolve("GET", "/s/a%2Fb").params == {"name": "a/b"}
    # A plus sign is not a space in a path.
    assert router.resolve("GET", "/s/a+b").params == {"name": "a+b"}


def test_encoded_slash_does_not_reach_a_static_route() -> None:
    router = SimpleRouter()
    router.register("/a/b", UserView, "GET")
    with pytest.raises(NotFoundError):
        router.resolve("GET", "/a%2Fb")


def test_literal_percent_in_template() -> None:
    router = SimpleRouter()
    router.register("/100%", UserView, "GET", name="pct")
    assert router.resolve("GET", "/100%25").view is UserView
    # Decoding is lenient, as urllib.parse.unquote: a malformed escape stays literal.
    assert router.resolve("GET", "/100%").view is UserView
    assert router.reverse("pct") == "/100%25"


# --- precedence --------------------------------------------------------------------------------


def test_static_beats_parameters() -> None:
    router = SimpleRouter()
    router.register("/user/{id}", UserView, "GET")
    router.register("/user/list", UserListView, "GET")
    assert resolve(router, "GET", "/user/list") == (UserListView, {})
    assert resolve(router, "GET", "/user/bob") == (UserView, {"id": "bob"})


def test_typed_beats_str_beats_path() -> None:
    router = SimpleRouter()
    # Registered weakest first, so registration order cannot explain the result.
    router.register("/a/{p:path}", "path", "GET")
    router.register("/a/{s}", "str", "GET")
    router.register("/a/{u:uuid}", "uuid", "GET")
    router.register("/a/{n:int}", "int", "GET")
    assert resolve(router, "GET", "/a/5") == ("int", {"n": 5})
    assert resolve(router, "GET", f"/a/{U}") == ("uuid", {"u": U})
    assert resolve(router, "GET", "/a/x") == ("str", {"s": "x"})
    assert resolve(router, "GET", "/a/x/y") == ("path", {"p": "x/y"})


def test_precedence_is_decided_from_the_left() -> None:
    router = SimpleRouter()
    router.register("/a/{s}/b", "str-then-static", "GET")
    router.register("/a/{n:int}/{t}", "int-then-str", "GET")
    assert resolve(router, "GET", "/a/1/b") == ("int-then-str", {"n": 1, "t": "b"})
    assert resolve(router, "GET", "/a/x/b") == ("str-then-static", {"s": "x"})


def test_backtracks_when_the_preferred_branch_dead_ends() -> None:
    router = SimpleRouter()
    router.register("/a/b/c", "static", "GET")
    router.register("/a/{x}/d", "param", "GET")
    assert resolve(router, "GET", "/a/b/d") == ("param", {"x": "b"})


def test_method_falls_through_to_the_next_candidate() -> None:
    router = SimpleRouter()
    router.register("/user/list", UserListView, "GET")
    router.register("/user/{name}", UserView, "DELETE")
    assert resolve(router, "DELETE", "/user/list") == (UserView, {"name": "list"})
    assert resolve(router, "GET", "/user/list") == (UserListView, {})


def test_same_shape_ties_go_by_registration_order() -> None:
    router = SimpleRouter()
    router.register("/a/{x}", "first", "GET")
    router.register("/a/{y}", "second", "POST")
    assert resolve(router, "GET", "/a/1") == ("first", {"x": "1"})
    assert resolve(router, "POST", "/a/1") == ("second", {"y": "1"})


# --- registration --------------------------------------------------------------------------------


def test_methods_accepts_a_single_string_and_deduplicates() -> None:
    router = SimpleRouter()
    router.register("/a", UserView, "get")
    router.register("/b", UserView, ("put", "PUT", "Put"))
    assert [route.methods for route in router.routes] == [("GET",), ("PUT",)]


def test_every_protocol_method_is_accepted() -> None:
    # One list of methods: the router's is the protocol's.
    assert trio_rest._routing.METHODS is METHODS
    router = SimpleRouter()
    router.register("/a", UserView, sorted(METHODS))
    assert set(router.routes[0].methods) == METHODS
    assert router.resolve("SUBSCRIBE", "/a").view is UserView


def test_reregistering_adds_methods_with_per_method_views() -> None:
    router = SimpleRouter()
    router.register("/user/{id:int}", UserView, ["GET"], name="user-detail")
    router.register("/user/{id:int}/", OtherView, ["delete"])
    assert router.resolve("GET", "/user/1").view is UserView
    assert router.resolve("DELETE", "/user/1").view is OtherView
    (route,) = router.routes
    assert route.methods == ("DELETE", "GET")
    assert dict(route.views) == {"GET": UserView, "DELETE": OtherView}
    assert route.name == "user-detail"
    assert router.resolve("DELETE", "/user/1").name == "user-detail"


def test_reregistering_can_name_an_unnamed_route() -> None:
    router = SimpleRouter()
    router.register("/user/", UserView, ["POST"])
    router.register("/user", UserListView, ["GET"], name="users")
    assert router.reverse("users") == "/user/"
    assert router.resolve("POST", "/user").name == "users"
    router.register("/user", UserListView, ["PUT"], name="users")


def test_routes_expose_templates_for_documentation() -> None:
    routes = seed_router().routes
    assert all(isinstance(route, Route) for route in routes)
    assert [(r.template, r.methods, r.name) for r in routes] == [
        ("/user/", ("POST",), "user-create"),
        ("/user/list", ("GET",), "user-list"),
        ("/user/{id:int}", ("DELETE", "GET", "PATCH", "PUT"), "user-detail"),
    ]
    assert dict(routes[2].converters) == {"id": "int"}
    assert routes[1].views["GET"] is UserListView


def test_route_snapshot_does_not_change() -> None:
    router = SimpleRouter()
    router.register("/a", UserView, "GET")
    before = router.routes[0]
    router.register("/a", UserView, "POST")
    assert before.methods == ("GET",)
    assert router.routes[0].methods == ("GET", "POST")
    with pytest.raises(TypeError):
        before.views["PUT"] = UserView  # type: ignore[index]


@pytest.mark.parametrize(
    "template",
    [
        "",
        "user",
        "user/{id}",
        "//",
        "/a//b",
        "/a?x=1",
        "/a#b",
        "/{}",
        "/{id",
        "/id}",
        "/{{id}}",
        "/a{id}",
        "/{id}b",
        "/{id}{x}",
        "/{id:int:x}",
        "/{id:}",
        "/{id:float}",
        "/{:int}",
        "/{1x}",
        "/{class}",
        "/{a b}",
        "/{id}/{id:int}",
        "/{p:path}/x",
        "/{p:path}/{q}",
    ],
)
def test_bad_templates(template: str) -> None:
    with pytest.raises(ConfigurationError):
        SimpleRouter().register(template, UserView, "GET")


def test_template_must_be_a_string() -> None:
    with pytest.raises(ConfigurationError):
        SimpleRouter().register(b"/a", UserView, "GET")  # type: ignore[arg-type]


@pytest.mark.parametrize("methods", [[], (), "BREW", ["GET", "FETCH"], [None], ""])
def test_bad_methods(methods: Any) -> None:
    with pytest.raises(ConfigurationError):
        SimpleRouter().register("/a", UserView, methods)


def test_view_must_not_be_none() -> None:
    with pytest.raises(ConfigurationError):
        SimpleRouter().register("/a", None, "GET")


@pytest.mark.parametrize("name", ["", 5])
def test_bad_names(name: Any) -> None:
    with pytest.raises(ConfigurationError):
        SimpleRouter().register("/a", UserView, "GET", name=name)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/user/list", "/user/list"),
        ("/user/list", "/user/list/"),
        ("/user/{id:int}", "/user/{id:int}/"),
        ("/user/{id}", "/user/{other}"),
        ("/f/{p:path}", "/f/{q:path}"),
    ],
)
def test_overlapping_methods_conflict(first: str, second: str) -> None:
    router = SimpleRouter()
    router.register(first, UserView, ["GET", "PUT"])
    with pytest.raises(ConfigurationError, match="PUT"):
        router.register(second, OtherView, ["PUT", "POST"])
    # A failed registration changes nothing.
    assert [route.methods for route in router.routes] == [("GET", "PUT")]
    with pytest.raises(MethodNotAllowedError):
        router.resolve("POST", first.replace("{id:int}", "1").replace("{p:path}", "x"))


def test_duplicate_name_conflicts() -> None:
    router = seed_router()
    with pytest.raises(ConfigurationError, match="user-list"):
        router.register("/other", OtherView, "GET", name="user-list")
    assert len(router.routes) == 3


def test_renaming_a_route_conflicts() -> None:
    router = seed_router()
    with pytest.raises(ConfigurationError, match="already named"):
        router.register("/user/list", UserListView, "POST", name="users")


def test_different_shapes_may_overlap() -> None:
    router = SimpleRouter()
    router.register("/a/{x}", UserView, "GET")
    router.register("/a/{y:int}", OtherView, "GET")
    router.register("/a/b", OtherView, "GET")
    assert len(router.routes) == 3


# --- reverse -----------------------------------------------------------------------------------


def test_reverse_seed_routes() -> None:
    router = seed_router()
    assert router.reverse("user-create") == "/user/"
    assert router.reverse("user-list") == "/user/list"
    assert router.reverse("user-detail", id=6) == "/user/6"


def test_reverse_quotes_values() -> None:
    router = SimpleRouter()
    router.register("/s/{name}", UserView, "GET", name="s")
    router.register("/f/{p:path}", UserView, "GET", name="f")
    router.register("/u/{key:uuid}", UserView, "GET", name="u")
    router.register("/café", UserView, "GET", name="cafe")
    assert router.reverse("s", name="a b/c?d#e%") == "/s/a%20b%2Fc%3Fd%23e%25"
    assert router.reverse("s", name="user@host:1") == "/s/user@host:1"
    assert router.reverse("f", p="a b/c") == "/f/a%20b/c"
    assert router.reverse("f", p="dir/") == "/f/dir%2F"
    assert router.reverse("u", key=U) == f"/u/{U}"
    assert router.reverse("cafe") == "/caf%C3%A9"


def test_reverse_name_is_positional_only() -> None:
    # A route parameter called "name" must not clash with the route name.
    router = SimpleRouter()
    router.register("/user/{name}", UserView, "GET", name="by-name")
    assert router.reverse("by-name", name="bob") == "/user/bob"


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("nope", {}),
        ("user-detail", {}),
        ("user-detail", {"id": 1, "extra": 2}),
        ("user-detail", {"pk": 1}),
        ("user-list", {"id": 1}),
        ("user-detail", {"id": -1}),
        ("user-detail", {"id": "abc"}),
        ("user-detail", {"id": True}),
        ("user-detail", {"id": 1.0}),
        ("user-detail", {"id": "1" * 5000}),
        ("user-detail", {"id": INT64_MAX + 1}),
        ("by-key", {"key": U.hex}),
        ("by-key", {"key": "x"}),
        ("by-name", {"name": ""}),
        ("files", {"p": ""}),
    ],
)
def test_reverse_errors(name: str, params: dict[str, Any]) -> None:
    router = seed_router()
    router.register("/k/{key:uuid}", UserView, "GET", name="by-key")
    router.register("/n/{name}", UserView, "GET", name="by-name")
    router.register("/files/{p:path}", UserView, "GET", name="files")
    with pytest.raises(NoReverseMatchError):
        router.reverse(name, **params)
    with pytest.raises(LookupError):
        router.reverse(name, **params)


def _round_trip_router() -> SimpleRouter:
    router = SimpleRouter()
    router.register("/user/{id:int}/", UserView, "GET", name="int")
    router.register("/org/{key:uuid}/member/{name}", UserView, "GET", name="uuid-str")
    router.register("/files/{p:path}", UserView, "GET", name="path")
    router.register("/user/list", UserListView, "GET", name="list")
    return router


_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1)


@given(st.integers(min_value=0, max_value=INT64_MAX))
def test_reverse_resolve_round_trip_int(value: int) -> None:
    router = _round_trip_router()
    match = router.resolve("GET", router.reverse("int", id=value))
    assert (match.name, match.params) == ("int", {"id": value})


@given(st.uuids(), _text)
def test_reverse_resolve_round_trip_uuid_and_str(key: uuid.UUID, name: str) -> None:
    router = _round_trip_router()
    match = router.resolve("GET", router.reverse("uuid-str", key=key, name=name))
    assert (match.name, match.params) == ("uuid-str", {"key": key, "name": name})


@given(_text)
def test_reverse_resolve_round_trip_path(p: str) -> None:
    router = _round_trip_router()
    match = router.resolve("GET", router.reverse("path", p=p))
    assert (match.name, match.params) == ("path", {"p": p})


@given(st.text(max_size=40))
def test_resolve_never_crashes(path: str) -> None:
    router = _round_trip_router()
    with contextlib.suppress(NotFoundError, MethodNotAllowedError):
        router.resolve("GET", "/" + path)


# --- include -----------------------------------------------------------------------------------


def test_include() -> None:
    api = SimpleRouter()
    api.include("/api/v1/", seed_router())
    assert api.resolve("GET", "/api/v1/user/3").params == {"id": 3}
    assert api.resolve("POST", "/api/v1/user").view is UserView
    assert api.reverse("user-detail", id=3) == "/api/v1/user/3"
    assert api.reverse("user-create") == "/api/v1/user/"


def test_include_keeps_per_method_views() -> None:
    inner = SimpleRouter()
    inner.register("/x", UserView, ["GET", "PUT"], name="x")
    inner.register("/x", OtherView, ["DELETE"])
    outer = SimpleRouter()
    outer.include("/", inner)
    assert outer.resolve("PUT", "/x").view is UserView
    assert outer.resolve("DELETE", "/x").view is OtherView
    assert outer.reverse("x") == "/x"


def test_include_conflicts_and_bad_prefix() -> None:
    outer = seed_router()
    with pytest.raises(ConfigurationError):
        outer.include("/", seed_router())
    with pytest.raises(ConfigurationError):
        outer.include("api", seed_router())


# --- the trie against a brute-force model ----------------------------------------------------------

_MODEL_RANKS = {"static": 0, "int": 1, "str": 2, "path": 3}


def _model_parts(template: str) -> list[tuple[str, str]]:
    body = template[1:].removesuffix("/")
    parts = []
    for seg in body.split("/") if body else []:
        if seg.startswith("{"):
            name, _, kind = seg[1:-1].partition(":")
            parts.append((kind or "str", name))
        else:
            parts.append(("static", seg))
    return parts


def _model_match(parts: list[tuple[str, str]], segs: list[str]) -> dict[str, Any] | None:
    params: dict[str, Any] = {}
    for i, (kind, text) in enumerate(parts):
        if kind == "path":
            rest = "/".join(segs[i:])
            if not rest:
                return None
            params[text] = rest
            return params
        if i >= len(segs):
            return None
        seg = segs[i]
        if kind == "static" and seg != text:
            return None
        if kind == "int":
            if not (seg.isascii() and seg.isdigit()) or int(seg) > INT64_MAX:
                return None
            params[text] = int(seg)
        elif kind == "str":
            if not seg:
                return None
            params[text] = seg
    return params if len(parts) == len(segs) else None


def _model_resolve(router: SimpleRouter, method: str, path: str) -> tuple[Any, ...]:
    """Try every route, in precedence order: the rules of the module docstring, spelled out."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    segs = path[1:].split("/") if path != "/" else []
    candidates = []
    for order, route in enumerate(router.routes):
        parts = _model_parts(route.template)
        params = _model_match(parts, segs)
        if params is not None:
            key = tuple(_MODEL_RANKS[kind] for kind, _ in parts)
            candidates.append((key, order, route, params))
    candidates.sort(key=lambda candidate: candidate[:2])
    for _, _, route, params in candidates:
        if method in route.views:
            return ("match", route.views[method], params)
    allowed = {m for _, _, route, _ in candidates for m in route.views}
    if "GET" in allowed:
        allowed.add("HEAD")  # a GET route answers HEAD too
    return ("405", tuple(sorted(allowed))) if allowed else ("404",)


def _trie_resolve(router: SimpleRouter, method: str, path: str) -> tuple[Any, ...]:
    try:
        match = router.resolve(method, path)
    except MethodNotAllowedError as exc:
        return ("405", exc.allowed)
    except NotFoundError:
        return ("404",)
    return ("match", match.view, dict(match.params))


_KINDS = ["a", "b", "static-1", "str", "int", "path"]


@st.composite
def _templates(draw: st.DrawFn) -> str:
    kinds = draw(st.lists(st.sampled_from(_KINDS), max_size=3))
    segments = []
    for i, kind in enumerate(kinds):
        suffix = draw(st.sampled_from(["", "_"]))  # same shape, other names
        if kind == "str":
            segments.append(f"{{s{i}{suffix}}}")
        elif kind == "int":
            segments.append(f"{{n{i}{suffix}:int}}")
        elif kind == "path":
            segments.append(f"{{p{i}{suffix}:path}}")
            break
        else:
            segments.append("1" if kind == "static-1" else kind)
    return "/" + "/".join(segments) + draw(st.sampled_from(["", "/"]))


_paths = st.builds(
    lambda segs, slash: "/" + "/".join(segs) + slash,
    st.lists(st.sampled_from(["a", "b", "1", "22", "c", "", str(INT64_MAX), str(INT64_MAX + 1)]), max_size=4),
    st.sampled_from(["", "/"]),
)


@given(
    st.lists(
        st.tuples(_templates(), st.sets(st.sampled_from(["GET", "POST"]), min_size=1)),
        max_size=8,
    ),
    st.lists(st.tuples(st.sampled_from(["GET", "POST", "PUT"]), _paths), min_size=1, max_size=10),
)
def test_resolve_agrees_with_brute_force_model(
    registrations: list[tuple[str, set[str]]], requests: list[tuple[str, str]]
) -> None:
    router = SimpleRouter()
    for index, (template, methods) in enumerate(registrations):
        with contextlib.suppress(ConfigurationError):
            router.register(template, f"view{index}", sorted(methods))
    for method, path in requests:
        assert _trie_resolve(router, method, path) == _model_resolve(router, method, path)
