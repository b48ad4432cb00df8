"""The packages export exactly what their __all__ lists."""

from __future__ import annotations
import __future__

import types

import pytest

import trio_rest
import trio_rest.client
import trio_rest.testing


@pytest.mark.parametrize("module", [trio_rest, trio_rest.client, trio_rest.testing])
def test_all_matches_the_public_names(module: types.ModuleType) -> None:
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))
        and getattr(value, "__module__", module.__name__).startswith(module.__name__.split(".")[0])
        and (module is trio_rest or getattr(value, "__module__", "") == module.__name__)
    }
    assert set(module.__all__) == public
