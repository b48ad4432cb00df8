"""aiorest-ws 1.1.1 (asyncio + autobahn), the library trio-rest succeeds, serving ``/users/{id}``.

Its replies carry no id and no status: the load generator correlates them by
``event_name`` and counts a reply with ``detail`` as an error. Its per-request
INFO log line is turned down to warnings, as a production deployment would.
"""

from __future__ import annotations

import logging
from typing import Any

from ._aiorest_shims import install
from ._common import USERS, parse_address

install()

from aiorest_ws.app import Application  # noqa: E402 - only importable once the shims are in
from aiorest_ws.exceptions import BaseAPIException  # noqa: E402
from aiorest_ws.routers import SimpleRouter  # noqa: E402
from aiorest_ws.views import MethodBasedView  # noqa: E402


class UserView(MethodBasedView):  # type: ignore[misc]
    """``GET /users/{id}``."""

    def get(self, request: Any, id: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return USERS[int(id)]
        except (KeyError, ValueError):
            raise BaseAPIException(f"No user {id}.") from None


def main() -> None:
    """Serve until killed."""
    host, port = parse_address(__doc__)
    logging.getLogger("aiorest-ws").setLevel(logging.WARNING)
    router = SimpleRouter()
    router.register("/users/{id}", UserView, "GET")
    Application().run(host=host, port=port, router=router, log_level="warn")


if __name__ == "__main__":
    main()
