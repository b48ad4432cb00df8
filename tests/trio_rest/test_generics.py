"""ModelViewSet and register_viewset on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from typing import Any

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
    filter_fields = ("name", "fullname")
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


async def test_cursor_pagination_is_stable_under_inserts(client: Any) -> None:
    await _make_users(client, ["c1", "c2", "c3"])
    first = (await client.get("/paged-user")).data
    assert len(first["results"]) == 2 and first["next"]
    await _make_users(client, ["c4"])
    second = (await client.get(first["next"])).data
    seen = [user["name"] for user in first["results"] + second["results"]]
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 4
    assert (await client.get("/paged-user", args={"cursor": "%%%"})).status == 400


async def test_to_many_relation_through_the_viewset(client: Any, db_url: str) -> None:
    created = await client.post("/user", {"name": "rel", "fullname": "R", "password": "x"})
    assert created.status == 201
    unknown = await client.patch(f"/user/{created.data['id']}", {"addresses": [999]})
    assert unknown.status == 400 and "addresses" in unknown.errors


_ = Address
