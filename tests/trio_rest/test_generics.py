"""ModelViewSet and register_viewset on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
import trio

from examples.users.models import Address, Base, User
from examples.users.serializers import UserSerializer
from trio_rest import App, CursorPagination, ModelViewSet, SimpleRouter
from trio_rest.db import Database
from trio_rest.testing import TestClient


class UserViewSet(ModelViewSet):
    queryset = User
    serializer_class = UserSerializer
    filter_fields = ("id", "name", "fullname")
    ordering_fields = ("name", "fullname", "id")


class CursorUserViewSet(UserViewSet):
    pagination = CursorPagination(page_size=2)


def _app(url: str) -> App:
    router = SimpleRouter()
    router.register_viewset("/user", UserViewSet, basename="user")
    router.register_viewset("/paged-user", CursorUserViewSet, basename="paged-user")
    database = Database(url)
    Base.metadata.create_all(database.engine)
    return App(router, database=database)


@pytest.fixture
async def client(db_url: str) -> Any:
    app = _app(db_url)
    async with TestClient(app) as test_client:
        yield test_client
    app.database.dispose()


async def test_routes_and_names(db_url: str) -> None:
    router = _app(db_url).router
    assert router.reverse("user-list") == "/user"
    assert router.reverse("user-detail", id=3) == "/user/3"
    templates = {route.template: route.methods for route in router.routes}
    assert templates["/user"] == ("GET", "POST")
    assert templates["/user/{id:int}"] == ("DELETE", "GET", "PATCH", "PUT")


async def test_create_retrieve_update_partial_destroy(client: Any) -> None:
    created = await client.post("/user", {"name": "ada", "fullname": "Ada Lovelace", "password": "x"})
    assert created.status == 201
    user_id = created.data["id"]
    assert created.data == {"id": user_id, "name": "ada", "fullname": "Ada Lovelace", "addresses": []}
    assert (await client.get(f"/user/{user_id}")).data["name"] == "ada"
    replaced = await client.put(f"/user/{user_id}", {"name": "ada2", "fullname": "A", "password": "y"})
    assert (replaced.status, replaced.data["name"]) == (200, "ada2")
    patched = await client.patch(f"/user/{user_id}", {"fullname": "Countess"})
    assert (patched.data["name"], patched.data["fullname"]) == ("ada2", "Countess")
    incomplete = await client.put(f"/user/{user_id}", {"fullname": "only this"})
    assert incomplete.status == 400 and "name" in incomplete.errors
    assert (await client.delete(f"/user/{user_id}")).status == 204
    assert (await client.get(f"/user/{user_id}")).status == 404
    assert (await client.delete(f"/user/{user_id}")).status == 404


async def test_validation_errors_are_400_with_every_field(client: Any) -> None:
    response = await client.post("/user", {"name": "x@y", "fullname": 5})
    assert (response.status, response.code) == (400, "invalid")
    assert "name" in response.errors


async def _make_users(client: Any, names: list[str]) -> None:
    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(
                client.post, "/user", {"name": name, "fullname": name.upper(), "password": "x"}
            )


async def test_limit_offset_pagination_filtering_and_ordering(client: Any) -> None:
    await _make_users(client, [f"u{i:02d}" for i in range(7)])
    page = (await client.get("/user", args={"limit": 3, "offset": 2, "ordering": "-name"})).data
    assert page["count"] == 7
    assert [user["name"] for user in page["results"]] == ["u04", "u03", "u02"]
    assert page["next"] == "/user?limit=3&offset=5&ordering=-name"
    assert page["previous"] == "/user?limit=3&offset=0&ordering=-name"
    following = (await client.get(page["next"])).data  # the query string is merged into args
    assert [user["name"] for user in following["results"]] == ["u01", "u00"] and following["next"] is None
    filtered = (await client.get("/user", args={"name": "u03"})).data
    assert [user["fullname"] for user in filtered["results"]] == ["U03"]


@pytest.mark.parametrize(
    ("args", "field"),
    [({"ordering": "password"}, "ordering"), ({"limit": "many"}, "limit"), ({"offset": -1}, "offset")],
)
async def test_bad_list_arguments_are_400(client: Any, args: dict[str, Any], field: str) -> None:
    response = await client.get("/user", args=args)
    assert response.status == 400 and field in response.errors


async def test_limit_is_capped(client: Any) -> None:
    await _make_users(client, ["a", "b"])
    assert len((await client.get("/user", args={"limit": 10**6})).data["results"]) == 2


# The largest integer the list arguments accept: a signed 64-bit one, as trio_rest._pagination.INT64.
_INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("url", "args", "field"),
    [
        ("/user?offset=99999999999999999999", None, "offset"),
        (f"/user?offset={_INT64_MAX + 1}", None, "offset"),
        ("/user", {"offset": 2**64 - 1}, "offset"),
        ("/user?offset=-1", None, "offset"),
        ("/user?offset=ten", None, "offset"),
        ("/user?offset=1.5", None, "offset"),
        ("/user?offset=", None, "offset"),
        ("/user", {"offset": [1]}, "offset"),
        ("/user?limit=-1", None, "limit"),
        ("/user?limit=ten", None, "limit"),
        ("/paged-user?limit=-1", None, "limit"),
        ("/paged-user?limit=ten", None, "limit"),
    ],
)
async def test_offset_or_limit_out_of_range_or_not_an_integer_is_400_naming_it(
    client: Any, url: str, args: dict[str, Any] | None, field: str
) -> None:
    # Past 64 bits the database driver cannot bind the number: refused here, not a 500 from the query.
    response = await client.get(url, args=args)
    assert (response.status, response.code) == (400, "invalid")
    assert list(response.errors) == [field]


async def test_offsets_up_to_the_64_bit_limit_still_page(client: Any) -> None:
    await _make_users(client, ["o1", "o2", "o3"])
    page = (await client.get("/user?offset=1&limit=1&ordering=name")).data
    assert (page["count"], [user["name"] for user in page["results"]]) == (3, ["o2"])
    last = (await client.get(f"/user?offset={_INT64_MAX}")).data
    assert (last["count"], last["results"], last["next"]) == (3, [], None)
    # A limit is capped at max_limit, however large, rather than refused.
    capped = (await client.get("/user?limit=99999999999999999999")).data
    assert sorted(user["name"] for user in capped["results"]) == ["o1", "o2", "o3"]


async def test_cursor_pagination_is_stable_under_inserts(client: Any) -> None:
    await _make_users(client, ["c1", "c2", "c3"])
    first = (await client.get("/paged-user")).data
    assert len(first["results"]) == 2 and first["next"]
    await _make_users(client, ["c4"])
    second = (await client.get(first["next"])).data
    seen = [user["name"] for user in first["results"] + second["results"]]
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 4
    assert (await client.get("/paged-user", args={"cursor": "%%%"})).status == 400


def _cursor(encoded: bytes) -> str:
    """A cursor as the server writes one: unpadded url-safe base64 of JSON."""
    return base64.urlsafe_b64encode(encoded).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(orjson.dumps([1, 2])),
        _cursor(orjson.dumps(None)),
        _cursor(orjson.dumps(True)),
        _cursor(orjson.dumps({"id": 1})),
        _cursor(orjson.dumps(2**64 - 1)),
        _cursor(orjson.dumps(_INT64_MAX + 1)),
        _cursor(b"not json"),
        "%%%",
        "",
    ],
    ids=["list", "null", "true", "object", "2**64-1", "2**63", "not-json", "not-base64", "empty"],
)
async def test_a_cursor_that_is_not_a_comparable_value_is_400_naming_it(client: Any, cursor: str) -> None:
    # Forged or damaged: it would otherwise reach the query and fail there (or match nothing) instead.
    await _make_users(client, ["c1", "c2"])
    response = await client.get("/paged-user", args={"cursor": cursor})
    assert (response.status, response.code) == (400, "invalid")
    assert list(response.errors) == ["cursor"]


async def test_a_valid_cursor_still_pages(client: Any) -> None:
    await _make_users(client, ["v1", "v2", "v3", "v4"])
    ids = sorted(user["id"] for user in (await client.get("/user")).data["results"])
    after_first = (await client.get("/paged-user", args={"cursor": _cursor(orjson.dumps(ids[0]))})).data
    assert [user["id"] for user in after_first["results"]] == ids[1:3]
    rest = (await client.get(after_first["next"])).data
    assert ([user["id"] for user in rest["results"]], rest["next"]) == (ids[3:], None)
    # A float cursor is a comparable value too.
    between = (await client.get(f"/paged-user?cursor={_cursor(orjson.dumps(ids[1] + 0.5))}")).data
    assert [user["id"] for user in between["results"]] == ids[2:]


@pytest.mark.parametrize(
    ("url", "args"),
    [
        ("/user", {"id": 2**64 - 1}),
        ("/user", {"id": _INT64_MAX + 1}),
        ("/user?id=99999999999999999999", None),
        ("/user?id=-99999999999999999999", None),
        ("/user", {"id": "two"}),
        ("/user?id=two", None),
        ("/user?id=1.5", None),
        ("/user?id=", None),
        ("/user", {"id": [2]}),
    ],
)
async def test_an_int_filter_out_of_range_or_not_an_integer_is_400_naming_it(
    client: Any, url: str, args: dict[str, Any] | None
) -> None:
    response = await client.get(url, args=args)
    assert (response.status, response.code) == (400, "invalid")
    assert list(response.errors) == ["id"]


async def test_an_int_filter_in_range_still_filters(client: Any) -> None:
    await _make_users(client, ["f1", "f2", "f3"])
    ids = {user["name"]: user["id"] for user in (await client.get("/user")).data["results"]}
    for response in [
        await client.get("/user", args={"id": ids["f2"]}),
        await client.get(f"/user?id={ids['f2']}"),
        await client.get("/paged-user", args={"id": str(ids["f2"])}),
    ]:
        assert (response.status, [user["name"] for user in response.data["results"]]) == (200, ["f2"])


async def test_an_id_beyond_the_column_s_integers_is_a_404_or_a_400_on_every_database(
    client: Any, db_url: str
) -> None:
    """``users.id`` is an ``Integer``: 32 bits on PostgreSQL, which refuses to compare more."""
    await _make_users(client, ["big"])
    beyond = 2**31
    assert (await client.get(f"/user/{beyond}")).status == 404
    assert (await client.delete(f"/user/{beyond}")).status == 404
    refused = [
        await client.get("/user", args={"id": beyond}),
        await client.get("/paged-user", args={"cursor": _cursor(orjson.dumps(beyond))}),
        await client.get("/paged-user", args={"cursor": _cursor(orjson.dumps("1"))}),  # a string: not an id
    ]
    if db_url.startswith("sqlite"):  # SQLite holds 64-bit integers: a filter that matches nothing
        assert (refused[0].status, refused[0].data["results"]) == (200, [])
        assert refused[1].status == 200
    else:
        assert [(r.status, list(r.errors)) for r in refused[:2]] == [(400, ["id"]), (400, ["cursor"])]
    assert (refused[2].status, list(refused[2].errors)) == (400, ["cursor"])


async def test_to_many_relation_through_the_viewset(client: Any, db_url: str) -> None:
    created = await client.post("/user", {"name": "rel", "fullname": "R", "password": "x"})
    assert created.status == 201
    unknown = await client.patch(f"/user/{created.data['id']}", {"addresses": [999]})
    assert unknown.status == 400 and "addresses" in unknown.errors


_ = Address
