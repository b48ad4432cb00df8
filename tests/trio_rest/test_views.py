"""Views compile into handlers when the App is built."""

from __future__ import annotations

import pytest

from trio_rest import App, ConfigurationError, MethodBasedView, Request, SimpleRouter
from trio_rest._views import compile_handler


class OnlyGet(MethodBasedView):
    async def get(self, request: Request) -> str:
        return "got"


def test_a_view_without_the_method_fails_when_the_app_is_built() -> None:
    router = SimpleRouter()
    router.register("/x", OnlyGet, ["GET", "POST"])
    with pytest.raises(ConfigurationError, match="no post"):
        App(router)


@pytest.mark.parametrize("view", [42, OnlyGet(), int])
def test_non_views_are_refused(view: object) -> None:
    with pytest.raises(ConfigurationError, match="is not a view"):
        compile_handler(view, "GET")


async def test_a_fresh_view_instance_per_request() -> None:
    seen: list[object] = []

    class Remember(MethodBasedView):
        async def get(self, request: Request) -> None:
            seen.append(self)

    handler = compile_handler(Remember, "GET")
    await handler.fn(None)
    await handler.fn(None)
    assert len(seen) == 2 and seen[0] is not seen[1]
    assert handler.name == "Remember.get"
