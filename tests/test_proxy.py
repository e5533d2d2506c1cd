"""Requests through proxies: real tinyproxy (HTTP forwarding and CONNECT) and microsocks
(SOCKS5), an https proxy made by a TLS front, and scripted proxies for exact bytes and faults."""

from __future__ import annotations

import base64
import socket
import threading
import time
from typing import Any

import pytest

import roundtrip
from helpers import status_and_body
from proxies import SocksRecord, TLSFront, socks_handler, tls_handler, tunnel_handler
from servers import IO_TIMEOUT, keep_alive_handler, respond


class Recorder:
    """A Trace recording (hook, args) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple]] = []
        hooks = {name: self._hook(name) for name in roundtrip._trace.HOOKS}
        self.trace = roundtrip.Trace(**hooks)

    def _hook(self, name: str) -> Any:
        def hook(*args: Any) -> None:
            self.events.append((name, args))

        return hook

    def args(self, name: str) -> list[tuple]:
        return [args for hook, args in self.events if hook == name]

    def names(self) -> list[str]:
        return [hook for hook, _ in self.events]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def tls_origin(server, certs):
    """``tls_origin(body)``: a keep-alive https origin on 127.0.0.1 with a trustme certificate."""

    def start(body: bytes = b"secure") -> Any:
        return server(tls_handler(certs.server_context(), keep_alive_handler(body)))

    return start


@pytest.fixture
def tls_front(certs):
    fronts: list[TLSFront] = []

    def start(upstream_port: int) -> TLSFront:
        front = TLSFront(upstream_port, certs.server_context())
        fronts.append(front)
        return front

    yield start
    for front in fronts:
        front.stop()


# -- tinyproxy: HTTP forwarding and CONNECT ------------------------------------------------------


def test_http_origin_through_tinyproxy_uses_absolute_form(make_transport, server, tinyproxy):
    origin = server(keep_alive_handler(b"hello"))
    recorder = Recorder()
    t = make_transport(proxy=roundtrip.proxy_url(tinyproxy.url()))
    assert status_and_body(t, origin.url("/a?b=c"), trace=recorder.trace) == (200, b"hello")
    key = f"http://127.0.0.1:{tinyproxy.port} via http://127.0.0.1:{tinyproxy.port}"
    assert recorder.args("get_conn") == [(key,)]
    assert recorder.args("connect_start") == [(("127.0.0.1", tinyproxy.port),)]
    assert recorder.args("connect_done") == [(("127.0.0.1", tinyproxy.port), None)]
    assert "tls_handshake_start" not in recorder.names() and "dns_start" not in recorder.names()
    assert tinyproxy.wait_for_log(f"GET http://127.0.0.1:{origin.port}/a?b=c HTTP/1.1")
    assert "tinyproxy" in origin.received[0].header("via", "")


def test_https_origin_through_tinyproxy_tunnels_tls_to_the_origin(make_transport, tls_origin, tinyproxy, certs):
    origin = tls_origin(b"secure")
    recorder = Recorder()
    t = make_transport(proxy=roundtrip.proxy_url(tinyproxy.url()), ssl_context=certs.client_context())
    assert status_and_body(t, origin.url("/s", scheme="https"), trace=recorder.trace) == (200, b"secure")
    key = f"https://127.0.0.1:{origin.port} via http://127.0.0.1:{tinyproxy.port}"
    assert recorder.args("get_conn") == [(key,)]
    assert recorder.args("connect_start") == [(("127.0.0.1", tinyproxy.port),)]
    assert recorder.args("tls_handshake_done") == [(None,)]
    names = recorder.names()
    assert names.index("connect_done") < names.index("tls_handshake_start") < names.index("wrote_headers")
    assert tinyproxy.wait_for_log(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1")
    assert origin.received[0].request_line == "GET /s HTTP/1.1"
    assert t.pool_stats()[key]["idle"] == 1

    again = Recorder()
    assert status_and_body(t, origin.url("/t", scheme="https"), trace=again.trace) == (200, b"secure")
    assert again.args("got_conn")[0][0].reused
    assert origin.accepted == 1


def test_tls_inside_the_tunnel_is_verified_against_the_origin(make_transport, tls_origin, tinyproxy):
    origin = tls_origin()
    t = make_transport(proxy=roundtrip.proxy_url(tinyproxy.url()))  # trustme's CA is not trusted
    with pytest.raises(roundtrip.TLSError):
        status_and_body(t, origin.url("/", scheme="https"))


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_credentials_reach_tinyproxy_but_never_the_origin(make_transport, server, tls_origin, tinyproxy_auth, certs, scheme):
    origin = tls_origin() if scheme == "https" else server(keep_alive_handler(b"secure"))
    t = make_transport(proxy=roundtrip.proxy_url(tinyproxy_auth.url(userinfo="alice:s3cret")), ssl_context=certs.client_context())
    assert status_and_body(t, origin.url("/", scheme=scheme)) == (200, b"secure")  # tinyproxy accepted them
    assert [r.header("proxy-authorization") for r in origin.received] == [None]
    assert not any("s3cret" in key for key in t.pool_stats())


def test_wrong_credentials_make_tinyproxy_refuse_the_connect(make_transport, tls_origin, tinyproxy_auth, certs):
    origin = tls_origin()
    t = make_transport(proxy=roundtrip.proxy_url(tinyproxy_auth.url(userinfo="alice:wrong")), ssl_context=certs.client_context())
    # tinyproxy 1.11 answers bad credentials with 401 rather than 407.
    with pytest.raises(roundtrip.ProxyError, match=r"refused CONNECT to 127\.0\.0\.1:\d+: HTTP/1\.[01] 40[17] "):
        status_and_body(t, origin.url("/", scheme="https"))
    assert origin.received == []


def test_wrong_credentials_on_a_forwarded_request_get_the_proxys_answer_as_response(make_transport, server, tinyproxy_auth):
    # Go: for an absolute-form request the proxy's answer is the response, not an error.
    origin = server(keep_alive_handler(b"never"))
    t = make_transport(proxy=roundtrip.proxy_url(tinyproxy_auth.url(userinfo="alice:wrong")))
    status, _ = status_and_body(t, origin.url("/"))
    assert status in (401, 407)
    assert origin.received == []


# -- microsocks: SOCKS5 --------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_http_and_https_origins_through_microsocks(make_transport, server, tls_origin, microsocks, certs, scheme):
    plain = server(keep_alive_handler(b"plain"))
    secure = tls_origin(b"secure")
    t = make_transport(proxy=roundtrip.proxy_url(microsocks.url(scheme)), ssl_context=certs.client_context())
    recorder = Recorder()
    assert status_and_body(t, plain.url("/p"), trace=recorder.trace) == (200, b"plain")
    assert recorder.args("connect_start") == [(("127.0.0.1", microsocks.port),)]
    assert status_and_body(t, secure.url("/s", scheme="https")) == (200, b"secure")
    assert status_and_body(t, plain.url("/p")) == (200, b"plain")
    assert plain.accepted == 1  # the tunnel was pooled and reused
    stats = t.pool_stats()
    assert stats[f"http://127.0.0.1:{plain.port} via {scheme}://127.0.0.1:{microsocks.port}"]["idle"] == 1
    assert stats[f"https://127.0.0.1:{secure.port} via {scheme}://127.0.0.1:{microsocks.port}"]["idle"] == 1


@pytest.mark.parametrize("scheme, resolved_here", [("socks5", True), ("socks5h", False)])
def test_socks5_resolves_names_here_and_socks5h_leaves_them_to_the_proxy(make_transport, tls_origin, microsocks, certs, scheme, resolved_here):
    origin = tls_origin(b"by name")
    recorder = Recorder()
    t = make_transport(proxy=roundtrip.proxy_url(microsocks.url(scheme)), ssl_context=certs.client_context())
    assert status_and_body(t, f"https://localhost:{origin.port}/", trace=recorder.trace) == (200, b"by name")
    looked_up = [args[0] for args in recorder.args("dns_start")]
    assert looked_up == (["localhost"] if resolved_here else [])


def test_microsocks_with_username_and_password(make_transport, server, microsocks_auth):
    origin = server(keep_alive_handler(b"authed"))
    t = make_transport(proxy=roundtrip.proxy_url(microsocks_auth.url(userinfo="bob:hunter2")))
    assert status_and_body(t, origin.url("/")) == (200, b"authed")


def test_microsocks_rejects_a_wrong_password(make_transport, server, microsocks_auth):
    origin = server(keep_alive_handler(b"never"))
    t = make_transport(proxy=roundtrip.proxy_url(microsocks_auth.url(userinfo="bob:wrong")))
    with pytest.raises(roundtrip.ProxyError, match="rejected the username and password"):
        status_and_body(t, origin.url("/"))
    assert origin.accepted == 0


def test_microsocks_demanding_auth_refuses_a_client_without_credentials(make_transport, server, microsocks_auth):
    origin = server(keep_alive_handler(b"never"))
    t = make_transport(proxy=roundtrip.proxy_url(microsocks_auth.url()))
    with pytest.raises(roundtrip.ProxyError, match="none of the offered authentication methods"):
        status_and_body(t, origin.url("/"))


# -- https proxies (TLS to the proxy first) ---------------------------------------------------------


def test_http_origin_through_an_https_proxy(make_transport, server, tinyproxy, tls_front, certs):
    origin = server(keep_alive_handler(b"hello"))
    front = tls_front(tinyproxy.port)
    recorder = Recorder()
    t = make_transport(proxy=roundtrip.proxy_url(front.url()), ssl_context=certs.client_context())
    assert status_and_body(t, origin.url("/a"), trace=recorder.trace) == (200, b"hello")
    assert recorder.args("connect_start") == [(("127.0.0.1", front.port),)]
    assert recorder.args("tls_handshake_done") == [(None,)]  # to the proxy
    assert recorder.args("get_conn") == [(f"http://127.0.0.1:{front.port} via https://127.0.0.1:{front.port}",)]
    assert tinyproxy.wait_for_log(f"GET http://127.0.0.1:{origin.port}/a HTTP/1.1")


def test_https_origin_through_an_https_proxy_is_tls_inside_tls(make_transport, server, certs, tls_front, tinyproxy):
    big = bytes(range(256)) * 4096  # 1 MiB: many TLS records through both layers
    origin = server(tls_handler(certs.server_context(), keep_alive_handler(big)))
    front = tls_front(tinyproxy.port)
    recorder = Recorder()
    t = make_transport(proxy=roundtrip.proxy_url(front.url()), ssl_context=certs.client_context())
    assert status_and_body(t, origin.url("/1", scheme="https"), trace=recorder.trace) == (200, big)
    assert recorder.args("tls_handshake_done") == [(None,), (None,)]  # proxy, then origin
    assert tinyproxy.wait_for_log(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1")
    payload = b"p" * 300_000
    with t.round_trip(roundtrip.Request("POST", origin.url("/2", scheme="https"), body=payload)) as resp:
        assert resp.read() == big
    assert origin.received[1].body == payload
    assert origin.accepted == 1 and front.accepted == 1  # reused, both layers kept


def test_large_first_post_inside_tls_inside_tls_is_not_stopped_by_session_tickets(make_transport, server, certs, tls_front, tinyproxy):
    # The origin's TLS 1.3 session tickets come after its handshake, while the body goes out:
    # they make the socket readable but are no answer, so the body must go on to the end.
    body_started = threading.Event()

    def handler(conn):
        conn.read_head()
        body_started.set()  # the tickets went out before this: they are on their way back
        body = conn.read_exactly(300_000)
        conn.send(respond(200, b"%d" % body.count(b"p")))

    def body():
        yield b"p" * 1000
        assert body_started.wait(IO_TIMEOUT)
        for _ in range(299):
            yield b"p" * 1000

    origin = server(tls_handler(certs.server_context(), handler))
    front = tls_front(tinyproxy.port)
    t = make_transport(proxy=roundtrip.proxy_url(front.url()), ssl_context=certs.client_context())
    headers = {"Content-Length": "300000"}
    request = roundtrip.Request("POST", origin.url("/", scheme="https"), headers=headers, body=body(), context=roundtrip.Context(timeout=10))
    with t.round_trip(request) as resp:
        assert (resp.status_code, resp.read()) == (200, b"300000")


def test_https_proxy_certificate_is_verified(make_transport, server, tinyproxy, tls_front):
    origin = server(keep_alive_handler(b"never"))
    front = tls_front(tinyproxy.port)
    t = make_transport(proxy=roundtrip.proxy_url(front.url()))  # default trust store
    with pytest.raises(roundtrip.TLSError):
        status_and_body(t, origin.url("/"))


def test_cancel_during_tls_inside_tls_handshake(make_transport, server, certs, tinyproxy, tls_front):
    # The origin accepts TCP but never answers the ClientHello.
    stall = threading.Event()
    origin = server(lambda conn: stall.wait(5))
    front = tls_front(tinyproxy.port)
    t = make_transport(proxy=roundtrip.proxy_url(front.url()), ssl_context=certs.client_context())
    started = time.monotonic()
    with pytest.raises(roundtrip.DeadlineExceeded):
        status_and_body(t, origin.url("/", scheme="https"), context=roundtrip.Context(timeout=0.5))
    assert time.monotonic() - started < 3
    stall.set()


def test_deadline_while_waiting_for_a_response_inside_tls_inside_tls(make_transport, server, certs, tinyproxy, tls_front):
    stall = threading.Event()

    def handler(conn):
        conn.read_request()
        stall.wait(5)  # never answers

    origin = server(tls_handler(certs.server_context(), handler))
    front = tls_front(tinyproxy.port)
    t = make_transport(proxy=roundtrip.proxy_url(front.url()), ssl_context=certs.client_context())
    started = time.monotonic()
    with pytest.raises(roundtrip.DeadlineExceeded):
        status_and_body(t, origin.url("/", scheme="https"), context=roundtrip.Context(timeout=0.5))
    assert time.monotonic() - started < 3
    stall.set()


# -- scripted proxies: exact bytes -----------------------------------------------------------------


def test_connect_request_carries_host_and_credentials(make_transport, server, tls_origin, certs):
    origin = tls_origin()
    connects: list[bytes] = []
    proxy = server(tunnel_handler(connects))
    # Percent-encoded userinfo is decoded before it is encoded for Basic.
    t = make_transport(proxy=roundtrip.proxy_url(f"http://us%65r:p%40ss%20word@127.0.0.1:{proxy.port}"), ssl_context=certs.client_context())
    assert status_and_body(t, origin.url("/", scheme="https")) == (200, b"secure")
    lines = connects[0].decode("latin-1").split("\r\n")
    assert lines[0] == f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1"
    assert f"Host: 127.0.0.1:{origin.port}" in lines
    assert f"Proxy-Authorization: {basic('user', 'p@ss word')}" in lines
    assert origin.received[0].header("proxy-authorization") is None
    assert "word" not in "".join(t.pool_stats())


def test_absolute_form_request_carries_proxy_credentials(make_transport, server):
    proxy = server(keep_alive_handler(b"from proxy"))
    t = make_transport(proxy=roundtrip.proxy_url(f"http://user:pw@127.0.0.1:{proxy.port}"))
    assert status_and_body(t, "http://origin.test:8080/x?y") == (200, b"from proxy")
    received = proxy.received[0]
    assert received.request_line == "GET http://origin.test:8080/x?y HTTP/1.1"
    assert received.header("host") == "origin.test:8080"
    assert received.header("proxy-authorization") == basic("user", "pw")


def test_forwarding_proxy_connection_is_shared_across_origins(make_transport, server):
    proxy = server(keep_alive_handler(b"ok"))
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    for url in ("http://one.test/", "http://two.test:8080/", "http://one.test/again"):
        assert status_and_body(t, url) == (200, b"ok")
    assert proxy.accepted == 1
    assert [r.connection for r in proxy.received] == [0, 0, 0]
    assert t.pool_stats()[f"http://127.0.0.1:{proxy.port} via http://127.0.0.1:{proxy.port}"]["idle"] == 1


def test_connections_are_not_shared_across_proxy_credentials(make_transport, server):
    proxy = server(keep_alive_handler(b"ok"))
    users = iter(["ann", "ann", "ben"])
    t = make_transport(proxy=lambda request: f"http://{next(users)}:pw@127.0.0.1:{proxy.port}")
    for _ in range(3):
        assert status_and_body(t, "http://origin.test/") == (200, b"ok")
    assert [r.connection for r in proxy.received] == [0, 0, 1]
    assert [r.header("proxy-authorization") for r in proxy.received] == [basic("ann", "pw")] * 2 + [basic("ben", "pw")]
    stats = t.pool_stats()
    assert stats["total"]["idle"] == 2 and "pw" not in "".join(stats)


def test_connections_are_not_shared_across_proxies(make_transport, server, tls_origin, certs):
    origin = tls_origin()
    first: list[bytes] = []
    second: list[bytes] = []
    proxies = [server(tunnel_handler(first)), server(tunnel_handler(second))]
    which = iter([0, 1, 0])
    t = make_transport(proxy=lambda request: f"http://127.0.0.1:{proxies[next(which)].port}", ssl_context=certs.client_context())
    for _ in range(3):
        assert status_and_body(t, origin.url("/", scheme="https")) == (200, b"secure")
    assert (len(first), len(second)) == (1, 1)
    assert origin.accepted == 2


def test_retry_rules_are_unchanged_through_a_proxy(make_transport, server):
    def closes_after_one(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.read_request()  # the reused connection's request is read, then dropped

    proxy = server([closes_after_one, keep_alive_handler(b"second")])
    recorder = Recorder()
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    assert status_and_body(t, "http://origin.test/") == (200, b"first")
    assert status_and_body(t, "http://origin.test/", trace=recorder.trace) == (200, b"second")
    assert [args[1] for args in recorder.args("retried")] == [1]


def test_post_through_a_proxy_is_not_retried_after_the_request_was_read(make_transport, server):
    def closes_after_one(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.read_request()

    proxy = server([closes_after_one, keep_alive_handler(b"second")])
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    assert status_and_body(t, "http://origin.test/") == (200, b"first")
    with pytest.raises(roundtrip.ServerDisconnected) as info:
        t.round_trip(roundtrip.Request("POST", "http://origin.test/", body=b"x"))
    assert info.value.conn_reused


# -- scripted proxies: refusals and faults ----------------------------------------------------------


def refusing(status_line: bytes, closed: list[bool]) -> Any:
    def handler(conn):
        conn.read_head()
        conn.send(status_line + b"\r\nContent-Length: 5\r\nProxy-Authenticate: Basic\r\n\r\nnope!")
        closed.append(conn.wait_closed(5))

    return handler


@pytest.mark.parametrize(
    "status_line",
    [b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 407 Proxy Authentication Required", b"HTTP/1.0 502 Bad Gateway"],
)
def test_refused_connect_raises_proxy_error_with_the_status_line(make_transport, server, status_line):
    closed: list[bool] = []
    proxy = server(refusing(status_line, closed))
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError) as info:
        status_and_body(t, "https://origin.test/")
    assert status_line.decode() in str(info.value)
    assert isinstance(info.value, roundtrip.ConnectError)
    proxy.close()
    assert closed == [True]  # the connection was closed, not kept
    assert t.pool_stats()["total"] == {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}


def test_proxy_closing_before_answering_connect(make_transport, server):
    proxy = server(lambda conn: conn.read_head())
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError, match="without answering CONNECT"):
        status_and_body(t, "https://origin.test/")


def test_proxy_closing_inside_the_connect_response_head(make_transport, server):
    def handler(conn):
        conn.read_head()
        conn.send(b"HTTP/1.1 200 Connection established\r\nX-Half: ")

    proxy = server(handler)
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError, match="bad CONNECT response"):
        status_and_body(t, "https://origin.test/")


def test_malformed_connect_response(make_transport, server):
    def handler(conn):
        conn.read_head()
        conn.send(b"SSH-2.0-OpenSSH\r\n\r\n")

    proxy = server(handler)
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError, match="bad CONNECT response"):
        status_and_body(t, "https://origin.test/")


def test_endless_connect_response_head_is_bounded_by_max_response_header_bytes(make_transport, server):
    sent = [0]

    def handler(conn):
        conn.read_head()
        conn.send(b"HTTP/1.1 200 Connection established\r\n")
        filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        while sent[0] < 10_000_000:
            conn.send(filler)
            sent[0] += len(filler)

    proxy = server(handler)
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"), max_response_header_bytes=16384)
    with pytest.raises(roundtrip.ProxyError, match="max_response_header_bytes") as info:
        status_and_body(t, "https://origin.test/")
    assert isinstance(info.value.__cause__, roundtrip.HeaderTooLarge)
    proxy.close()
    assert sent[0] < 10_000_000


def test_bytes_after_the_connect_response_are_refused(make_transport, server):
    def handler(conn):
        conn.read_head()
        conn.send(b"HTTP/1.1 200 Connection established\r\n\r\nunexpected")
        conn.wait_closed(5)

    proxy = server(handler)
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError, match="sent data after its CONNECT response"):
        status_and_body(t, "https://origin.test/")


@pytest.mark.parametrize("drip", [False, True], ids=["whole", "byte_at_a_time"])
def test_connect_response_with_fields_and_informational_heads(make_transport, server, tls_origin, certs, drip):
    origin = tls_origin()
    connects: list[bytes] = []
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\nProxy-Agent: scripted\r\nContent-Length: 0\r\n\r\n"
    proxy = server(tunnel_handler(connects, answer, drip=drip))
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"), ssl_context=certs.client_context())
    assert status_and_body(t, origin.url("/", scheme="https")) == (200, b"secure")
    assert len(connects) == 1


def test_proxy_handshake_of_a_request_without_context_is_bounded(make_transport, server, monkeypatch):
    # Go's dialConn gives a CONNECT that nothing can cancel one minute; shortened here.
    monkeypatch.setattr(roundtrip._dial, "_UNBOUNDED_HANDSHAKE_LIMIT", 0.3)
    proxy = server(lambda conn: conn.wait_closed(5))
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    started = time.monotonic()
    with pytest.raises(roundtrip.ConnectTimeout, match="did not answer"):
        status_and_body(t, "https://origin.test/")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("scheme", ["http", "socks5h"])
def test_silent_proxy_is_bounded_by_the_context_deadline(make_transport, server, scheme):
    closed: list[bool] = []

    def silent(conn):
        closed.append(conn.wait_closed(5))  # reads what comes, answers nothing

    proxy = server(silent)
    t = make_transport(proxy=roundtrip.proxy_url(f"{scheme}://127.0.0.1:{proxy.port}"))
    started = time.monotonic()
    with pytest.raises(roundtrip.DeadlineExceeded):
        status_and_body(t, "https://origin.test/", context=roundtrip.Context(timeout=0.3))
    assert time.monotonic() - started < 3  # 0.3 s and a dial tick, on a busy machine
    proxy.close()
    assert closed == [True]  # the dial gave up and closed its socket


def test_silent_proxy_is_bounded_by_cancel(make_transport, server):
    proxy = server(lambda conn: conn.wait_closed(5))
    t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    context = roundtrip.Context()
    timer = threading.Timer(0.2, context.cancel)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(roundtrip.Cancelled):
            status_and_body(t, "https://origin.test/", context=context)
    finally:
        timer.join()
    assert time.monotonic() - started < 3


# -- scripted SOCKS5 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme, url, address_type, address",
    [
        ("socks5", "http://localhost:{port}/", 1, "127.0.0.1"),
        ("socks5h", "http://localhost:{port}/", 3, "localhost"),
        ("socks5h", "http://127.0.0.1:{port}/", 1, "127.0.0.1"),
        ("socks5h", "http://[::1]:{port}/", 4, "::1"),
        ("socks5h", "http://Example.TEST:{port}/", 3, "example.test"),
    ],
)
def test_socks_request_names_the_target_as_the_scheme_asks(make_transport, server, scheme, url, address_type, address):
    records: list[SocksRecord] = []
    proxy = server(socks_handler(records, respond_with=respond(200, b"socks")))
    t = make_transport(proxy=roundtrip.proxy_url(f"{scheme}://127.0.0.1:{proxy.port}"))
    assert status_and_body(t, url.format(port=8081)) == (200, b"socks")
    record = records[0]
    assert (record.methods, record.address_type, record.address, record.port) == (b"\x00", address_type, address, 8081)
    assert record.credentials is None
    assert proxy.received[0].request_line == "GET / HTTP/1.1"  # origin-form inside the tunnel


@pytest.mark.parametrize("drip", [False, True], ids=["whole", "byte_at_a_time"])
def test_socks_credentials_follow_rfc_1929(make_transport, server, drip):
    records: list[SocksRecord] = []
    proxy = server(socks_handler(records, respond_with=respond(200, b"socks"), drip=drip))
    t = make_transport(proxy=roundtrip.proxy_url(f"socks5h://%C3%A9mile:p%3Ass@127.0.0.1:{proxy.port}"))
    assert status_and_body(t, "http://origin.test/") == (200, b"socks")
    assert records[0].methods == b"\x00\x02"
    assert records[0].credentials == ("émile".encode(), b"p:ss")
    assert proxy.received[0].header("proxy-authorization") is None


def test_socks_server_choosing_no_auth_skips_credentials(make_transport, server):
    records: list[SocksRecord] = []
    proxy = server(socks_handler(records, method=0, respond_with=respond(200, b"socks")))
    t = make_transport(proxy=roundtrip.proxy_url(f"socks5://u:p@127.0.0.1:{proxy.port}"))
    assert status_and_body(t, "http://127.0.0.1:9/") == (200, b"socks")
    assert records[0].credentials is None


@pytest.mark.parametrize(
    "reply, meaning",
    [
        (0x01, "general SOCKS server failure"),
        (0x02, "connection not allowed by ruleset"),
        (0x03, "network unreachable"),
        (0x04, "host unreachable"),
        (0x05, "connection refused"),
        (0x06, "TTL expired"),
        (0x07, "command not supported"),
        (0x08, "address type not supported"),
        (0x42, "unassigned reply code"),
    ],
)
def test_socks_refusals_name_the_rfc_1928_reply(make_transport, server, reply, meaning):
    records: list[SocksRecord] = []
    proxy = server(socks_handler(records, reply=reply))
    t = make_transport(proxy=roundtrip.proxy_url(f"socks5h://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError) as info:
        status_and_body(t, "http://origin.test:8080/")
    assert meaning in str(info.value) and "origin.test:8080" in str(info.value)
    assert t.pool_stats()["total"]["idle"] == 0


def test_socks_authentication_failure(make_transport, server):
    proxy = server(socks_handler([], auth_status=1))
    t = make_transport(proxy=roundtrip.proxy_url(f"socks5://u:wrong@127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError, match="rejected the username and password"):
        status_and_body(t, "http://127.0.0.1:9/")


def test_socks_server_closing_mid_handshake(make_transport, server):
    def handler(conn):
        conn.read_exactly(3)
        conn.send(b"\x05")  # half an answer, then gone

    proxy = server(handler)
    t = make_transport(proxy=roundtrip.proxy_url(f"socks5://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError, match="closed the connection during the handshake"):
        status_and_body(t, "http://127.0.0.1:9/")


def test_socks_server_speaking_another_protocol(make_transport, server):
    def handler(conn):
        conn.read_exactly(3)
        conn.send(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    proxy = server(handler)
    t = make_transport(proxy=roundtrip.proxy_url(f"socks5://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError, match="protocol version"):
        status_and_body(t, "http://127.0.0.1:9/")


def test_unreachable_proxy_is_a_connect_error(make_transport):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        t = make_transport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{port}"))
        with pytest.raises(roundtrip.ConnectError) as info:
            status_and_body(t, "https://origin.test/")
    assert not isinstance(info.value, roundtrip.ProxyError)
