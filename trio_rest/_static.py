"""The files the server hands out on the HTTP side of its port: the JavaScript client and the explorer.

``GET /trio-rest.js`` is always served; ``GET /`` (the explorer page) with its script and style
only when `Settings.explorer` is on. Each file is read from the package once, and served with
headers that keep a browser from reading it as anything else: ``nosniff``, and for the page a
Content-Security-Policy that lets it load nothing but its own files and talk to nothing but
its own origin (the WebSocket included).
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Final

import attrs

__all__ = ["JAVASCRIPT", "StaticFile", "find_static"]

#: The media type of scripts (RFC 9239).
JAVASCRIPT: Final = "text/javascript; charset=utf-8"

_COMMON: Final = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-cache"))

#: The page's policy: its own script and style, its own origin's WebSocket, no frames, no forms.
_PAGE_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@attrs.frozen
class StaticFile:
    """One file of ``trio_rest/static/``, as served at `path`."""

    path: str
    resource: str
    content_type: str
    headers: tuple[tuple[str, str], ...] = _COMMON

    @property
    def body(self) -> bytes:
        """The file's bytes, read from the package the first time."""
        return _read(self.resource)


_CLIENT: Final = StaticFile("/trio-rest.js", "trio-rest.js", JAVASCRIPT)
_EXPLORER: Final = {
    static.path: static
    for static in (
        StaticFile(
            "/",
            "explorer.html",
            "text/html; charset=utf-8",
            (*_COMMON, ("Content-Security-Policy", _PAGE_POLICY), ("Referrer-Policy", "no-referrer")),
        ),
        StaticFile("/explorer.js", "explorer.js", JAVASCRIPT),
        StaticFile("/explorer.css", "explorer.css", "text/css; charset=utf-8"),
    )
}


def find_static(path: str, *, explorer: bool) -> StaticFile | None:
    """The file served at `path`, or None.

    Args:
        path: the request's path, without its query string.
        explorer: whether the explorer's files are served (`Settings.explorer`).
    """
    if path == _CLIENT.path:
        return _CLIENT
    return _EXPLORER.get(path) if explorer else None


@functools.cache
def _read(resource: str) -> bytes:
    return importlib.resources.files("trio_rest").joinpath("static", resource).read_bytes()
