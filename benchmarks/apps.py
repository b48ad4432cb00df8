"""The trio-rest app the end-to-end benchmark serves: one route, ``/users/{id:int}``.

python -m trio_rest run benchmarks.apps:app --port 8080 --engine websockets
"""

from __future__ import annotations

from typing import Any

from trio_rest import App, MethodBasedView, NotFound, Request, Settings, SimpleRouter

__all__ = ["USERS", "UserView", "app"]

#: The records behind the route; the benchmark asks for user 17.
USERS: dict[int, dict[str, Any]] = {17: {"id": 17, "name": "Ada Lovelace", "email": "ada@example.com"}}


class UserView(MethodBasedView):
    """``GET /users/{id}``: one user, or 404."""

    async def get(self, request: Request, id: int) -> dict[str, Any]:
        """Return the user `id`.

        Raises:
            NotFound: there is no such user.
        """
        user = USERS.get(id)
        if user is None:
            raise NotFound(f"No user {id}.")
        return user


router = SimpleRouter()
router.register("/users/{id:int}", UserView, ["GET"], name="user-detail")
# Throughput, as the other rows measure it: rate limits off (the pipelined workload sends
# more than the default 5,000 requests a second per connection).
app = App(router, settings=Settings(rate_limit=None, rate_limit_per_address=None))
