"""``roundtrip.adapters.RequestsAdapter`` under ``requests.Session``: a requests.Response as
HTTPAdapter builds it, a urllib3-style ``raw`` for streaming and decoding, timeouts from
``timeout=``, TLS from ``verify``/``cert``, errors as ``requests.exceptions``."""

from __future__ import annotations

import gzip
import socket
import ssl
import subprocess
import sys
import threading
import time
from typing import Iterator

import pytest
import requests
import urllib3
from requests import exceptions as rexc

import roundtrip
from roundtrip.adapters import RequestsAdapter
from roundtrip.adapters._requests import _requests_error

from servers import IO_TIMEOUT, bad_chunk, body_cut_short, close_without_answer, keep_alive_handler, malformed_status, respond, silent


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # hermetic: no proxies or CA bundle from the environment
        adapter = RequestsAdapter()
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        yield s


# -- requests and responses ----------------------------------------------------------------------


def test_get_builds_a_response_as_http_adapter_does(session, server):
    srv = server(keep_alive_handler("héllo".encode("latin-1"), [("Content-Type", "text/plain; charset=latin-1"), ("X-Twice", "1"), ("X-Twice", "2")]))
    r = session.get(srv.url("/x?q=1"), timeout=5)
    assert (r.status_code, r.reason, r.url) == (200, "OK", srv.url("/x?q=1"))
    assert isinstance(r.headers, requests.structures.CaseInsensitiveDict)
    assert r.headers["x-twice"] == "1, 2"
    assert r.encoding == "latin-1" and r.text == "héllo"
    assert r.request.url == srv.url("/x?q=1")
    assert isinstance(r.connection, RequestsAdapter)
    assert srv.received[0].request_line == "GET /x?q=1 HTTP/1.1"


def test_request_headers_keep_requests_fields_and_the_callers_spelling(session, server):
    srv = server(keep_alive_handler())
    session.get(srv.url("/"), headers={"X-MiXeD-CaSe": "v1"})
    received = srv.received[0]
    assert "X-MiXeD-CaSe" in received.header_names()
    assert received.header("user-agent").startswith("python-requests/")
    assert "gzip" in received.header("accept-encoding")  # requests' own, so roundtrip adds none
    assert [name.lower() for name in received.header_names()].count("accept-encoding") == 1


def test_bodies_arrive_as_requests_encoded_them(session, server, tmp_path):
    srv = server(keep_alive_handler())
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"f" * 70_000)
    session.post(srv.url("/b"), data=b"raw bytes")
    session.post(srv.url("/f"), data={"k": "v w"})
    session.post(srv.url("/j"), json={"a": 1})
    session.post(srv.url("/g"), data=(piece for piece in (b"ab", "cd")))
    with open(upload, "rb") as f:
        session.put(srv.url("/file"), data=f, timeout=5)
    session.post(srv.url("/s"), data="naïve")
    raw, form, js, gen, file, text = srv.received
    assert raw.body == b"raw bytes" and raw.header("content-length") == "9"
    assert form.body == b"k=v+w"
    assert js.body == b'{"a": 1}'
    assert gen.header("transfer-encoding") == "chunked" and gen.body == b"abcd"
    assert file.header("content-length") == "70000" and file.body == b"f" * 70_000
    assert text.body == "naïve".encode("utf-8") and text.header("content-length") == str(len(text.body))


def test_cookies_reach_the_session_jar(session, server):
    def handler(conn):
        for request in conn.requests():
            if request.target == "/login":
                conn.send(respond(200, b"", [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")]))
            else:
                conn.send(respond(200, (request.header("cookie") or "").encode()))

    srv = server(handler)
    session.get(srv.url("/login"))
    assert session.cookies.get_dict() == {"a": "1", "b": "2"}
    assert session.get(srv.url("/me")).text == "a=1; b=2"


def test_redirect_is_followed_on_the_same_connection(session, server):
    def handler(conn):
        for request in conn.requests():
            if request.target == "/start":
                conn.send(respond(302, b"moved", [("Location", "/end")], reason="Found"))
            else:
                conn.send(respond(200, b"arrived"))

    srv = server(handler)
    r = session.get(srv.url("/start"))
    assert (r.status_code, r.text, [h.status_code for h in r.history]) == (200, "arrived", [302])
    assert srv.accepted == 1


def test_stream_true_iterates_pieces_as_they_come(session, server):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"one", b"two", b"three"):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        conn.wait_closed()

    srv = server(handler)
    with session.get(srv.url("/"), stream=True) as r:
        assert r.raw.read(3) == b"one"
        assert b"".join(r.iter_content(chunk_size=None)) == b"twothree"


def test_iter_content_and_content_read_the_body(session, server):
    srv = server(keep_alive_handler(bytes(range(256)) * 1000))
    with session.get(srv.url("/"), stream=True) as r:
        assert b"".join(r.iter_content(chunk_size=1000)) == bytes(range(256)) * 1000
    assert session.get(srv.url("/")).content == bytes(range(256)) * 1000
    assert srv.accepted == 1


def test_gzip_is_decoded_by_requests_not_by_roundtrip(session, nginx):
    r = session.get(nginx.url("/gz/text"))
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == b"compress me please " * 2000
    with session.get(nginx.url("/gz/text"), stream=True) as r:
        assert gzip.decompress(r.raw.read(decode_content=False)) == b"compress me please " * 2000


def test_gzip_read_through_raw_stream_decodes(session, nginx):
    with session.get(nginx.url("/gz/text"), stream=True) as r:
        assert b"".join(r.raw.stream(1024, decode_content=True)) == b"compress me please " * 2000


def test_nginx_get_and_post_share_one_connection(session, nginx):
    before = len(nginx.access_log())
    assert session.get(nginx.url("/small")).content == nginx.files["small"]
    assert session.post(nginx.url("/post"), data=b"y" * 4096).text == "posted\n"
    deadline = time.monotonic() + IO_TIMEOUT
    while len(nginx.access_log()) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # nginx logs a request just after it has answered it
    log = nginx.access_log()[before:]
    assert [line[3] for line in log] == ["/small", "/post"]
    assert log[0][0] == log[1][0], "both requests must arrive on one connection"


def test_connection_is_reused_and_released(server, make_transport):
    srv = server(keep_alive_handler(b"ok"))
    rt = make_transport()
    with requests.Session() as s:
        s.mount("http://", RequestsAdapter(rt))
        for _ in range(3):
            assert s.get(srv.url("/")).text == "ok"
        with s.get(srv.url("/"), stream=True) as r:
            assert r.raw.read() == b"ok"
        assert rt.pool_stats()["total"] == {"idle": 1, "active": 0, "dialing": 0, "waiting": 0}
    assert srv.accepted == 1
    with rt.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:  # a given Transport stays open
        assert resp.read() == b"ok"


def test_closing_a_half_read_response_closes_its_connection(server, make_transport):
    srv = server(keep_alive_handler(b"x" * 200_000))
    rt = make_transport()
    with requests.Session() as s:
        s.mount("http://", RequestsAdapter(rt))
        with s.get(srv.url("/"), stream=True) as r:
            r.raw.read(10)
        assert rt.pool_stats()["total"]["active"] == 0
        assert s.get(srv.url("/")).status_code == 200
    assert srv.accepted == 2


def test_owned_transports_never_gunzip(session, server):
    body = gzip.compress(b"zipped")

    def handler(conn):
        for _ in conn.requests():
            conn.send(respond(200, body, [("Content-Encoding", "gzip")]))

    srv = server(handler)
    r = session.get(srv.url("/"), headers={"Accept-Encoding": None})  # even without the caller's
    assert srv.received[0].header("accept-encoding") is None
    assert r.headers["content-encoding"] == "gzip" and r.content == b"zipped"


def test_adapter_works_again_after_close(server):
    srv = server(keep_alive_handler())
    adapter = RequestsAdapter()
    with requests.Session() as s:
        s.mount("http://", adapter)
        assert s.get(srv.url("/"), timeout=5).text == "ok"
        adapter.close()
        assert not adapter._transports
        assert s.get(srv.url("/"), timeout=5).text == "ok"
    assert not adapter._transports and adapter._watchdog._thread is None


# -- timeouts ------------------------------------------------------------------------------------


def test_silent_server_raises_read_timeout_quickly(session, server):
    srv = server(silent)
    started = time.monotonic()
    with pytest.raises(rexc.ReadTimeout) as info:
        session.get(srv.url("/"), timeout=(5, 0.3))
    assert time.monotonic() - started < 2.0
    assert isinstance(info.value.__cause__, roundtrip.Cancelled)


def test_single_float_timeout_limits_reads(session, server):
    srv = server(silent)
    with pytest.raises(rexc.ReadTimeout):
        session.get(srv.url("/"), timeout=0.3)


def test_urllib3_timeout_object_is_accepted(session, server):
    srv = server(silent)
    with pytest.raises(rexc.ReadTimeout):
        session.get(srv.url("/"), timeout=urllib3.Timeout(connect=5, read=0.3))


def test_connect_that_hangs_raises_connect_timeout(session, unreachable):
    host, port = unreachable
    started = time.monotonic()
    with pytest.raises(rexc.ConnectTimeout):
        session.get(f"http://{host}:{port}/", timeout=(0.3, 5))
    assert time.monotonic() - started < 2.0


def test_stalled_body_fails_like_urllib3(session, server):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        conn.wait_closed()

    srv = server(handler)
    # requests turns urllib3's ReadTimeoutError while reading the body into ConnectionError.
    with pytest.raises(rexc.ConnectionError):
        session.get(srv.url("/"), timeout=(5, 0.3))
    with session.get(srv.url("/"), timeout=(5, 0.3), stream=True) as r:
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            r.raw.read()


def test_read_timeout_limits_each_piece_not_the_whole_body(session, server):
    piece = b"x" * 65536

    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (4 * len(piece)))
        for _ in range(4):
            time.sleep(0.15)  # a slow but steady server: 0.6 s in all
            conn.send(piece)
        conn.wait_closed()

    srv = server(handler)
    with session.get(srv.url("/"), timeout=(5, 0.4), stream=True) as r:
        assert r.raw.read() == piece * 4  # one big read, a piece at a time


def test_an_unread_stream_does_not_time_out(session, server):
    srv = server(keep_alive_handler(b"later"))
    with session.get(srv.url("/"), timeout=(5, 0.1), stream=True) as r:
        time.sleep(0.3)  # the caller's own pause is not a read
        assert r.content == b"later"


def test_server_that_stops_reading_raises_read_timeout_as_urllib3_does(session, server):
    release = threading.Event()

    def handler(conn):
        conn.read_head()
        release.wait(IO_TIMEOUT)  # read nothing more: the client's send buffer fills up

    srv = server(handler)
    try:
        # urllib3 sends under the connect timeout and reports a stuck send as a read timeout.
        with pytest.raises(rexc.ReadTimeout):
            session.post(srv.url("/"), data=b"w" * (64 << 20), timeout=(0.3, 5))
    finally:
        release.set()


def test_concurrent_requests_with_timeouts(server, make_transport):
    srv = server(keep_alive_handler(b"ok"))
    rt = make_transport()
    adapter = RequestsAdapter(rt)
    results: list = []

    def worker(s):
        for _ in range(20):
            results.append(s.get(srv.url("/"), timeout=5).text)

    with requests.Session() as s:
        s.mount("http://", adapter)
        threads = [threading.Thread(target=worker, args=(s,)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == ["ok"] * 120
    assert rt.pool_stats()["total"]["active"] == 0


def test_transport_response_header_timeout_maps_to_read_timeout(server, make_transport):
    srv = server(silent)
    with requests.Session() as s:
        s.mount("http://", RequestsAdapter(make_transport(response_header_timeout=0.2)))
        with pytest.raises(rexc.ReadTimeout) as info:
            s.get(srv.url("/"))
    assert isinstance(info.value.__cause__, roundtrip.ResponseHeaderTimeout)


@pytest.mark.parametrize("timeout", [(1, 2, 3), "soon", (1, "x")])
def test_invalid_timeout_raises_value_error(session, server, timeout):
    srv = server(keep_alive_handler())
    with pytest.raises(ValueError):
        session.get(srv.url("/"), timeout=timeout)
    assert srv.accepted == 0


# -- errors --------------------------------------------------------------------------------------


def test_closed_port_raises_connection_error(session):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(rexc.ConnectionError) as info:
            session.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert not isinstance(info.value, rexc.Timeout)
    assert isinstance(info.value.__cause__, roundtrip.ConnectError)


def test_malformed_status_line_raises_connection_error(session, server):
    srv = server(malformed_status)
    with pytest.raises(rexc.ConnectionError) as info:
        session.get(srv.url("/"))
    assert isinstance(info.value.__cause__, roundtrip.ProtocolError)


def test_server_closing_without_answer_raises_connection_error(session, server):
    srv = server(close_without_answer)
    with pytest.raises(rexc.ConnectionError) as info:
        session.get(srv.url("/"))
    assert isinstance(info.value.__cause__, roundtrip.ServerDisconnected)


def test_body_cut_short_raises_chunked_encoding_error(session, server):
    srv = server(body_cut_short)
    with pytest.raises(rexc.ChunkedEncodingError):
        session.get(srv.url("/"))


def test_bad_chunk_raises_chunked_encoding_error(session, server):
    srv = server(bad_chunk)
    with pytest.raises(rexc.ChunkedEncodingError):
        session.get(srv.url("/"), timeout=5)


@pytest.mark.parametrize(
    "message, part, expected",
    [
        ('invalid header field name "a b"', "header", rexc.InvalidHeader),
        ('invalid header field value for key "X"', "header", rexc.InvalidHeader),
        ('header field value for key "X" cannot be encoded as latin-1', "header", rexc.InvalidHeader),
        ('unsupported protocol scheme "ftp"', "scheme", rexc.InvalidSchema),
        ("no Host in request URL", "url", rexc.InvalidURL),
        ("invalid control character or space in URL path", "url", rexc.InvalidURL),
    ],
)
def test_invalid_request_maps_to_requests_exceptions(message, part, expected):
    request = requests.Request("GET", "http://example.invalid/").prepare()
    mapped = _requests_error(roundtrip.InvalidRequest(message, part), None, request, None)
    assert type(mapped) is expected and mapped.request is request


def test_invalid_method_stays_a_value_error():
    request = requests.Request("GET", "http://example.invalid/").prepare()
    assert _requests_error(roundtrip.InvalidRequest('invalid method "A B"', "method"), None, request, None) is None


def test_given_transport_rejects_tls_settings_it_cannot_honour(server, make_transport):
    with requests.Session() as s:
        s.mount("https://", RequestsAdapter(make_transport()))
        with pytest.raises(NotImplementedError):
            s.get("https://127.0.0.1:1/", verify=False)
        with pytest.raises(NotImplementedError):
            s.get("https://127.0.0.1:1/", cert="/nonexistent.pem")


def test_given_transport_takes_a_ca_path_as_verify_on(server, make_transport):
    # requests turns REQUESTS_CA_BUNDLE into verify="/path": the Transport's own ssl_context
    # decides (here: the default, which fails to reach a closed port, not NotImplementedError).
    with requests.Session() as s:
        s.mount("https://", RequestsAdapter(make_transport(connect_timeout=2)))
        with pytest.raises(requests.exceptions.ConnectionError):
            s.get("https://127.0.0.1:1/", verify="/etc/ssl/certs/ca-certificates.crt")


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("client.example")
    folder = tmp_path_factory.mktemp("tls")
    ca_path = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    client_path = folder / "client.pem"
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(client_path))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_OPTIONAL
    return server_context, str(ca_path), str(client_path)


def tls_handler(server_context, peers):
    def handler(conn):
        try:
            conn.sock = server_context.wrap_socket(conn.sock, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate
        peers.append(conn.sock.getpeercert())
        for _ in conn.requests():
            conn.send(respond(200, b"secret"))

    return handler


def test_verify_path_false_and_true_each_get_their_transport(session, server, tls_material):
    server_context, ca_path, _ = tls_material
    srv = server(tls_handler(server_context, []))
    url = srv.url("/", scheme="https")
    assert session.get(url, verify=ca_path, timeout=5).text == "secret"
    assert session.get(url, verify=ca_path, timeout=5).text == "secret"
    assert session.get(url, verify=False, timeout=5).text == "secret"
    with pytest.raises(rexc.SSLError) as info:
        session.get(url, timeout=5)  # verify=True: requests' CA bundle does not know our CA
    assert isinstance(info.value.__cause__, roundtrip.TLSError)
    adapter = session.get_adapter(url)
    assert set(adapter._transports) == {(ca_path, None), (False, None), (True, None)}
    assert srv.accepted == 3  # one connection per TLS setting; the second ca_path request reused its own


def test_client_certificate_is_presented(session, server, tls_material):
    server_context, ca_path, client_path = tls_material
    peers: list = []
    srv = server(tls_handler(server_context, peers))
    assert session.get(srv.url("/", scheme="https"), verify=ca_path, cert=client_path, timeout=5).text == "secret"
    assert ("DNS", "client.example") in peers[0]["subjectAltName"]  # the server saw our certificate


def test_missing_ca_bundle_raises_os_error(session):
    with pytest.raises(OSError, match="invalid path"):
        session.get("https://127.0.0.1:1/", verify="/nonexistent/ca.pem")


# -- proxies -------------------------------------------------------------------------------------


def test_requests_proxy_choice_reaches_the_owned_transport(session, server):
    def proxy(conn):
        for request in conn.requests():
            conn.send(respond(200, request.target.encode()))

    srv = server(proxy)
    r = session.get("http://origin.example/path", proxies={"http": srv.url("")}, timeout=5)
    assert r.text == "http://origin.example/path"


# -- optional dependency -------------------------------------------------------------------------


def test_adapter_without_requests_names_the_extra():
    code = (
        "import sys\n"
        "sys.modules['requests'] = None  # as if not installed\n"
        "import roundtrip.adapters\n"
        "try:\n"
        "    roundtrip.adapters.RequestsAdapter\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert 'pip install "roundtrip-http[requests]"' in result.stdout, result.stderr
