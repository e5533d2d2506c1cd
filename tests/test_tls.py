"""https against a local TLS server whose certificate comes from a ``trustme`` CA: verification on
by default, ``ssl_context``, SNI, hostname checks, and keep-alive over TLS."""

from __future__ import annotations

import io
import socket
import ssl
import threading

import pytest

import roundtrip

from helpers import RecordingDial, status_and_body
from servers import keep_alive_handler, respond

trustme = pytest.importorskip("trustme")

WAIT = 5.0
NAMES = ("127.0.0.1", "localhost", "example.test")


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def cert(ca):
    return ca.issue_cert(*NAMES)


@pytest.fixture
def client_ctx(ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


class TLSSide:
    """Server-side TLS for ScriptedServer handlers: a context that records SNI names, handshake
    failures and completed handshakes."""

    def __init__(self, cert) -> None:
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.ctx)
        self.sni: list[str | None] = []
        self.failures: list[BaseException] = []
        self.handshakes = 0
        self.failed = threading.Event()
        self.ctx.sni_callback = lambda sslsock, name, ctx: self.sni.append(name)

    def wrap(self, inner):
        """A handler that completes the server-side handshake, then runs ``inner``."""

        def handler(conn):
            try:
                conn.sock = self.ctx.wrap_socket(conn.sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.failures.append(exc)
                self.failed.set()
                return
            self.handshakes += 1
            inner(conn)

        return handler


@pytest.fixture
def tls(cert):
    return TLSSide(cert)


@pytest.fixture
def https_server(server, tls):
    def start(inner=None):
        return server(tls.wrap(inner or keep_alive_handler(b"secure")))

    return start


def test_https_get_with_the_ca_in_ssl_context(make_transport, https_server, client_ctx):
    srv = https_server()
    t = make_transport(ssl_context=client_ctx)
    assert status_and_body(t, srv.url("/s", scheme="https")) == (200, b"secure")
    assert srv.received[0].request_line == "GET /s HTTP/1.1"
    assert srv.received[0].header("Host") == f"127.0.0.1:{srv.port}"
    assert set(t.pool_stats()) == {f"https://127.0.0.1:{srv.port}", "total"}


def test_verification_is_on_by_default(transport, https_server, tls):
    srv = https_server()
    with pytest.raises(roundtrip.TLSError) as info:
        status_and_body(transport, srv.url(scheme="https"))
    assert isinstance(info.value, roundtrip.ConnectError)
    assert transport.pool_stats() == {"total": {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}}
    assert tls.failed.wait(WAIT)
    assert srv.received == []


def test_wrong_hostname_is_refused(make_transport, https_server, client_ctx, tls):
    srv = https_server()
    t = make_transport(ssl_context=client_ctx, dial=RecordingDial(srv.port))
    with pytest.raises(roundtrip.TLSError):
        status_and_body(t, f"https://wrong.test:{srv.port}/")
    assert tls.failed.wait(WAIT)
    assert srv.received == []


def test_certificate_names_are_accepted(make_transport, https_server, client_ctx):
    srv = https_server()
    t = make_transport(ssl_context=client_ctx, dial=RecordingDial(srv.port))
    for name in ("example.test", "EXAMPLE.test", "localhost"):
        assert status_and_body(t, f"https://{name}:{srv.port}/") == (200, b"secure")


def test_sni_carries_the_url_host(make_transport, https_server, client_ctx, tls):
    srv = https_server()
    dial = RecordingDial(srv.port)
    t = make_transport(ssl_context=client_ctx, dial=dial)
    assert status_and_body(t, "https://example.test/") == (200, b"secure")
    assert tls.sni == ["example.test"]
    assert dial.calls == [("example.test", 443)]
    assert srv.received[0].header("Host") == "example.test"
    assert set(t.pool_stats()) == {"https://example.test:443", "total"}


def test_sni_is_not_changed_by_a_host_header(make_transport, https_server, client_ctx, tls):
    srv = https_server()
    t = make_transport(ssl_context=client_ctx, dial=RecordingDial(srv.port))
    status_and_body(t, f"https://example.test:{srv.port}/", headers={"Host": "virtual.example"})
    assert tls.sni == ["example.test"]
    assert srv.received[0].header("Host") == "virtual.example"


def test_keep_alive_over_tls(make_transport, https_server, client_ctx, tls):
    srv = https_server()
    t = make_transport(ssl_context=client_ctx)
    for _ in range(5):
        assert status_and_body(t, srv.url(scheme="https")) == (200, b"secure")
    assert srv.accepted == 1
    assert tls.handshakes == 1
    assert t.pool_stats()["total"]["idle"] == 1


def upload_round_trip(make_transport, https_server, client_ctx, bodies):
    """POST each body, echoed back; ``bodies`` maps a name to ``(body, expected bytes)``.

    The client's ``wrote_headers`` hook waits until the server has read the head, so whatever
    the server sent after its handshake (TLS 1.3 session tickets) has reached the client before
    the body is written."""
    head_read = threading.Event()

    def echo(conn):
        conn.sock.settimeout(2.0)  # a request body that never comes fails the test quickly
        try:
            while True:
                while b"\r\n\r\n" not in conn.buffer:
                    conn._fill()
                head_read.set()
                request = conn.read_request()
                conn.send(respond(200, request.body))
        except socket.timeout:
            return  # the client shows the failure

    srv = https_server(echo)
    t = make_transport(ssl_context=client_ctx)
    trace = roundtrip.Trace(wrote_headers=lambda: head_read.wait(WAIT))
    for name, (body, expected) in bodies.items():
        assert status_and_body(t, srv.url(scheme="https"), "POST", body=body, trace=trace) == (200, expected), name
    assert srv.accepted == 1


MIB = bytes(range(256)) * 4096


def test_large_request_bodies_over_tls13(make_transport, https_server, client_ctx):
    upload_round_trip(make_transport, https_server, client_ctx, {
        "bytes": (MIB, MIB),
        "chunks": (iter([MIB[:1000], MIB[1000:]]), MIB),
    })


def test_small_file_body_over_tls13(make_transport, https_server, client_ctx):
    upload_round_trip(make_transport, https_server, client_ctx, {"file": (io.BytesIO(b"tiny"), b"tiny")})


def test_small_bytes_body_over_tls13(make_transport, https_server, client_ctx):
    upload_round_trip(make_transport, https_server, client_ctx, {"bytes": (b"x" * 1000, b"x" * 1000)})


def test_request_bodies_over_tls12(make_transport, https_server, client_ctx):
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    upload_round_trip(make_transport, https_server, client_ctx, {
        "bytes": (MIB, MIB),
        "chunks": (iter([MIB[:1000], MIB[1000:]]), MIB),
        "file": (io.BytesIO(b"tiny"), b"tiny"),
    })


def test_large_response_body_over_tls(make_transport, https_server, client_ctx):
    data = bytes(range(256)) * 4096

    def handler(conn):
        for _ in conn.requests():
            conn.send(respond(200, data))

    srv = https_server(handler)
    t = make_transport(ssl_context=client_ctx)
    assert status_and_body(t, srv.url(scheme="https")) == (200, data)
    assert status_and_body(t, srv.url(scheme="https")) == (200, data)
    assert srv.accepted == 1


def test_chunked_response_over_tls(make_transport, https_server, client_ctx):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")
        conn.wait_closed()

    srv = https_server(handler)
    t = make_transport(ssl_context=client_ctx)
    with t.round_trip(roundtrip.Request("GET", srv.url(scheme="https"))) as resp:
        assert resp.read() == b"abc"
        assert resp.trailers["x-t"] == "1"
    assert t.pool_stats()["total"]["idle"] == 1


def test_early_close_over_tls_closes_the_connection(make_transport, https_server, client_ctx):
    closed = threading.Event()

    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        if conn.wait_closed(WAIT):
            closed.set()

    srv = https_server(handler)
    t = make_transport(ssl_context=client_ctx)
    with t.round_trip(roundtrip.Request("GET", srv.url(scheme="https"))) as resp:
        assert resp.read(3) == b"xxx"
    assert t.pool_stats()["total"]["idle"] == 0
    assert closed.wait(WAIT)


def test_plain_http_server_on_an_https_url_is_a_tls_error(make_transport, server, client_ctx):
    def plain(conn):
        conn.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    srv = server(plain)
    t = make_transport(ssl_context=client_ctx)
    with pytest.raises(roundtrip.TLSError):
        status_and_body(t, srv.url(scheme="https"))


def test_http_and_https_have_different_pool_keys(make_transport, server, https_server, client_ctx):
    plain = server(keep_alive_handler(b"plain"))
    secure = https_server()
    t = make_transport(ssl_context=client_ctx)
    status_and_body(t, plain.url())
    status_and_body(t, secure.url(scheme="https"))
    keys = set(t.pool_stats()) - {"total"}
    assert keys == {f"http://127.0.0.1:{plain.port}", f"https://127.0.0.1:{secure.port}"}
