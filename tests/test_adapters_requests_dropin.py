"""``RequestsAdapter`` as a drop-in for ``requests.adapters.HTTPAdapter``: its constructor
arguments, pickling with the Session, and the ``requests.exceptions`` class HTTPAdapter raises
in each situation, with a message that says what happened."""

from __future__ import annotations

import pickle
import socket
from typing import Iterator

import pytest
import requests
from requests import exceptions as rexc
from urllib3.util.retry import Retry

import roundtrip
from roundtrip.adapters import RequestsAdapter

from servers import keep_alive_handler, respond


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False
        adapter = RequestsAdapter()
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        yield s


def _closed_port() -> int:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    holder.close()
    return port


# -- constructor arguments ---------------------------------------------------------------------


def test_http_adapter_arguments_are_accepted_and_kept(server):
    srv = server(keep_alive_handler(b"ok"))
    adapter = RequestsAdapter(pool_connections=3, pool_maxsize=5, max_retries=2, pool_block=True)
    assert adapter.max_retries.total == 2
    with requests.Session() as s:
        s.mount("http://", adapter)
        assert s.get(srv.url("/")).content == b"ok"
        transport = adapter._transports[None]
        assert transport._pool._state._max_conns_per_host == 5  # pool_block: never more than pool_maxsize


def test_default_max_retries_is_http_adapters():
    retries = RequestsAdapter().max_retries
    assert (retries.total, retries.read) == (0, False)


def test_pool_arguments_with_a_given_transport_are_refused(make_transport):
    with pytest.raises(ValueError, match="pool_maxsize"):
        RequestsAdapter(make_transport(), pool_maxsize=3)


@pytest.mark.parametrize("retries, dials", [(0, 1), (2, 3), (Retry(connect=1, backoff_factor=0), 2)])
def test_max_retries_retries_a_refused_connect(session, counting_dial, retries, dials):
    port = _closed_port()
    adapter = RequestsAdapter(max_retries=retries)
    # The adapter's plain-http Transport, made here so that its dials can be counted.
    adapter._transports[None] = roundtrip.Transport(dial=counting_dial, proxy=None, disable_compression=True)
    session.mount("http://", adapter)
    with pytest.raises(rexc.ConnectionError):
        session.get(f"http://127.0.0.1:{port}/")
    assert len(counting_dial.calls) == dials


def test_max_retries_on_status_retries_then_returns(server, session):
    statuses = iter([503, 503, 200])

    def handler(conn) -> None:
        for _ in conn.requests():
            status = next(statuses)
            conn.send(respond(status, b"done" if status == 200 else b"busy", reason="OK" if status == 200 else "Busy"))

    srv = server(handler)
    session.mount("http://", RequestsAdapter(max_retries=Retry(total=3, status_forcelist=[503], backoff_factor=0)))
    response = session.get(srv.url("/"))
    assert (response.status_code, response.content) == (200, b"done")


def test_max_retries_exhausted_on_status_raises_retry_error(server, session):
    srv = server(lambda conn: [conn.send(respond(503, b"busy", reason="Busy")) for _ in conn.requests()])
    session.mount("http://", RequestsAdapter(max_retries=Retry(total=1, status_forcelist=[503], backoff_factor=0)))
    with pytest.raises(rexc.RetryError):
        session.get(srv.url("/"))


# -- pickling ----------------------------------------------------------------------------------


def test_session_with_the_adapter_pickles_and_works_after(server):
    srv = server(keep_alive_handler(b"ok"))
    with requests.Session() as s:
        s.mount("http://", RequestsAdapter(pool_maxsize=4, max_retries=3))
        s.get(srv.url("/")).content  # the adapter has a live Transport now
        copy = pickle.loads(pickle.dumps(s))
    adapter = copy.adapters["http://"]
    try:
        assert isinstance(adapter, RequestsAdapter)
        assert adapter._pool_maxsize == 4 and adapter.max_retries.total == 3
        assert copy.get(srv.url("/")).content == b"ok"
    finally:
        copy.close()


def test_adapter_with_a_given_transport_refuses_to_pickle(make_transport):
    with pytest.raises(TypeError, match="transport="):
        pickle.dumps(RequestsAdapter(make_transport()))


# -- errors as HTTPAdapter raises them -----------------------------------------------------------


def test_refused_proxy_raises_proxy_error(session):
    port = _closed_port()
    with pytest.raises(rexc.ProxyError, match=f"Unable to connect to proxy http://127.0.0.1:{port}"):
        session.get("http://example.invalid/", proxies={"http": f"http://user:secret@127.0.0.1:{port}"})


def test_proxy_that_does_not_resolve_raises_proxy_error(session):
    with pytest.raises(rexc.ProxyError):
        session.get("http://127.0.0.1:1/", proxies={"http": "non-resolvable-address.invalid"})


def test_proxy_error_message_hides_credentials(session):
    port = _closed_port()
    with pytest.raises(rexc.ProxyError) as info:
        session.get("http://example.invalid/", proxies={"http": f"http://user:secret@127.0.0.1:{port}"})
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("proxy", ["http://:8080", "https://", "http:///example.com:8080", "http:/badproxyurl:3128"])
def test_malformed_proxy_url_raises_invalid_proxy_url(session, counting_dial, proxy):
    with pytest.raises(rexc.InvalidProxyURL, match="malformed"):
        session.get("http://127.0.0.1:1/", proxies={"http": proxy})


def test_head_cut_off_by_the_end_of_the_stream_raises_chunked_encoding_error(session, server):
    def handler(conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n")
        conn.close()

    srv = server(handler)
    with pytest.raises(rexc.ChunkedEncodingError, match="ended prematurely"):
        session.get(srv.url("/"))


def test_conflicting_content_lengths_raise_invalid_header(session, server):
    def handler(conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Length: 32\r\n\r\n-- Bad Actor -- Original Content\r\n")

    srv = server(handler)
    with pytest.raises(rexc.InvalidHeader, match="Content-Length"):
        session.get(srv.url("/"))


def test_other_malformed_head_stays_a_connection_error(session, server):
    def handler(conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n")

    srv = server(handler)
    with pytest.raises(rexc.ConnectionError) as info:
        session.get(srv.url("/"))
    assert not isinstance(info.value, (rexc.InvalidHeader, rexc.ChunkedEncodingError))


def test_read_timeout_says_what_timed_out(session, server):
    def silent(conn) -> None:
        conn.read_request()
        conn.wait_closed()

    srv = server(silent)
    with pytest.raises(rexc.ReadTimeout) as info:
        session.get(srv.url("/"), timeout=(5, 0.2))
    message = str(info.value)
    assert "Read timed out" in message and "read timeout=0.2" in message
    assert "cancelled" not in message
    assert "Read timed out" in info.value.args[0].args[0]  # where requests' own suite looks
