"""trio_rest.serializers exports exactly what its __all__ lists."""

from __future__ import annotations
import __future__

import types

import trio_rest.serializers


def test_all_matches_the_public_names() -> None:
    module = trio_rest.serializers
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType | __future__._Feature)
        and getattr(value, "__module__", module.__name__) == module.__name__
    }
    assert set(module.__all__) == public


def test_public_classes_name_the_public_module() -> None:
    assert repr(trio_rest.serializers.ModelSerializer) == "<class 'trio_rest.serializers.ModelSerializer'>"
