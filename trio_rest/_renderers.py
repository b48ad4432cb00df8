"""Renderers: what a reply becomes on the wire when its request names a format (``args.format``).

JSON is the protocol itself. XML, which aiorest-ws clients could ask for, is the same
envelope rendered by xmltodict, in the shape Django REST framework's XML renderer gives:
a ``<root>`` element, one child per key, ``<list-item>`` elements for a list's items,
empty elements for null, ``true``/``false`` for booleans. A key that is not an XML name
(``"1"``, ``"a b"``, ``"@x"``) becomes ``<item key="...">``.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson
import xmltodict

__all__ = ["FORMATS", "render"]

#: The formats a request may name in ``args.format``.
FORMATS: Final = frozenset({"json", "xml"})

# XML 1.0 names, ASCII only (enough for keys; anything else becomes <item key="...">),
# and not starting with "xml", which is reserved.
_NAME = re.compile(r"(?!(?i:xml))[A-Za-z_][A-Za-z0-9_.-]*")


def render(wire: str, format: str) -> str:
    """Render a JSON envelope (as the protocol wrote it) in `format`, one of `FORMATS`."""
    if format == "json":
        return wire
    text: str = xmltodict.unparse({"root": _tree(orjson.loads(wire))})
    return text


def _tree(value: Any) -> Any:
    """Turn a JSON value into what xmltodict writes as the elements described above."""
    if isinstance(value, dict):
        children: dict[str, Any] = {}
        items: list[Any] = []
        for key, item in value.items():
            if _NAME.fullmatch(key):
                children[key] = _tree(item)
            else:
                items.append(_keyed(key, _tree(item)))
        if items:
            children["item"] = items
        return children
    if isinstance(value, list):
        return {"list-item": [_tree(item) for item in value]} if value else None
    return value


def _keyed(key: str, tree: Any) -> dict[str, Any]:
    if isinstance(tree, dict):
        return {"@key": key, **tree}
    return {"@key": key, "#text": _text(tree)}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
