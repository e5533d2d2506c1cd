"""Go's retry rules (Go's ``persistConn.shouldRetryRequest``), case by case.

Each scripted server answers the first request on its first connection, then fails the second
request in a chosen way; the test checks whether the request went again on a new connection,
with the reason Trace reports, and that the replay was byte-identical.
"""

from __future__ import annotations

import io
import socket

import pytest

import roundtrip

from servers import respond


def _answer_then(fail):
    """Connection 0 answers one request, then ``fail(conn)`` for the next; later connections
    answer everything."""

    def first(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        fail(conn)

    def later(conn):
        for _ in conn.requests():
            conn.send(respond(200, b"again"))

    return [first, later]


def _close_after_reading_request(conn):
    conn.read_request()
    conn.close()


def _reset_after_reading_request(conn):
    conn.read_request()
    conn.reset()


def _retries(trace_log):
    return roundtrip.Trace(retried=lambda reason, attempt: trace_log.append((reason, attempt)))


def _prime(transport, srv):
    with transport.round_trip(roundtrip.Request("GET", srv.url("/prime"))) as resp:
        assert resp.read() == b"first"


@pytest.mark.parametrize(
    "method, headers, retried",
    [
        ("GET", {}, True),
        ("HEAD", {}, True),
        ("OPTIONS", {}, True),
        ("TRACE", {}, True),
        ("POST", {}, False),
        ("PUT", {}, False),
        ("DELETE", {}, False),
        ("POST", {"Idempotency-Key": "k1"}, True),
        ("POST", {"X-Idempotency-Key": "k1"}, True),
        ("PATCH", {"Idempotency-Key": ""}, True),
    ],
)
def test_server_closing_a_reused_connection_retries_only_replayable_requests(transport, server, method, headers, retried):
    srv = server(_answer_then(_close_after_reading_request))
    _prime(transport, srv)
    log: list = []
    request = roundtrip.Request(method, srv.url("/second"), headers=headers, body=b"payload" if method in ("POST", "PUT", "PATCH") else None, trace=_retries(log))
    if retried:
        with transport.round_trip(request) as resp:
            assert resp.status_code == 200
            resp.read()
        assert log == [("read_from_server_failed", 1)]
        first_try, replay = srv.received[1], srv.received[2]
        assert first_try.raw == replay.raw, "the replay must be byte-identical"
        assert (first_try.connection, replay.connection) == (0, 1)
    else:
        with pytest.raises(roundtrip.ServerDisconnected) as info:
            transport.round_trip(request)
        assert log == []
        assert info.value.conn_reused is True
        assert info.value.bytes_written == len(srv.received[1].raw)
        assert srv.accepted == 1


def test_empty_idempotency_key_is_not_sent(transport, server):
    srv = server(_answer_then(_close_after_reading_request))
    _prime(transport, srv)
    request = roundtrip.Request("POST", srv.url("/k"), headers={"Idempotency-Key": ""}, body=b"x")
    with transport.round_trip(request) as resp:
        resp.read()
    assert all(r.header("idempotency-key") is None for r in srv.received[1:])


def test_reset_before_any_response_byte_is_retried_as_read_failure(transport, server):
    srv = server(_answer_then(_reset_after_reading_request))
    _prime(transport, srv)
    log: list = []
    with transport.round_trip(roundtrip.Request("GET", srv.url("/r"), trace=_retries(log))) as resp:
        assert resp.read() == b"again"
    assert log == [("read_from_server_failed", 1)]


def test_failure_after_a_response_byte_is_never_retried(transport, server):
    def partial_head(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-")
        conn.close()

    srv = server(_answer_then(partial_head))
    _prime(transport, srv)
    log: list = []
    with pytest.raises(roundtrip.ProtocolError):
        transport.round_trip(roundtrip.Request("GET", srv.url("/p"), trace=_retries(log)))
    assert log == [] and srv.accepted == 1


def test_failure_on_a_fresh_connection_is_never_retried(transport, server):
    srv = server(_close_after_reading_request)
    log: list = []
    with pytest.raises(roundtrip.ServerDisconnected) as info:
        transport.round_trip(roundtrip.Request("GET", srv.url("/"), trace=_retries(log)))
    assert log == [] and srv.accepted == 1
    assert info.value.conn_reused is False
    assert info.value.bytes_written == len(srv.received[0].raw)


def test_idle_connection_closed_by_server_is_replaced_before_sending(transport, server):
    def answer_and_close(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.close()

    def later(conn):
        for _ in conn.requests():
            conn.send(respond(200, b"fresh"))

    srv = server([answer_and_close, later])
    _prime(transport, srv)
    srv_closed = srv._threads[0]
    srv_closed.join(5)
    log: list = []
    # Even a POST, which may never be retried, must not go out on the dead socket.
    with transport.round_trip(roundtrip.Request("POST", srv.url("/p"), body=b"data", trace=_retries(log))) as resp:
        assert resp.read() == b"fresh"
    assert log == []
    assert [r.method for r in srv.received] == ["GET", "POST"]
    assert srv.received[1].connection == 1


def test_unsolicited_408_on_an_idle_connection_closes_it_silently(transport, server):
    ready = __import__("threading").Event()

    def answer_then_408(conn):
        conn.read_request()
        conn.send(respond(200, b"first"))
        conn.send(respond(408, b"", [("Connection", "close")], reason="Request Timeout"))
        ready.set()
        conn.wait_closed()

    def later(conn):
        for _ in conn.requests():
            conn.send(respond(200, b"fresh"))

    srv = server([answer_then_408, later])
    _prime(transport, srv)
    assert ready.wait(5)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/x"))) as resp:
        assert (resp.status_code, resp.read()) == (200, b"fresh")
    assert srv.accepted == 2


class _FailingSendSocket(socket.socket):
    """A socket whose ``fail_sends``-th send onwards fails before writing anything."""

    fail_from = 2

    def send(self, data, *args):  # type: ignore[override]
        self.sends = getattr(self, "sends", 0) + 1
        if self.sends >= self.fail_from:
            raise BrokenPipeError(32, "Broken pipe")
        return super().send(data, *args)


def _dial_failing_second_send(host, port, timeout):
    sock = _FailingSendSocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect((host, port))
    sock.settimeout(None)
    return sock


def _first_connection_only_then_keepalive(conn):
    for _ in conn.requests():
        conn.send(respond(200, b"ok"))


def test_nothing_written_on_a_reused_connection_retries_even_a_post(make_transport, server):
    calls = []

    def dial(host, port, timeout):
        calls.append(port)
        if len(calls) == 1:
            return _dial_failing_second_send(host, port, timeout)
        return socket.create_connection((host, port), timeout)

    transport = make_transport(dial=dial)
    srv = server(_first_connection_only_then_keepalive)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        resp.read()
    log: list = []
    with transport.round_trip(roundtrip.Request("POST", srv.url("/p"), body=b"abc", trace=_retries(log))) as resp:
        assert resp.read() == b"ok"
    assert log == [("nothing_written", 1)]
    assert [r.method for r in srv.received] == ["GET", "POST"]
    assert srv.received[1].body == b"abc"


def test_nothing_written_with_an_unreplayable_body_is_not_retried(make_transport, server):
    calls = []

    def dial(host, port, timeout):
        calls.append(port)
        return _dial_failing_second_send(host, port, timeout)

    transport = make_transport(dial=dial)
    srv = server(_first_connection_only_then_keepalive)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        resp.read()
    body = iter([b"chunk"])
    with pytest.raises(roundtrip.ServerDisconnected) as info:
        transport.round_trip(roundtrip.Request("POST", srv.url("/p"), body=body))
    assert info.value.conn_reused is True and info.value.bytes_written == 0
    assert len(calls) == 1


def test_replay_rewinds_a_file_body_with_get_body(transport, server):
    srv = server(_answer_then(_close_after_reading_request))
    _prime(transport, srv)
    body = io.BytesIO(b"skip:file-body")
    body.seek(5)
    request = roundtrip.Request("PUT", srv.url("/f"), headers={"Idempotency-Key": "abc"}, body=body)
    with transport.round_trip(request) as resp:
        resp.read()
    assert [r.body for r in srv.received[1:]] == [b"file-body", b"file-body"]
    assert not body.closed


def test_get_body_failure_raises_unrewindable_body(transport, server):
    srv = server(_answer_then(_close_after_reading_request))
    _prime(transport, srv)

    def broken_get_body():
        raise OSError("gone")

    request = roundtrip.Request("PUT", srv.url("/f"), headers={"Idempotency-Key": "abc"}, body=iter([b"abc"]), get_body=broken_get_body)
    with pytest.raises(roundtrip.UnrewindableBody):
        transport.round_trip(request)


class _PartialThenFailingSocket(socket.socket):
    """Answers the first request normally; on the second, takes 10 bytes, then breaks."""

    def send(self, data, *args):  # type: ignore[override]
        self.sends = getattr(self, "sends", 0) + 1
        if self.sends == 2:
            return super().send(memoryview(data)[:10], *args)
        if self.sends > 2:
            raise BrokenPipeError(32, "Broken pipe")
        return super().send(data, *args)


def test_a_write_that_fails_part_way_is_not_retried_even_for_a_get(make_transport, server):
    # Go's mapRoundTripError: a broken connection after some request bytes were written is no
    # nothingWrittenError and no read failure: the server may have acted on what it got.
    def dial(host, port, timeout):
        sock = _PartialThenFailingSocket(socket.AF_INET, socket.SOCK_STREAM)
        sock.connect((host, port))
        return sock

    transport = make_transport(dial=dial)
    srv = server(_first_connection_only_then_keepalive)
    with transport.round_trip(roundtrip.Request("GET", srv.url("/"))) as resp:
        resp.read()
    log: list = []
    with pytest.raises(roundtrip.ServerDisconnected) as info:
        transport.round_trip(roundtrip.Request("GET", srv.url("/second"), trace=_retries(log)))
    assert log == []
    assert (info.value.conn_reused, info.value.bytes_written) == (True, 10)
    assert "while the request was being written" in str(info.value)


@pytest.mark.parametrize(
    "bytes_written, write_failed, got_response_byte, reason",
    [
        (0, False, False, "nothing_written"),
        (0, True, False, "nothing_written"),
        (120, False, False, "read_from_server_failed"),
        (120, True, False, None),
        (120, False, True, None),
    ],
)
def test_retry_reason_follows_gos_classification(bytes_written, write_failed, got_response_byte, reason):
    from roundtrip._retry import retry_reason

    assert retry_reason(bytes_written, write_failed, got_response_byte) == reason
