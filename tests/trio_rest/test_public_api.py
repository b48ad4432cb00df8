"""The packages export exactly what their __all__ lists, and `import trio_rest` stays light."""

from __future__ import annotations
import __future__

import subprocess
import sys
import types
from pathlib import Path

import pytest
import trio_rest_protocol

import trio_rest
import trio_rest.auth
import trio_rest.client
import trio_rest.testing


def _public_names(module: types.ModuleType) -> set[str]:
    """The public names a module offers, those it loads on first use included (`dir()`)."""
    names = set()
    for name in dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if isinstance(value, (types.ModuleType, __future__._Feature)):
            continue
        defined_in = getattr(value, "__module__", module.__name__)
        if module is trio_rest:
            # The package re-exports its private modules' names (and nothing from elsewhere).
            if defined_in == "trio_rest" or defined_in.startswith("trio_rest."):
                names.add(name)
        elif defined_in == module.__name__:
            names.add(name)
    return names


@pytest.mark.parametrize("module", [trio_rest, trio_rest.auth, trio_rest.client, trio_rest.testing])
def test_all_matches_the_public_names(module: types.ModuleType) -> None:
    assert set(module.__all__) == _public_names(module)


@pytest.mark.parametrize("name", trio_rest.__all__)
def test_every_listed_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from trio_rest import {name}", namespace)
    assert namespace[name] is getattr(trio_rest, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        trio_rest.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement`."""
    script = f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def test_import_does_not_load_sqlalchemy() -> None:
    # An app without a database must not pay for SQLAlchemy at import time.
    loaded = _modules_after("import trio_rest")
    assert "trio_rest._app" in loaded  # the check ran on a real import
    assert not {name for name in loaded if name.split(".")[0] == "sqlalchemy"}
    assert "trio_rest._generics" not in loaded and "trio_rest.db" not in loaded


def test_the_generic_views_load_sqlalchemy_on_first_use() -> None:
    loaded = _modules_after("from trio_rest import ModelViewSet")
    assert {"sqlalchemy", "trio_rest._generics"} <= loaded


@pytest.mark.parametrize("package", [trio_rest, trio_rest_protocol])
def test_packages_are_marked_as_typed(package: types.ModuleType) -> None:
    # PEP 561: without the marker, type checkers ignore the packages' annotations.
    assert package.__file__ is not None
    assert (Path(package.__file__).parent / "py.typed").is_file()
