"""``HTTPXTransport`` as a drop-in for ``httpx.HTTPTransport``: its constructor arguments, the
``trace`` and ``sni_hostname`` request extensions, and the errors httpx users expect."""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
import threading
from typing import Any

import httpx
import pytest

import roundtrip
from roundtrip.adapters import HTTPXTransport

from proxies import tls_handler
from servers import ScriptedServer, keep_alive_handler, respond

FAST = httpx.Timeout(5.0)


# -- constructor arguments ---------------------------------------------------------------------


def test_every_http_transport_argument_is_accepted(server):
    srv = server(keep_alive_handler(b"ok"))
    transport = HTTPXTransport(
        verify=True, cert=None, trust_env=False, http1=True, http2=False,
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=3.0),
        proxy=None, uds=None, local_address="127.0.0.1", retries=1,
        socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)],
    )
    with httpx.Client(transport=transport, timeout=FAST) as client:
        assert client.get(srv.url("/")).content == b"ok"


def test_http2_alone_is_refused_clearly():
    with pytest.raises(NotImplementedError, match="HTTP/1.1 only"):
        HTTPXTransport(http1=False, http2=True)


def test_http2_beside_http1_speaks_http11(server):
    srv = server(keep_alive_handler(b"ok"))
    with httpx.Client(transport=HTTPXTransport(http2=True), timeout=FAST) as client:
        response = client.get(srv.url("/"))
    assert response.http_version == "HTTP/1.1" and response.content == b"ok"


def test_arguments_with_a_given_transport_are_refused(make_transport):
    with pytest.raises(ValueError, match="verify"):
        HTTPXTransport(make_transport(), verify=False)


def test_limits_map_to_per_host_connections_and_keepalive():
    transport = HTTPXTransport(limits=httpx.Limits(max_connections=3, max_keepalive_connections=2, keepalive_expiry=7.0))
    options = transport._options
    transport.close()
    assert options["max_conns_per_host"] == 3
    assert options["max_idle_conns"] == options["max_idle_conns_per_host"] == 2
    assert options["idle_conn_timeout"] == 7.0


def test_zero_keepalive_connections_means_no_keep_alive():
    transport = HTTPXTransport(limits=httpx.Limits(max_keepalive_connections=0))
    options = transport._options
    transport.close()
    assert options["disable_keep_alives"] is True


def test_verify_false_accepts_an_untrusted_certificate(server, certs):
    srv = server(tls_handler(certs.server_context(), keep_alive_handler(b"secret")))
    with httpx.Client(transport=HTTPXTransport(verify=False), timeout=FAST) as client:
        assert client.get(srv.url("/", scheme="https")).content == b"secret"


def test_verify_with_a_context_trusts_that_context(server, certs):
    srv = server(tls_handler(certs.server_context(), keep_alive_handler(b"secret")))
    with httpx.Client(transport=HTTPXTransport(verify=certs.client_context()), timeout=FAST) as client:
        assert client.get(srv.url("/", scheme="https")).content == b"secret"


def test_default_verification_rejects_an_untrusted_certificate(server, certs):
    srv = server(tls_handler(certs.server_context(), keep_alive_handler(b"secret")))
    with httpx.Client(transport=HTTPXTransport(), timeout=FAST) as client:
        with pytest.raises(httpx.ConnectError):
            client.get(srv.url("/", scheme="https"))


def test_uds_connects_to_the_unix_socket_whatever_the_host():
    path = os.path.join(tempfile.mkdtemp(), "server.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            seen.append(data)
            conn.sendall(respond(200, b"via unix"))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with httpx.Client(transport=HTTPXTransport(uds=path), timeout=FAST) as client:
            response = client.get("http://example.invalid/x")
    finally:
        thread.join(5)
        listener.close()
        os.unlink(path)
    assert response.content == b"via unix"
    assert b"Host: example.invalid\r\n" in seen[0]


def test_local_address_is_the_source_of_the_connection(server):
    peers: list[str] = []

    def handler(conn) -> None:
        peers.append(conn.sock.getpeername()[0])
        keep_alive_handler(b"ok")(conn)

    srv = server(handler)
    with httpx.Client(transport=HTTPXTransport(local_address="127.0.0.2"), timeout=FAST) as client:
        client.get(srv.url("/")).read()
    assert peers == ["127.0.0.2"]


def test_socket_options_are_set_before_connecting():
    applied: list[Any] = []

    class Spy(list):
        def __iter__(self):
            applied.append("iterated")
            return super().__iter__()

    options = Spy([(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)])
    transport = HTTPXTransport(socket_options=options)
    dial = transport._options["dial"]
    transport.close()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        sock = dial("127.0.0.1", listener.getsockname()[1], 5.0)
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        finally:
            sock.close()
    finally:
        listener.close()


@pytest.mark.parametrize("retries", [0, 2])
def test_retries_connect_again_after_a_refused_connect(retries):
    """httpcore's retries: a connect that fails is tried again (0 s, then 0.5 s later)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    holder.close()  # nothing listens: every connect is refused
    names: list[str] = []
    with httpx.Client(transport=HTTPXTransport(retries=retries), timeout=FAST) as client:
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://127.0.0.1:{port}/", extensions={"trace": lambda name, info: names.append(name)})
    assert names.count("connection.connect_tcp.started") == retries + 1
    assert names.count("connection.connect_tcp.failed") == 1  # the last attempt's failure


def test_retries_zero_fails_at_once(server):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    holder.close()
    with httpx.Client(transport=HTTPXTransport(), timeout=FAST) as client:
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://127.0.0.1:{port}/")


def test_proxy_argument_sends_through_that_proxy(server):
    forwarded: list[bytes] = []

    def proxy_handler(conn) -> None:
        request = conn.read_request()
        forwarded.append(request.raw)
        conn.send(respond(200, b"from proxy"))

    proxy = server(proxy_handler)
    with httpx.Client(transport=HTTPXTransport(proxy=httpx.Proxy(proxy.url("/"), auth=("user", "p@ss"))), timeout=FAST) as client:
        response = client.get("http://origin.invalid/path")
    assert response.content == b"from proxy"
    assert forwarded[0].startswith(b"GET http://origin.invalid/path HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in forwarded[0]


def test_default_transport_never_reads_proxy_variables(server, monkeypatch):
    """httpx.HTTPTransport goes direct unless given proxy=: the Client handles the environment."""
    srv = server(keep_alive_handler(b"direct"))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    transport = HTTPXTransport()
    try:
        request = httpx.Request("GET", srv.url("/"))
        response = transport.handle_request(request)
        response.read()
        response.close()
    finally:
        transport.close()
    assert response.content == b"direct"


def test_unsupported_proxy_scheme_is_refused():
    with pytest.raises(ValueError):
        HTTPXTransport(proxy="ftp://127.0.0.1")


# -- request extensions ------------------------------------------------------------------------


def test_trace_extension_reports_httpcore_events_in_order(server):
    srv = server(keep_alive_handler(b"ok"))
    events: list[tuple[str, dict]] = []
    with httpx.Client(transport=HTTPXTransport(), timeout=FAST) as client:
        response = client.get(srv.url("/"), extensions={"trace": lambda name, info: events.append((name, info))})
    names = [name for name, _ in events]
    assert names == [
        "connection.connect_tcp.started",
        "connection.connect_tcp.complete",
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
    info = dict(events)
    assert info["connection.connect_tcp.started"]["host"] == "127.0.0.1"
    assert info["connection.connect_tcp.started"]["port"] == srv.port
    assert info["connection.connect_tcp.complete"]["return_value"].get_extra_info("server_addr") == ("127.0.0.1", srv.port)
    assert info["http11.send_request_headers.started"]["request"].method == b"GET"
    version, status, reason, headers = info["http11.receive_response_headers.complete"]["return_value"]
    assert (version, status, reason) == (b"HTTP/1.1", 200, b"OK")
    assert (b"Content-Length", b"2") in headers
    assert response.content == b"ok"


def test_trace_extension_on_a_reused_connection_has_no_connect_events(server):
    srv = server(keep_alive_handler(b"ok"))
    with httpx.Client(transport=HTTPXTransport(), timeout=FAST) as client:
        client.get(srv.url("/")).read()
        names: list[str] = []
        client.get(srv.url("/"), extensions={"trace": lambda name, info: names.append(name)})
    assert names[0] == "http11.send_request_headers.started"
    assert not any(name.startswith("connection.") for name in names)


def test_trace_extension_reports_a_failed_connect():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    holder.close()
    events: list[tuple[str, dict]] = []
    with httpx.Client(transport=HTTPXTransport(), timeout=FAST) as client:
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://127.0.0.1:{port}/", extensions={"trace": lambda n, i: events.append((n, i))})
    assert [name for name, _ in events] == ["connection.connect_tcp.started", "connection.connect_tcp.failed"]
    assert isinstance(events[-1][1]["exception"], httpx.ConnectError)


def test_trace_extension_reports_tls(server, certs):
    srv = server(tls_handler(certs.server_context(), keep_alive_handler(b"ok")))
    names: list[str] = []
    with httpx.Client(transport=HTTPXTransport(verify=certs.client_context()), timeout=FAST) as client:
        client.get(srv.url("/", scheme="https"), extensions={"trace": lambda name, info: names.append(name)})
    assert names.index("connection.start_tls.started") == names.index("connection.connect_tcp.complete") + 1
    assert names.index("connection.start_tls.complete") == names.index("connection.start_tls.started") + 1


def test_httpx_command_line_prints_status_line_and_headers(server):
    pytest.importorskip("rich")
    pytest.importorskip("click")
    from httpx import _main

    srv = server(keep_alive_handler(b"hi", [("X-Marker", "yes")]))
    lines: list[str] = []
    events = []

    def trace(name: str, info: dict) -> None:
        events.append(name)
        if name == "http11.receive_response_headers.complete":
            version, status, reason, headers = info["return_value"]
            lines.append(_main.format_response_headers(version, status, reason, headers))

    with httpx.Client(transport=HTTPXTransport(), timeout=FAST) as client:
        client.get(srv.url("/"), extensions={"trace": trace})
    assert lines and lines[0].startswith("HTTP/1.1 200 OK")
    assert "X-Marker: yes" in lines[0]


def test_sni_hostname_names_the_tls_server_while_connecting_to_the_url_host(server, certs):
    names: list[str] = []

    def remember_sni(ssl_socket, server_name, context) -> None:
        names.append(server_name)

    context = certs.server_context()
    context.sni_callback = remember_sni
    srv = server(tls_handler(context, keep_alive_handler(b"ok")))
    host_headers: list[str] = []
    with httpx.Client(transport=HTTPXTransport(verify=certs.client_context()), timeout=FAST) as client:
        response = client.get(srv.url("/", scheme="https"), extensions={"sni_hostname": "localhost"})
    assert response.content == b"ok"
    assert names == ["localhost"]


def test_sni_hostname_with_a_given_transport_is_refused(make_transport, server):
    srv = server(keep_alive_handler(b"ok"))
    with httpx.Client(transport=HTTPXTransport(make_transport()), timeout=FAST) as client:
        with pytest.raises(NotImplementedError, match="sni_hostname"):
            client.get(srv.url("/", scheme="https"), extensions={"sni_hostname": "localhost"})


# -- errors httpx users expect -----------------------------------------------------------------


@pytest.mark.parametrize("port", [65536, 123456])
def test_port_out_of_range_is_a_connect_error_not_wrapped_around(port, counting_dial):
    transport = HTTPXTransport(roundtrip.Transport(dial=counting_dial, disable_compression=True))
    with httpx.Client(transport=transport, timeout=FAST) as client:
        with pytest.raises(httpx.ConnectError, match=str(port)):
            client.get(f"http://127.0.0.1:{port}/")
    transport._transport.close()
    assert counting_dial.calls == []  # nothing dialed, certainly not port % 65536


def test_unsupported_scheme_has_httpx_wording():
    transport = HTTPXTransport()
    try:
        with pytest.raises(httpx.UnsupportedProtocol, match=r"Request URL has an unsupported protocol 'ftp://'\."):
            transport.handle_request(httpx.Request("GET", "ftp://127.0.0.1/"))
    finally:
        transport.close()
