"""DRF-style serializers for SQLAlchemy 2.x models, converting values through the App's cattrs converter.

Serializers are synchronous: the framework runs them in a worker thread with
the request's SQLAlchemy Session in ``context["session"]``::

    class UserSerializer(ModelSerializer):
        class Meta:
            model = User
            fields = ["id", "name", "addresses"]

    serializer = UserSerializer(data=request.data, context={"session": session, "request": request})
    serializer.is_valid(raise_exception=True)
    serializer.save()
    return Response(serializer.data, status=201)
"""

from __future__ import annotations

from ._field import Field, empty
from ._generic import ConverterField, JSONField, ReadOnlyField, SerializerMethodField
from ._model import HyperlinkedModelSerializer, ModelSerializer
from ._relations import (
    HyperlinkedIdentityField,
    HyperlinkedRelatedField,
    PrimaryKeyRelatedField,
    RelatedField,
)
from ._scalars import (
    BooleanField,
    CharField,
    ChoiceField,
    DecimalField,
    EnumField,
    FloatField,
    IntegerField,
    UUIDField,
)
from ._serializer import NON_FIELD_ERRORS, Serializer
from ._temporal import DateField, DateTimeField, TimeField

__all__ = [
    "NON_FIELD_ERRORS",
    "BooleanField",
    "CharField",
    "ChoiceField",
    "ConverterField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "EnumField",
    "Field",
    "FloatField",
    "HyperlinkedIdentityField",
    "HyperlinkedModelSerializer",
    "HyperlinkedRelatedField",
    "IntegerField",
    "JSONField",
    "ModelSerializer",
    "PrimaryKeyRelatedField",
    "ReadOnlyField",
    "RelatedField",
    "Serializer",
    "SerializerMethodField",
    "TimeField",
    "UUIDField",
    "empty",
]

# Public classes say they live here, not in the private module that defines them
# (reprs, documentation and pickles then use the public path).
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = __name__
type(empty).__module__ = __name__
del _name, _value
