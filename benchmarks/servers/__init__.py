"""Launchers of the servers the harness compares, one module each.

Each runs as ``python -m benchmarks.servers.NAME --port P``, in the project's
environment (trio-rest, trio-websocket) or in the competitors' virtual
environment (everything else). They import only the standard library, their
own server library and orjson, never `trio_rest` unless they serve it.
"""
