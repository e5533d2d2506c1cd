"""AsyncTransport through proxies: tinyproxy (forwarding and CONNECT), microsocks (SOCKS5),
an https proxy (TLS inside TLS for https origins) and scripted proxies for faults; the same
handshakes as the threaded transport, driven on the event loop."""

from __future__ import annotations

import pytest

import roundtrip
import roundtrip._async_tls

from aio import afetch
from proxies import SocksRecord, socks_handler
from servers import keep_alive_handler, respond
from test_proxy import Recorder, refusing, tls_front, tls_origin  # noqa: F401 (fixtures)


def fetch_all(run, t, *requests):
    """``[(status, body), ...]`` for ``(url, kwargs)`` pairs fetched in turn on ``t``."""

    async def main():
        async with t:
            results = []
            for url, kwargs in requests:
                resp, body = await afetch(t, url, **kwargs)
                results.append((resp.status_code, body))
            return results

    return run(main())


def test_http_origin_through_tinyproxy_uses_absolute_form(run, server, atransport, tinyproxy):
    origin = server(keep_alive_handler(b"hello"))
    recorder = Recorder()
    t = atransport(proxy=roundtrip.proxy_url(tinyproxy.url()))
    assert fetch_all(run, t, (origin.url("/a?b=c"), {"trace": recorder.trace})) == [(200, b"hello")]
    key = f"http://127.0.0.1:{tinyproxy.port} via http://127.0.0.1:{tinyproxy.port}"
    assert recorder.args("get_conn") == [(key,)]
    assert recorder.args("connect_done") == [(("127.0.0.1", tinyproxy.port), None)]
    assert tinyproxy.wait_for_log(f"GET http://127.0.0.1:{origin.port}/a?b=c HTTP/1.1")


def test_https_origin_through_tinyproxy_tunnels_tls_to_the_origin(run, atransport, tls_origin, tinyproxy, certs):
    origin = tls_origin(b"secure")
    recorder, again = Recorder(), Recorder()
    t = atransport(proxy=roundtrip.proxy_url(tinyproxy.url()), ssl_context=certs.client_context())
    url = origin.url("/s", scheme="https")
    assert fetch_all(run, t, (url, {"trace": recorder.trace}), (url, {"trace": again.trace})) == [(200, b"secure")] * 2
    names = recorder.names()
    assert names.index("connect_done") < names.index("tls_handshake_start") < names.index("tls_handshake_done") < names.index("wrote_headers")
    assert recorder.args("tls_handshake_done") == [(None,)]
    assert again.args("got_conn")[0][0].reused and origin.accepted == 1
    assert tinyproxy.wait_for_log(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1")


def test_tls_inside_the_tunnel_is_verified_against_the_origin(run, atransport, tls_origin, tinyproxy):
    origin = tls_origin()
    t = atransport(proxy=roundtrip.proxy_url(tinyproxy.url()))

    with pytest.raises(roundtrip.TLSError):
        fetch_all(run, t, (origin.url("/", scheme="https"), {}))


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_credentials_reach_tinyproxy_but_never_the_origin(run, server, atransport, tls_origin, tinyproxy_auth, certs, scheme):
    origin = tls_origin() if scheme == "https" else server(keep_alive_handler(b"secure"))
    t = atransport(proxy=roundtrip.proxy_url(tinyproxy_auth.url(userinfo="alice:s3cret")), ssl_context=certs.client_context())
    assert fetch_all(run, t, (origin.url("/", scheme=scheme), {})) == [(200, b"secure")]
    assert [r.header("proxy-authorization") for r in origin.received] == [None]


def test_wrong_credentials_make_tinyproxy_refuse_the_connect(run, atransport, tls_origin, tinyproxy_auth, certs):
    origin = tls_origin()
    t = atransport(proxy=roundtrip.proxy_url(tinyproxy_auth.url(userinfo="alice:wrong")), ssl_context=certs.client_context())
    with pytest.raises(roundtrip.ProxyError, match=r"refused CONNECT to 127\.0\.0\.1:\d+: HTTP/1\.[01] 40[17] "):
        fetch_all(run, t, (origin.url("/", scheme="https"), {}))
    assert origin.received == []


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_http_and_https_origins_through_microsocks(run, server, atransport, tls_origin, microsocks, certs, scheme):
    plain = server(keep_alive_handler(b"plain"))
    secure = tls_origin(b"secure")
    t = atransport(proxy=roundtrip.proxy_url(microsocks.url(scheme)), ssl_context=certs.client_context())
    requests = [(plain.url("/p"), {}), (secure.url("/s", scheme="https"), {}), (plain.url("/p"), {})]
    assert fetch_all(run, t, *requests) == [(200, b"plain"), (200, b"secure"), (200, b"plain")]
    assert plain.accepted == 1 and secure.accepted == 1


@pytest.mark.parametrize("scheme, resolved_here", [("socks5", True), ("socks5h", False)])
def test_socks5_resolves_names_here_and_socks5h_leaves_them_to_the_proxy(run, atransport, tls_origin, microsocks, certs, scheme, resolved_here):
    origin = tls_origin(b"by name")
    recorder = Recorder()
    t = atransport(proxy=roundtrip.proxy_url(microsocks.url(scheme)), ssl_context=certs.client_context())
    assert fetch_all(run, t, (f"https://localhost:{origin.port}/", {"trace": recorder.trace})) == [(200, b"by name")]
    assert [args[0] for args in recorder.args("dns_start")] == (["localhost"] if resolved_here else [])


def test_microsocks_rejects_a_wrong_password(run, server, atransport, microsocks_auth):
    origin = server(keep_alive_handler(b"never"))
    t = atransport(proxy=roundtrip.proxy_url(microsocks_auth.url(userinfo="bob:wrong")))
    with pytest.raises(roundtrip.ProxyError, match="rejected the username and password"):
        fetch_all(run, t, (origin.url("/"), {}))
    assert origin.accepted == 0


def test_http_origin_through_an_https_proxy(run, server, atransport, tinyproxy, tls_front, certs):
    origin = server(keep_alive_handler(b"hello"))
    front = tls_front(tinyproxy.port)
    recorder = Recorder()
    t = atransport(proxy=roundtrip.proxy_url(front.url()), ssl_context=certs.client_context())
    assert fetch_all(run, t, (origin.url("/a"), {"trace": recorder.trace})) == [(200, b"hello")]
    assert recorder.args("tls_handshake_done") == [(None,)]  # to the proxy
    assert tinyproxy.wait_for_log(f"GET http://127.0.0.1:{origin.port}/a HTTP/1.1")


@pytest.fixture(params=["loop", "memory"])
def layering(request, monkeypatch):
    """TLS inside TLS by the loop's ``start_tls``, or by the in-memory layer (what asyncio
    before 3.11 needs), forced here so that both run on every loop."""
    if request.param == "memory":
        monkeypatch.setattr(roundtrip._async_tls, "_FORCE_MEMORY_TLS", True)
    return request.param


def test_https_origin_through_an_https_proxy_is_tls_inside_tls(run, server, atransport, certs, tls_front, tinyproxy, layering):
    big = bytes(range(256)) * 4096  # 1 MiB: many TLS records through both layers
    origin = server(tls_handler_for(certs, big))
    front = tls_front(tinyproxy.port)
    recorder = Recorder()
    t = atransport(proxy=roundtrip.proxy_url(front.url()), ssl_context=certs.client_context())
    payload = b"p" * 300_000
    url = origin.url("/1", scheme="https")
    results = fetch_all(run, t, (url, {"trace": recorder.trace}), (url, {"method": "POST", "body": payload}))
    assert results == [(200, big), (200, big)]
    assert recorder.args("tls_handshake_done") == [(None,), (None,)]  # proxy, then origin
    assert origin.received[1].body == payload
    assert origin.accepted == 1 and front.accepted == 1  # reused, both layers kept


def test_tls_inside_tls_verifies_the_origin(run, server, atransport, certs, tls_front, tinyproxy, layering):
    from proxies import Certificates

    other = Certificates()  # the origin's certificate comes from a CA the client does not trust
    origin = server(tls_handler_for(other, b"never"))
    front = tls_front(tinyproxy.port)
    t = atransport(proxy=roundtrip.proxy_url(front.url()), ssl_context=certs.client_context())
    recorder = Recorder()
    with pytest.raises(roundtrip.TLSError):
        fetch_all(run, t, (origin.url("/", scheme="https"), {"trace": recorder.trace}))
    done = recorder.args("tls_handshake_done")
    assert done[0] == (None,) and isinstance(done[1][0], roundtrip.TLSError)


def test_deadline_inside_tls_inside_tls(run, server, atransport, certs, tls_front, tinyproxy, layering):
    from proxies import tls_handler

    origin = server(tls_handler(certs.server_context(), lambda conn: (conn.read_request(), conn.wait_closed(5))))
    front = tls_front(tinyproxy.port)
    t = atransport(proxy=roundtrip.proxy_url(front.url()), ssl_context=certs.client_context())
    with pytest.raises(roundtrip.DeadlineExceeded):
        fetch_all(run, t, (origin.url("/", scheme="https"), {"context": roundtrip.Context(timeout=1.0)}))


def tls_handler_for(certs, body):
    from proxies import tls_handler

    return tls_handler(certs.server_context(), keep_alive_handler(body))


def test_https_proxy_certificate_is_verified(run, server, atransport, tinyproxy, tls_front):
    origin = server(keep_alive_handler(b"never"))
    front = tls_front(tinyproxy.port)
    t = atransport(proxy=roundtrip.proxy_url(front.url()))  # default trust store
    with pytest.raises(roundtrip.TLSError):
        fetch_all(run, t, (origin.url("/"), {}))


@pytest.mark.parametrize("status_line", [b"HTTP/1.1 403 Forbidden", b"HTTP/1.0 502 Bad Gateway"])
def test_refused_connect_raises_proxy_error_with_the_status_line(run, server, atransport, status_line):
    closed: list[bool] = []
    proxy = server(refusing(status_line, closed))
    t = atransport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError) as info:
        fetch_all(run, t, ("https://origin.test/", {}))
    assert status_line.decode() in str(info.value)
    proxy.close()
    assert closed == [True]


def test_proxy_closing_before_answering_connect(run, server, atransport):
    proxy = server(lambda conn: conn.read_head())
    t = atransport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError, match="without answering CONNECT"):
        fetch_all(run, t, ("https://origin.test/", {}))


def test_proxy_handshake_of_a_request_without_context_is_bounded(run, server, atransport, monkeypatch):
    monkeypatch.setattr(roundtrip._dial, "_UNBOUNDED_HANDSHAKE_LIMIT", 0.3)
    proxy = server(lambda conn: conn.wait_closed(5))
    t = atransport(proxy=roundtrip.proxy_url(f"http://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ConnectTimeout, match="did not answer"):
        fetch_all(run, t, ("https://origin.test/", {}))


@pytest.mark.parametrize("scheme", ["http", "socks5h"])
def test_silent_proxy_is_bounded_by_the_context_deadline(run, server, atransport, scheme):
    closed: list[bool] = []
    proxy = server(lambda conn: closed.append(conn.wait_closed(5)))
    t = atransport(proxy=roundtrip.proxy_url(f"{scheme}://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.DeadlineExceeded):
        fetch_all(run, t, ("https://origin.test/", {"context": roundtrip.Context(timeout=0.3)}))
    proxy.close()
    assert closed == [True]  # the dial gave up and closed its socket


@pytest.mark.parametrize("drip", [False, True], ids=["whole", "byte_at_a_time"])
def test_socks_credentials_follow_rfc_1929(run, server, atransport, drip):
    records: list[SocksRecord] = []
    proxy = server(socks_handler(records, respond_with=respond(200, b"socks"), drip=drip))
    t = atransport(proxy=roundtrip.proxy_url(f"socks5h://%C3%A9mile:p%3Ass@127.0.0.1:{proxy.port}"))
    assert fetch_all(run, t, ("http://origin.test/", {})) == [(200, b"socks")]
    assert records[0].methods == b"\x00\x02" and records[0].credentials == ("émile".encode(), b"p:ss")


@pytest.mark.parametrize("reply, meaning", [(0x02, "connection not allowed by ruleset"), (0x05, "connection refused")])
def test_socks_refusals_name_the_rfc_1928_reply(run, server, atransport, reply, meaning):
    proxy = server(socks_handler([], reply=reply))
    t = atransport(proxy=roundtrip.proxy_url(f"socks5h://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError) as info:
        fetch_all(run, t, ("http://origin.test:8080/", {}))
    assert meaning in str(info.value) and "origin.test:8080" in str(info.value)


def test_socks_server_closing_mid_handshake(run, server, atransport):
    def handler(conn):
        conn.read_exactly(3)
        conn.send(b"\x05")  # half an answer, then gone

    proxy = server(handler)
    t = atransport(proxy=roundtrip.proxy_url(f"socks5h://127.0.0.1:{proxy.port}"))
    with pytest.raises(roundtrip.ProxyError, match="closed the connection during the handshake"):
        fetch_all(run, t, ("http://origin.test/", {}))
