"""``HTTPXAsyncTransport`` as a drop-in for ``httpx.AsyncHTTPTransport``: its constructor
arguments, the ``trace`` (with coroutine callbacks, as httpcore awaits them) and
``sni_hostname`` request extensions, and the errors httpx users expect."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
from typing import Any

import httpx
import pytest

import roundtrip
from roundtrip.adapters import HTTPXAsyncTransport

from proxies import tls_handler
from servers import keep_alive_handler, respond
from test_adapters_httpx_async import client, closed_port

FAST = httpx.Timeout(5.0)
EXCHANGE = [
    "http11.send_request_headers.started",
    "http11.send_request_headers.complete",
    "http11.send_request_body.started",
    "http11.send_request_body.complete",
    "http11.receive_response_headers.started",
    "http11.receive_response_headers.complete",
    "http11.receive_response_body.started",
    "http11.receive_response_body.complete",
    "http11.response_closed.started",
    "http11.response_closed.complete",
]


# -- constructor arguments ---------------------------------------------------------------------


def test_every_async_http_transport_argument_is_accepted(run, server):
    srv = server(keep_alive_handler(b"ok"))

    async def main():
        transport = HTTPXAsyncTransport(
            verify=True, cert=None, trust_env=False, http1=True, http2=False,
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=3.0),
            proxy=None, uds=None, local_address="127.0.0.1", retries=1,
            socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)],
        )
        async with client(transport) as c:
            return (await c.get(srv.url("/"))).content

    assert run(main()) == b"ok"


def test_http2_alone_is_refused_naming_the_async_classes():
    with pytest.raises(NotImplementedError, match=r"HTTPXAsyncTransport speaks HTTP/1\.1 only.*httpx\.AsyncHTTPTransport"):
        HTTPXAsyncTransport(http1=False, http2=True)


def test_arguments_with_a_given_transport_are_refused():
    with pytest.raises(ValueError, match=r"HTTPXAsyncTransport\(transport=\.\.\.\).*verify"):
        HTTPXAsyncTransport(roundtrip.AsyncTransport(), verify=False)


def test_limits_map_as_for_the_sync_adapter(run):
    limits = httpx.Limits(max_connections=3, max_keepalive_connections=2, keepalive_expiry=7.0)
    transport = HTTPXAsyncTransport(limits=limits)
    options = transport._options
    run(transport.aclose())
    assert options["max_conns_per_host"] == 3
    assert options["max_idle_conns"] == options["max_idle_conns_per_host"] == 2
    assert options["idle_conn_timeout"] == 7.0
    assert options["disable_compression"] is True


def test_verify_with_a_context_trusts_that_context(run, server, certs):
    srv = server(tls_handler(certs.server_context(), keep_alive_handler(b"secret")))

    async def main():
        async with client(HTTPXAsyncTransport(verify=certs.client_context())) as c:
            return (await c.get(srv.url("/", scheme="https"))).content

    assert run(main()) == b"secret"


def test_default_verification_rejects_an_untrusted_certificate(run, server, certs):
    srv = server(tls_handler(certs.server_context(), keep_alive_handler(b"secret")))

    async def main():
        async with client() as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(srv.url("/", scheme="https"))

    run(main())


def test_uds_connects_to_the_unix_socket_whatever_the_host(run):
    path = os.path.join(tempfile.mkdtemp(), "server.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(10)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            seen.append(data)
            conn.sendall(respond(200, b"via unix"))

    async def main():
        async with client(HTTPXAsyncTransport(uds=path)) as c:
            return (await c.get("http://example.invalid/x")).content

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        body = run(main())
    finally:
        thread.join(10)
        listener.close()
        os.unlink(path)
    assert body == b"via unix"
    assert b"Host: example.invalid\r\n" in seen[0]


def test_local_address_is_the_source_of_the_connection(run, server):
    peers: list[str] = []

    def handler(conn) -> None:
        peers.append(conn.sock.getpeername()[0])
        keep_alive_handler(b"ok")(conn)

    srv = server(handler)

    async def main():
        async with client(HTTPXAsyncTransport(local_address="127.0.0.2")) as c:
            await c.get(srv.url("/"))

    run(main())
    assert peers == ["127.0.0.2"]


def test_socket_options_are_set_by_the_async_dial(run):
    transport = HTTPXAsyncTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)])
    dial = transport._options["dial"]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    async def main():
        await transport.aclose()
        sock = await dial("127.0.0.1", listener.getsockname()[1], 5.0)
        try:
            return sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE), sock.getblocking()
        finally:
            sock.close()

    try:
        assert run(main()) == (1, False)
    finally:
        listener.close()


@pytest.mark.parametrize("retries", [0, 2])
def test_retries_connect_again_after_a_refused_connect(run, retries):
    port = closed_port()
    names: list[str] = []

    async def trace(name: str, info: dict) -> None:
        names.append(name)

    async def main():
        async with client(HTTPXAsyncTransport(retries=retries)) as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(f"http://127.0.0.1:{port}/", extensions={"trace": trace})

    run(main())
    assert names.count("connection.connect_tcp.started") == retries + 1
    assert names.count("connection.connect_tcp.failed") == 1  # the last attempt's failure


def test_proxy_argument_sends_through_that_proxy(run, server):
    forwarded: list[bytes] = []

    def proxy_handler(conn) -> None:
        request = conn.read_request()
        forwarded.append(request.raw)
        conn.send(respond(200, b"from proxy"))

    proxy = server(proxy_handler)

    async def main():
        transport = HTTPXAsyncTransport(proxy=httpx.Proxy(proxy.url("/"), auth=("user", "p@ss")))
        async with client(transport) as c:
            return (await c.get("http://origin.invalid/path")).content

    assert run(main()) == b"from proxy"
    assert forwarded[0].startswith(b"GET http://origin.invalid/path HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in forwarded[0]


# -- request extensions ------------------------------------------------------------------------


def test_trace_coroutines_are_awaited_in_httpcore_order(run, server):
    srv = server(keep_alive_handler(b"ok"))
    events: list[tuple[str, dict]] = []
    awaited: list[str] = []

    async def trace(name: str, info: dict) -> None:
        events.append((name, info))
        await asyncio.sleep(0)
        awaited.append(name)

    async def main():
        async with client() as c:
            return (await c.get(srv.url("/"), extensions={"trace": trace})).content

    assert run(main()) == b"ok"
    names = [name for name, _ in events]
    assert names == ["connection.connect_tcp.started", "connection.connect_tcp.complete", *EXCHANGE]
    assert awaited == names  # every coroutine ran to its end, none left unawaited
    info = dict(events)
    assert info["connection.connect_tcp.started"]["port"] == srv.port
    version, status, reason, headers = info["http11.receive_response_headers.complete"]["return_value"]
    assert (version, status, reason) == (b"HTTP/1.1", 200, b"OK")
    assert (b"Content-Length", b"2") in headers


def test_trace_with_a_plain_callback_works_too(run, server):
    srv = server(keep_alive_handler(b"ok"))

    async def main():
        names: list[str] = []
        async with client() as c:
            await c.get(srv.url("/"))
            await c.get(srv.url("/"), extensions={"trace": lambda name, info: names.append(name)})
        return names

    assert run(main()) == EXCHANGE  # a reused connection: no connection.* events


def test_an_exception_in_a_trace_coroutine_propagates(run, server):
    srv = server(keep_alive_handler(b"ok"))

    class Boom(Exception):
        pass

    async def trace(name: str, info: dict) -> None:
        if name == "http11.receive_response_headers.complete":
            raise Boom(name)

    async def main():
        rt = roundtrip.AsyncTransport()
        async with client(HTTPXAsyncTransport(rt)) as c:
            with pytest.raises(Boom):
                await c.get(srv.url("/"), extensions={"trace": trace})
            stats = rt.pool_stats()["total"]
        await rt.aclose()
        return stats

    assert run(main())["active"] == 0


def test_trace_reports_a_failed_connect(run):
    port = closed_port()
    events: list[tuple[str, dict]] = []

    async def trace(name: str, info: dict) -> None:
        events.append((name, info))

    async def main():
        async with client() as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(f"http://127.0.0.1:{port}/", extensions={"trace": trace})

    run(main())
    assert [name for name, _ in events] == ["connection.connect_tcp.started", "connection.connect_tcp.failed"]
    assert isinstance(events[-1][1]["exception"], httpx.ConnectError)


def test_trace_reports_tls(run, server, certs):
    srv = server(tls_handler(certs.server_context(), keep_alive_handler(b"ok")))
    names: list[str] = []

    async def trace(name: str, info: dict) -> None:
        names.append(name)

    async def main():
        async with client(HTTPXAsyncTransport(verify=certs.client_context())) as c:
            await c.get(srv.url("/", scheme="https"), extensions={"trace": trace})

    run(main())
    assert names.index("connection.start_tls.started") == names.index("connection.connect_tcp.complete") + 1
    assert names.index("connection.start_tls.complete") == names.index("connection.start_tls.started") + 1


def test_sni_hostname_names_the_tls_server_while_connecting_to_the_url_host(run, server, certs):
    names: list[str] = []

    def remember_sni(ssl_socket, server_name, context) -> None:
        names.append(server_name)

    context = certs.server_context()
    context.sni_callback = remember_sni
    srv = server(tls_handler(context, keep_alive_handler(b"ok")))

    async def main():
        async with client(HTTPXAsyncTransport(verify=certs.client_context())) as c:
            return (await c.get(srv.url("/", scheme="https"), extensions={"sni_hostname": "localhost"})).content

    assert run(main()) == b"ok"
    assert names == ["localhost"]


def test_sni_hostname_with_a_given_transport_is_refused(run, server):
    srv = server(keep_alive_handler(b"ok"))

    async def main():
        rt = roundtrip.AsyncTransport()
        async with client(HTTPXAsyncTransport(rt)) as c:
            with pytest.raises(NotImplementedError, match="sni_hostname"):
                await c.get(srv.url("/", scheme="https"), extensions={"sni_hostname": "localhost"})
        await rt.aclose()

    run(main())


# -- errors httpx users expect -----------------------------------------------------------------


def test_port_out_of_range_is_a_connect_error_not_wrapped_around(run):
    async def main():
        async with client() as c:
            with pytest.raises(httpx.ConnectError, match="65536"):
                await c.get("http://127.0.0.1:65536/")

    run(main())


def test_closed_client_raises_runtime_error_as_httpx_does(run, server):
    srv = server(keep_alive_handler(b"ok"))

    async def main():
        adapter = HTTPXAsyncTransport()
        await adapter.aclose()
        with pytest.raises(RuntimeError, match="cannot send a request"):
            await adapter.handle_async_request(httpx.Request("GET", srv.url("/")))

    run(main())
