"""``Trace`` hooks: the events of Go's ``httptrace`` in Go's order,
run on the thread that called ``round_trip`` (or ``read``), and a hook that raises makes the
round trip fail with that exception and closes the connection."""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any, Callable, Optional

import pytest

import roundtrip
from roundtrip import Request, Trace

from helpers import send, wait_until
from servers import ClientGone, ScriptedConnection, keep_alive_handler, respond

HOOK_NAMES = (
    "get_conn",
    "got_conn",
    "put_idle_conn",
    "dns_start",
    "dns_done",
    "connect_start",
    "connect_done",
    "tls_handshake_start",
    "tls_handshake_done",
    "wrote_headers",
    "wait_100_continue",
    "got_100_continue",
    "got_1xx_response",
    "wrote_request",
    "got_first_response_byte",
    "retried",
)


class Recorder:
    """A Trace recording every hook call: ``(name, args, thread id)``."""

    def __init__(self, raise_in: Optional[str] = None, before_raise: Optional[Callable[[], None]] = None) -> None:
        self.calls: list[tuple[str, tuple, int]] = []
        self.raise_in = raise_in
        self.before_raise = before_raise
        self.trace = Trace(**{name: self._hook(name) for name in HOOK_NAMES})

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(*args: Any) -> None:
            self.calls.append((name, args, threading.get_ident()))
            if name == self.raise_in:
                if self.before_raise is not None:
                    self.before_raise()
                raise Boom(name)

        return hook

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def args(self, name: str) -> tuple:
        found = [args for hook, args, _ in self.calls if hook == name]
        assert len(found) == 1, f"{name} fired {len(found)} times: {self.names}"
        return found[0]

    def names_without_failed_connects(self) -> list[str]:
        """Names, dropping connect_start/connect_done pairs of addresses that refused (a name
        resolving to ::1 first, say)."""
        failed = {args[0] for name, args, _ in self.calls if name == "connect_done" and args[1] is not None}
        return [name for name, args, _ in self.calls if not (name in ("connect_start", "connect_done") and args[0] in failed)]


class Boom(Exception):
    pass


class Observed:
    """A keep-alive server script that notes whether the client closed the connection."""

    def __init__(self, body: bytes = b"ok", before: bytes = b"") -> None:
        self.body = body
        self.before = before  # sent ahead of each response (1xx responses)
        self.closed = threading.Event()

    def __call__(self, conn: ScriptedConnection) -> None:
        conn.sock.settimeout(5.0)
        try:
            while True:
                conn.read_request()
                conn.send(self.before + respond(200, self.body))
        except (ClientGone, ConnectionError):
            self.closed.set()
        except socket.timeout:
            pass


FRESH = ["get_conn", "connect_start", "connect_done", "got_conn", "wrote_headers", "wrote_request", "got_first_response_byte", "put_idle_conn"]
REUSED = ["get_conn", "got_conn", "wrote_headers", "wrote_request", "got_first_response_byte", "put_idle_conn"]


def get(transport: roundtrip.Transport, url: str, rec: Recorder, body: Any = None) -> bytes:
    """``fetch`` that also records when the read returned: inside the response's lifetime, so
    the order of that moment and ``put_idle_conn`` is seen."""
    with send(transport, url, "GET" if body is None else "POST", body=body, trace=rec.trace) as resp:
        data = resp.read()
        rec.calls.append(("read_returned", (), threading.get_ident()))
        return data


# -- order ----------------------------------------------------------------------------------


def test_fresh_connection_events_in_order(transport, server):
    srv = server(Observed())
    rec = Recorder()
    assert get(transport, srv.url("/a"), rec) == b"ok"
    assert rec.names == FRESH + ["read_returned"], "put_idle_conn fires before the last read returns"
    assert rec.args("get_conn") == (f"http://127.0.0.1:{srv.port}",)
    assert rec.args("connect_start") == (("127.0.0.1", srv.port),)
    assert rec.args("connect_done") == (("127.0.0.1", srv.port), None)
    (info,) = rec.args("got_conn")
    assert (info.reused, info.was_idle) == (False, False)
    assert rec.args("wrote_request") == (None,)
    assert rec.args("put_idle_conn") == (None,)


def test_a_body_is_written_between_wrote_headers_and_wrote_request(transport, server):
    srv = server(Observed())
    rec = Recorder()
    big = b"p" * (1 << 20)  # not coalesced with the head
    assert get(transport, srv.url("/p"), rec, body=big) == b"ok"
    assert rec.names == FRESH + ["read_returned"]
    assert srv.received[0].body == big


def test_dns_events_for_a_host_name(transport, server):
    srv = server(Observed())
    rec = Recorder()
    assert get(transport, f"http://localhost:{srv.port}/", rec) == b"ok"
    assert rec.names_without_failed_connects() == (
        ["get_conn", "dns_start", "dns_done"] + FRESH[1:] + ["read_returned"]
    )
    assert rec.args("get_conn") == (f"http://localhost:{srv.port}",)
    assert rec.args("dns_start") == ("localhost",)
    addrs, error = rec.args("dns_done")
    assert error is None and "127.0.0.1" in addrs
    connect_dones = [args for name, args, _ in rec.calls if name == "connect_done"]
    assert connect_dones[-1] == (("127.0.0.1", srv.port), None)


def test_no_dns_events_for_an_ip_literal(transport, server):
    srv = server(Observed())
    rec = Recorder()
    get(transport, srv.url("/"), rec)
    assert "dns_start" not in rec.names and "dns_done" not in rec.names


def test_reused_connection_events(transport, server):
    srv = server(Observed())
    get(transport, srv.url("/first"), Recorder())
    rec = Recorder()
    assert get(transport, srv.url("/second"), rec) == b"ok"
    assert rec.names == REUSED + ["read_returned"]
    (info,) = rec.args("got_conn")
    assert (info.reused, info.was_idle) == (True, True)
    assert isinstance(info.idle_time, float) and info.idle_time >= 0
    assert srv.accepted == 1


def test_no_connect_or_dns_events_with_a_custom_dial(make_transport, server, counting_dial):
    transport = make_transport(dial=counting_dial)
    srv = server(Observed())
    rec = Recorder()
    assert get(transport, f"http://localhost:{srv.port}/", rec) == b"ok"
    assert rec.names == ["get_conn"] + FRESH[3:] + ["read_returned"]
    assert counting_dial.calls == [("localhost", srv.port)]


def test_got_1xx_response_for_a_103_before_the_200(transport, server):
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nLink: </app.js>; rel=preload\r\n\r\n"
    srv = server(Observed(body=b"final", before=early))
    rec = Recorder()
    with transport.round_trip(Request("GET", srv.url("/"), trace=rec.trace)) as resp:
        assert resp.status_code == 200
        assert resp.read() == b"final"
    assert rec.names == FRESH[:-2] + ["got_first_response_byte", "got_1xx_response", "put_idle_conn"]
    status, headers = rec.args("got_1xx_response")
    assert status == 103
    assert isinstance(headers, roundtrip.Headers)
    assert headers.get_all("link") == ["</style.css>; rel=preload", "</app.js>; rel=preload"]
    assert "link" not in resp.headers


def test_hooks_run_on_the_calling_thread(transport, server):
    srv = server(Observed())
    recs = [Recorder(), Recorder()]
    idents: list[int] = []

    def run() -> None:
        idents.append(threading.get_ident())
        for rec in recs:  # a fresh connection (dial events come from a dial thread), then a reused one
            get(transport, f"http://localhost:{srv.port}/", rec)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(10)
    assert not worker.is_alive() and idents
    assert "connect_done" in recs[0].names and "dns_done" in recs[0].names
    for rec in recs:
        assert {ident for _, _, ident in rec.calls} == {idents[0]}


def test_unknown_hook_is_a_type_error():
    with pytest.raises(TypeError):
        Trace(unknown=lambda: None)
    with pytest.raises(TypeError):
        Trace(get_conn=print, on_everything=print)


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


def tls_server(handler: Callable[[ScriptedConnection], None], server_context: ssl.SSLContext) -> Callable[[ScriptedConnection], None]:
    """A tiny TLS server: the scripted connection's socket wrapped in TLS before ``handler``."""

    def wrapped(conn: ScriptedConnection) -> None:
        try:
            conn.sock = server_context.wrap_socket(conn.sock, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused the certificate
        handler(conn)

    return wrapped


TLS_FRESH = FRESH[:3] + ["tls_handshake_start", "tls_handshake_done"] + FRESH[3:]


def test_tls_events_in_order(make_transport, server, tls_contexts):
    server_context, client_context = tls_contexts
    srv = server(tls_server(Observed(b"secure"), server_context))
    transport = make_transport(ssl_context=client_context)
    rec = Recorder()
    assert get(transport, srv.url("/", scheme="https"), rec) == b"secure"
    assert rec.names == TLS_FRESH + ["read_returned"]
    assert rec.args("get_conn") == (f"https://127.0.0.1:{srv.port}",)
    assert rec.args("tls_handshake_start") == ()
    assert rec.args("tls_handshake_done") == (None,)
    rec = Recorder()
    assert get(transport, srv.url("/again", scheme="https"), rec) == b"secure"
    assert rec.names == REUSED + ["read_returned"], "no handshake on a reused connection"


def test_tls_handshake_done_reports_a_verification_failure(make_transport, server, tls_contexts):
    server_context, _ = tls_contexts
    srv = server(tls_server(Observed(), server_context))
    transport = make_transport(ssl_context=ssl.create_default_context())  # does not trust the test CA
    rec = Recorder()
    with pytest.raises(roundtrip.TLSError) as info:
        transport.round_trip(Request("GET", srv.url("/", scheme="https"), trace=rec.trace))
    assert rec.names == TLS_FRESH[:5]
    (error,) = rec.args("tls_handshake_done")
    assert isinstance(error, roundtrip.TLSError)
    assert info.value.conn_reused is False
    assert transport.pool_stats()["total"] == {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}


# -- a hook that raises ---------------------------------------------------------------------


def assert_nothing_left(transport: roundtrip.Transport) -> None:
    wait_until(lambda: transport.pool_stats()["total"]["dialing"] == 0, "the dial to finish")
    total = transport.pool_stats()["total"]
    assert total == {"idle": 0, "active": 0, "dialing": 0, "waiting": 0}, total


@pytest.mark.parametrize(
    "hook",
    ["get_conn", "got_conn", "wrote_headers", "wrote_request", "got_first_response_byte", "got_1xx_response"],
)
def test_a_raising_hook_fails_the_round_trip_and_closes_the_connection(transport, server, hook):
    observed = Observed(before=b"HTTP/1.1 103 Early Hints\r\n\r\n")
    srv = server(observed)
    rec = Recorder(raise_in=hook)
    with pytest.raises(Boom):
        transport.round_trip(Request("GET", srv.url("/"), trace=rec.trace))
    assert rec.names[-1] == hook, "nothing runs after the hook that raised"
    assert_nothing_left(transport)
    if hook == "get_conn":
        assert srv.accepted == 0, "nothing is dialed"
    else:
        assert observed.closed.wait(5.0), "the server must see the connection closed"


def test_a_dial_hook_raising_before_the_dial_ends_closes_its_connection(make_transport, server, tls_contexts):
    """tls_handshake_start raises while the server holds back its side of the handshake: the
    dial still running is abandoned and its socket closed."""
    server_context, client_context = tls_contexts
    hold = threading.Event()
    seen: dict[str, bool] = {}

    def held(conn: ScriptedConnection) -> None:
        hold.wait(5.0)
        seen["closed"] = conn.wait_closed(5.0)  # the ClientHello, then the client's close

    srv = server(held)
    transport = make_transport(ssl_context=client_context)
    rec = Recorder(raise_in="tls_handshake_start")
    try:
        with pytest.raises(Boom):
            transport.round_trip(Request("GET", srv.url("/", scheme="https"), trace=rec.trace))
    finally:
        hold.set()
    assert_nothing_left(transport)
    wait_until(lambda: "closed" in seen, "the server script")
    assert seen["closed"] is True, "the server must see the connection closed"


@pytest.mark.parametrize(
    "hook", ["dns_start", "dns_done", "connect_start", "connect_done", "tls_handshake_start", "tls_handshake_done"]
)
def test_a_dial_hook_raising_after_the_connection_arrived_closes_it(make_transport, server, tls_contexts, hook):
    server_context, client_context = tls_contexts
    observed = Observed()
    srv = server(tls_server(observed, server_context))
    transport = make_transport(ssl_context=client_context)

    def connection_delivered() -> None:
        # Hooks posted by the dial thread run here while the dial goes on; wait until it has
        # handed its connection over, then raise.
        wait_until(lambda: transport.pool_stats()["total"]["active"] == 1, "the dial to deliver")

    rec = Recorder(raise_in=hook, before_raise=connection_delivered)
    with pytest.raises(Boom):
        transport.round_trip(Request("GET", f"https://localhost:{srv.port}/", trace=rec.trace))
    assert_nothing_left(transport)
    assert observed.closed.wait(5.0), "the server must see the connection closed"


def test_put_idle_conn_raising_propagates_out_of_read_and_closes(transport, server):
    observed = Observed(b"body")
    srv = server(observed)
    rec = Recorder(raise_in="put_idle_conn")
    resp = transport.round_trip(Request("GET", srv.url("/"), trace=rec.trace))
    with resp:
        with pytest.raises(Boom):
            resp.read()
    assert rec.names[-1] == "put_idle_conn"
    assert_nothing_left(transport)
    assert observed.closed.wait(5.0), "the server must see the connection closed"


@pytest.mark.parametrize("case", ["connection-close", "disable-keep-alives", "closed-early"])
def test_put_idle_conn_only_when_the_connection_could_be_kept(make_transport, server, case):
    """Go calls PutIdleConn only for a response read to its end on a connection that may be
    kept alive (transport.go readLoop: ``alive && ... && tryPutIdleConn``, and never with
    errKeepAlivesDisabled); a connection closed on purpose reports nothing."""
    close_header = [("Connection", "close")] if case == "connection-close" else None

    def handler(conn: ScriptedConnection) -> None:
        conn.read_request()
        conn.send(respond(200, b"x" * 100, close_header))
        conn.wait_closed(5.0)

    srv = server(handler)
    transport = make_transport(disable_keep_alives=case == "disable-keep-alives")
    rec = Recorder()
    with transport.round_trip(Request("GET", srv.url("/"), trace=rec.trace)) as resp:
        if case == "closed-early":
            assert resp.read(10) == b"x" * 10
        else:
            assert resp.read() == b"x" * 100
    assert "put_idle_conn" not in rec.names, rec.calls
    assert transport.pool_stats()["total"]["idle"] == 0


def test_got_conn_tells_the_tls_version_of_the_connection(make_transport, server, certs):
    from proxies import tls_handler

    infos: list = []
    trace = roundtrip.Trace(got_conn=infos.append)
    plain = server(keep_alive_handler(b"plain"))
    secure = server(tls_handler(certs.server_context(), keep_alive_handler(b"secure")))
    t = make_transport(ssl_context=certs.client_context())
    for url in (plain.url("/"), secure.url("/", scheme="https"), secure.url("/again", scheme="https")):
        with t.round_trip(roundtrip.Request("GET", url, trace=trace)) as resp:
            resp.read()
    assert [(info.reused, info.tls_version) for info in infos] == [(False, None), (False, "TLSv1.3"), (True, "TLSv1.3")]
