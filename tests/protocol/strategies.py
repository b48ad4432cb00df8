"""Hypothesis strategies for valid events and JSON-shaped values."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from trio_rest_protocol import METHODS, Auth, Cancel, Notification, Ping, Pong, Request, Response
from trio_rest_protocol._events import INT_MAX, INT_MIN, REQUEST_KEYS

ids = st.one_of(st.text(max_size=20), st.integers(INT_MIN, INT_MAX))
optional_ids = st.none() | ids
names = st.none() | st.text(max_size=20)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(INT_MIN, INT_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(st.sampled_from(sorted(METHODS)))
    return Request(
        method=method,
        url="/" + draw(st.text(max_size=20)),
        args=draw(json_objects),
        data=draw(json_values),
        event_name=draw(names),
        id=draw(ids if method == "SUBSCRIBE" else optional_ids),
        timeout=draw(st.none() | st.floats(min_value=0.001, max_value=1e6)),
        extras=draw(
            st.dictionaries(
                st.text(max_size=8).filter(lambda k: k not in REQUEST_KEYS), json_values, max_size=2
            )
        ),
    )


@st.composite
def responses(draw: st.DrawFn) -> Response:
    status = draw(st.integers(100, 599))
    if status < 400:
        return Response(id=draw(optional_ids), event_name=draw(names), status=status, data=draw(json_values))
    return Response(
        id=draw(optional_ids),
        event_name=draw(names),
        status=status,
        data=draw(json_values),
        code=draw(st.text(max_size=12)),
        detail=draw(st.text(max_size=30)),
        errors=draw(st.none() | json_objects),
    )


@st.composite
def notifications(draw: st.DrawFn) -> Notification:
    id_ = draw(optional_ids)
    return Notification(
        id=id_,
        event_name=draw(names),
        topic=draw(st.none() | st.text(max_size=20)),
        seq=draw(st.none() | st.integers(0, INT_MAX)),
        data=draw(json_values),
        final=draw(st.booleans()) if id_ is not None else False,
    )


client_events = st.one_of(
    requests(),
    st.builds(Cancel, id=ids),
    st.builds(Ping, id=optional_ids),
    st.builds(Auth, token=st.text(min_size=1, max_size=40), id=optional_ids),
)
server_events = st.one_of(responses(), notifications(), st.builds(Pong, id=optional_ids))
