"""wss:// without a proxy: `serve(ssl_context=...)`, the CLI's --certfile/--keyfile, the client."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
import trustme

from tests.security._server_process import run_server
from tests.trio_rest.conftest import build_app
from trio_rest import Server
from trio_rest.client import connect


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_serve_with_tls_answers_a_wss_client_and_refuses_plain_ws(ca: trustme.CA) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                Server(build_app(), ssl_context=server_context).serve, "127.0.0.1", 0
            )
            url = f"wss://127.0.0.1:{server.port}/"
            async with connect(url, ssl_context=_client_context(ca), reconnect=False) as client:
                assert (await client.get("/user/1")).status == 200
            with pytest.raises(OSError):  # a plain WebSocket client gets no upgrade
                async with connect(f"ws://127.0.0.1:{server.port}/", reconnect=False, connect_timeout=1):
                    pass
            with pytest.raises(OSError):  # a client that does not trust the certificate
                async with connect(
                    url, ssl_context=ssl.create_default_context(), reconnect=False, connect_timeout=1
                ):
                    pass
            async with connect(url, ssl_context=_client_context(ca), reconnect=False) as client:
                assert (await client.get("/user/2")).status == 200  # still served
            nursery.cancel_scope.cancel()


async def test_the_cli_serves_wss_with_a_certificate_file(ca: trustme.CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    options = ("--certfile", str(certfile), "--keyfile", str(keyfile))
    with run_server("examples.hello:app", *options) as server, trio.fail_after(20):
        url = f"wss://127.0.0.1:{server.port}/"
        async with connect(url, ssl_context=_client_context(ca), reconnect=False) as client:
            assert (await client.get("/user/1")).data == {"id": 1, "name": "Ada Lovelace"}
