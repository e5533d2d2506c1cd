"""One HTTP/1.1 connection on an event loop: an ``asyncio.BufferedProtocol`` that receives
straight into the connection's buffer and feeds the parser as bytes arrive (Go's
``persistConn.readLoop``), and the exchange of one request on it.

The protocol learns at once that the server closed an idle connection (``eof_received`` or
``connection_lost``), so a dead idle connection is never handed out and needs no poll.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._connection import _CONTINUE, AttemptFailed, _Answer, _head_events, _io_error
from ._events import ResponseHead
from ._errors import Error, ResponseHeaderTimeout, ServerDisconnected
from ._retry import retry_reason

if TYPE_CHECKING:
    from ._context import Context
    from ._events import Parser
    from ._prepare import PreparedRequest
    from ._route import PoolKey
    from ._trace import Trace

__all__ = ("AsyncConnection", "write_whole", "send_body", "read_head", "await_final_head", "RAW_HIGH_WATER")

# The exchange's head logic reads nothing of a connection but its ``trace``: it serves both.
_next_answer: Callable[[Any, "Parser", bool], _Answer] = _head_events
# ... and ``_io_error`` only its attempt's facts (bytes written, a response byte seen).
io_error: Callable[[Any, OSError], Error] = _io_error
_BUFFER_SIZE = 65536
# Bodies up to this size go out in the same write as the head.
_COALESCE_LIMIT = 65536
# Body bytes received ahead of the reader beyond which reading from the socket pauses.
RAW_HIGH_WATER = 1 << 18

# What the protocol does with the bytes it receives.
_IDLE, _PARSE, _RAW = 0, 1, 2


class AsyncConnection(asyncio.BufferedProtocol):
    """A connection's protocol, its buffer, and the bookkeeping of the attempt using it.

    In ``_PARSE`` mode every byte goes to the exchange's parser (the response head, a chunked
    body); in ``_RAW`` mode body bytes are queued for the reader (Content-Length and
    until-close bodies); ``_IDLE``, a byte is unsolicited and the connection is done for.
    """

    def __init__(self, key: PoolKey, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.loop = loop
        self.transport: Optional[asyncio.Transport] = None
        self.buf = bytearray(_BUFFER_SIZE)
        self.view = memoryview(self.buf)
        self.mode = _IDLE
        self.parser: Optional[Parser] = None
        self.raw: deque[bytes] = deque()
        self.raw_size = 0
        self.eof = False  # the server will send nothing more (EOF, reset, or closed by us)
        self.lost: Optional[BaseException] = None  # the error the connection ended with
        self.stopped: Optional[Error] = None  # Cancelled or a Timeout that closed it
        self.waiter: Optional[asyncio.Future[None]] = None  # a reader waiting for bytes
        self.drainer: Optional[asyncio.Future[None]] = None  # a writer waiting for room
        self.paused = False  # the transport asked writers to wait (pause_writing)
        self.reading_paused = False
        self.idle_since = 0.0
        self.closed = False
        self.reused = False
        self.bytes_written = 0
        self.write_failed = False
        self.got_response_byte = False
        self.received = False  # a byte of the response arrived (the exchange reports it)
        self.fed_eof = False
        self.trace: Optional[Trace] = None
        self.context: Optional[Context] = None
        self.guard: Any = None  # the request's deadline and cancel watch, while it reads the body
        self.orphans: Optional[deque[AsyncConnection]] = None  # where a dropped response leaves it
        self.on_idle_lost: Optional[Callable[[AsyncConnection], None]] = None
        self.tls_version: Optional[str] = None

    # -- protocol callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.tls_version = ssl_object.version()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        mode = self.mode
        if mode == _PARSE:
            self.received = True
            self.parser.feed(self.view[:nbytes])  # type: ignore[union-attr]
        elif mode == _RAW:
            self.raw.append(bytes(self.view[:nbytes]))
            self.raw_size += nbytes
            if self.raw_size > RAW_HIGH_WATER and not self.reading_paused and self.transport is not None:
                self.reading_paused = True
                self.transport.pause_reading()
        else:
            # Go's readLoop: a byte on an idle connection is an unsolicited response (a 408,
            # say); the connection cannot be used again.
            self._end(None)
            return
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool:
        self._end(None)
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if exc is not None and self.mode == _PARSE and not self.eof:
            self._salvage()
        self._end(exc)

    def _salvage(self) -> None:
        """A write failed (the server closed, or reset, the connection): take in what it sent
        before, as the threaded transport would still read it. The loop stops reading a
        connection once a write fails; a response that came first (413, say) is still in the
        socket. Plain TCP only: a TLS connection's bytes need its TLS layer."""
        transport = self.transport
        if transport is None or transport.get_extra_info("sslcontext") is not None or transport.get_extra_info("ssl_object") is not None:
            return
        sock = transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        if fd < 0:
            return
        try:
            with socket.socket(fileno=os.dup(fd)) as copy:
                copy.setblocking(False)
                for _ in range(64):  # what the receive buffer holds, at most
                    count = copy.recv_into(self.view)
                    if not count:
                        return
                    self.received = True
                    self.parser.feed(self.view[:count])  # type: ignore[union-attr]
        except (OSError, Error):
            return  # nothing more (EAGAIN, reset), or bytes the parser refuses: the reader says so

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        drainer = self.drainer
        if drainer is not None and not drainer.done():
            drainer.set_result(None)

    def _end(self, exc: Optional[BaseException]) -> None:
        first = not self.eof
        self.eof = True
        if exc is not None and self.lost is None:
            self.lost = exc
        for future in (self.waiter, self.drainer):
            if future is not None and not future.done():
                future.set_result(None)
        if self.mode == _IDLE:
            self.close()
            if first and self.on_idle_lost is not None:
                self.on_idle_lost(self)  # out of the idle pool at once (Go's readLoop)

    # -- use ---------------------------------------------------------------------------------

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.eof = True
            if self.transport is not None:
                self.transport.abort()
            for future in (self.waiter, self.drainer):
                if future is not None and not future.done():
                    future.set_result(None)

    def stop(self, error: Error) -> None:
        """Cancel or deadline: close the connection and make its waits raise ``error``."""
        if self.stopped is None:
            self.stopped = error
        self.close()

    def is_stale(self) -> bool:
        return self.eof or self.closed

    def check(self) -> None:
        """Raise what stopped the attempt (cancel, deadline), if anything did."""
        if self.stopped is not None:
            raise self.stopped

    async def wait(self) -> None:
        """Wait for more bytes or the end; raises what stopped the attempt."""
        if self.stopped is not None:
            raise self.stopped
        if self.eof:
            return
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        waiter = self.waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self.waiter = None
        if self.stopped is not None:
            raise self.stopped

    def take_raw(self, limit: int) -> bytes:
        """Up to ``limit`` queued body bytes (``limit`` > 0)."""
        raw = self.raw
        data = raw.popleft()
        if len(data) > limit:
            raw.appendleft(data[limit:])
            data = data[:limit]
        self.raw_size -= len(data)
        if self.reading_paused and self.raw_size <= RAW_HIGH_WATER // 2 and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    def write(self, data: Any) -> None:
        """Queue ``data`` on the transport, counting it in ``bytes_written``."""
        if self.eof or self.transport is None or self.transport.is_closing():
            self.check()
            self.write_failed = True
            raise ConnectionResetError("connection closed by the server")
        self.transport.write(data)
        self.bytes_written += len(data)

    async def drain(self) -> None:
        """Wait until the transport takes more (flow control for large bodies)."""
        if self.paused and not self.eof:
            drainer = self.drainer = self.loop.create_future()
            try:
                await drainer
            finally:
                self.drainer = None
        self.check()
        if self.eof:
            self.write_failed = True
            raise ConnectionResetError("connection closed while the request was being written")

    def failure_reason(self) -> Optional[str]:
        return retry_reason(self.bytes_written, self.write_failed, self.got_response_byte)

    def begin(self, parser: Parser, trace: Optional[Trace]) -> None:
        """A new attempt on this connection: its parser takes every byte from now on."""
        self.bytes_written = 0
        self.write_failed = False
        self.got_response_byte = False
        self.received = False
        self.fed_eof = False
        self.trace = trace
        self.parser = parser
        self.mode = _PARSE

    def raw_mode(self, buffered: bytes) -> None:
        """Body bytes from here on are queued for the reader, after ``buffered``."""
        self.mode = _RAW
        self.parser = None
        if buffered:
            self.raw.appendleft(buffered)
            self.raw_size += len(buffered)

    def idle(self) -> None:
        self.mode = _IDLE
        self.parser = None
        self.raw.clear()
        self.raw_size = 0

    def lost_error(self) -> OSError:
        lost = self.lost
        return lost if isinstance(lost, OSError) else ConnectionResetError("connection closed by the server")


def _events(conn: AsyncConnection, parser: Parser, awaiting_continue: bool) -> _Answer:
    """The next final head (or ``_CONTINUE``) among what has arrived, without waiting."""
    if conn.received and not conn.got_response_byte:
        conn.got_response_byte = True
        trace = conn.trace
        if trace is not None and trace.got_first_response_byte is not None:
            trace.got_first_response_byte()
    return _next_answer(conn, parser, awaiting_continue)


async def read_head(conn: AsyncConnection, parser: Parser, awaiting_continue: bool = False, expiry: Optional[_Expiry] = None) -> _Answer:
    """Wait for a final head (or ``_CONTINUE``); the attempt fails if the connection ends first.
    With ``expiry``, None once it has expired."""
    while True:
        if conn.received or conn.eof:  # nothing to parse before the first byte comes
            answer = _events(conn, parser, awaiting_continue)
            if answer is not None:
                return answer
        if expiry is not None and expiry.expired:
            conn.check()
            return None
        if conn.eof:
            conn.check()
            lost = conn.lost
            if isinstance(lost, OSError):
                raise AttemptFailed(io_error(conn, lost), conn.failure_reason())
            if not conn.got_response_byte:
                raise AttemptFailed(ServerDisconnected("server closed the connection before responding"), conn.failure_reason())
            if not conn.fed_eof:
                conn.fed_eof = True
                parser.feed_eof()
                continue
            raise AttemptFailed(io_error(conn, ConnectionResetError("connection closed by the server")), conn.failure_reason())
        # conn.wait() inlined: a step of every request.
        waiter = conn.waiter = conn.loop.create_future()
        try:
            await waiter
        finally:
            conn.waiter = None
        if conn.stopped is not None:
            raise conn.stopped


def write_whole(conn: AsyncConnection, prepared: PreparedRequest) -> bool:
    """Write a request with no body or a small one in one ``transport.write``; False (nothing
    written) when the body needs ``send_body``."""
    body = prepared.body
    if body is None:
        # conn.write() inlined: a step of every request without a body.
        transport = conn.transport
        if conn.eof or transport is None or transport.is_closing():
            conn.check()
            conn.write_failed = True
            raise ConnectionResetError("connection closed by the server")
        head = prepared.head
        transport.write(head)
        conn.bytes_written += len(head)
    elif body.data is not None and len(body.data) <= _COALESCE_LIMIT and not prepared.expect_continue:
        conn.write(prepared.head + body.data if len(body.data) else prepared.head)
    else:
        return False
    trace = prepared.trace
    if trace is not None:
        if trace.wrote_headers is not None:
            trace.wrote_headers()
        if trace.wrote_request is not None:
            trace.wrote_request(None)
    return True


async def send_body(conn: AsyncConnection, prepared: PreparedRequest, parser: Parser, pieces: Callable[[], Any]) -> Optional[ResponseHead]:
    """Write the head, then the body (``pieces()``: its wire pieces, an async iterator); return
    a final head that arrived while writing, or None. Mirrors ``_connection._write_request``."""
    trace = prepared.trace
    head = prepared.head
    conn.write(head)
    if trace is not None and trace.wrote_headers is not None:
        trace.wrote_headers()
    answer: _Answer = None
    awaiting_continue = prepared.expect_continue
    if awaiting_continue:
        answer = await _await_continue(conn, prepared, parser)
        if answer is _CONTINUE:
            awaiting_continue = False
            answer = _events(conn, parser, False)
            if isinstance(answer, ResponseHead):
                prepared.close_after = True  # the body never went: the connection is out of step
                return answer
        elif isinstance(answer, ResponseHead):
            keeps_alive = parser.head_facts()[0]
            if not keeps_alive or prepared.wants_close:
                prepared.close_after = True
                return answer
    stream = pieces()
    try:
        async for piece in stream:
            # Let the loop take in what has arrived (the threaded transport polls here): an
            # answer or a 1xx sent while the body goes out is seen before the next piece.
            await asyncio.sleep(0)
            if answer is None:
                answer = _events(conn, parser, awaiting_continue)
                if answer is _CONTINUE:
                    answer, awaiting_continue = None, False
                elif answer is not None:
                    # The server answered before the body was done: stop and return that answer
                    # (Go returns the response, not a write error); the connection cannot be reused.
                    prepared.close_after = True
                    return answer
            conn.write(piece)
            await conn.drain()
    except OSError as exc:
        conn.check()
        prepared.close_after = True
        if trace is not None and trace.wrote_request is not None:
            trace.wrote_request(exc)
        return answer  # type: ignore[return-value]
    finally:
        await stream.aclose()  # now, not by the loop's finalizer (a body left part-way)
    if trace is not None and trace.wrote_request is not None:
        trace.wrote_request(None)
    return answer  # type: ignore[return-value]


async def _await_continue(conn: AsyncConnection, prepared: PreparedRequest, parser: Parser) -> _Answer:
    """``Expect: 100-continue`` (RFC 9110 §10.1.1): wait up to ``expect_continue_timeout`` for
    100 before sending the body. Returns ``_CONTINUE``, None when the wait ended without an
    answer, or the head of a final response that came instead."""
    trace = prepared.trace
    if trace is not None and trace.wait_100_continue is not None:
        trace.wait_100_continue()
    timeout = prepared.options.expect_continue_timeout
    if timeout is None or timeout <= 0:
        return None
    expiry = _Expiry(conn)
    handle = conn.loop.call_later(timeout, expiry)
    try:
        return await read_head(conn, parser, True, expiry)  # None: no answer in time, the body goes
    finally:
        handle.cancel()


class _Expiry:
    """A wait that ends at a time (the timer calls it) without failing the attempt."""

    __slots__ = ("conn", "expired")

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.expired = False

    def __call__(self) -> None:
        self.expired = True
        waiter = self.conn.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def await_final_head(conn: AsyncConnection, prepared: PreparedRequest, parser: Parser) -> ResponseHead:
    """Read the final head once the request is written, bounded by ``response_header_timeout``."""
    limit = prepared.options.response_header_timeout
    if limit is None:
        return await read_head(conn, parser)  # type: ignore[return-value]
    handle = conn.loop.call_later(limit, conn.stop, ResponseHeaderTimeout("timeout awaiting response headers"))
    try:
        return await read_head(conn, parser)  # type: ignore[return-value]
    finally:
        handle.cancel()
