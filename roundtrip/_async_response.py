"""``AsyncResponse`` and its bodies on an event loop: the framings of ``_response_body``
(Content-Length, chunked, until close, none) read from an ``AsyncConnection``, and gzip
decoded by ``_response_body.GzipBody`` fed asynchronously.

Each body hands its connection back exactly once (``finish(conn, reusable)``): when it ends,
before the read that reached the end returns, or when it is closed, fails or is cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator, Callable, Optional, Union

from ._errors import Error, IncompleteBody, ProtocolError, ResponseClosed
from ._events import CHUNKED, UNTIL_CLOSE
from ._framing import frame_response
from ._headers import Headers
from ._models import Response
from ._request_body import CHUNK
from ._response_body import GzipBody

if TYPE_CHECKING:
    from ._async_connection import AsyncConnection
    from ._events import Parser, ResponseHead
    from ._models import Request

__all__ = ("AsyncResponse", "build_response", "Finish")

# finish(conn, reusable): the transport takes the connection back (the body ended, or not).
Finish = Callable[["AsyncConnection", bool], None]


class _AsyncBody:
    """A body read from a connection; ``finish(conn, reusable)`` is called exactly once."""

    __slots__ = ("_conn", "_finish", "_done", "conn_reused", "bytes_written")

    def __init__(self, conn: AsyncConnection, finish: Finish) -> None:
        self._conn = conn
        self._finish = finish
        self._done = False
        self.conn_reused = conn.reused
        self.bytes_written = conn.bytes_written

    def _end(self, reusable: bool) -> None:
        if not self._done:
            self._done = True
            self._finish(self._conn, reusable)

    def close(self) -> None:
        # Closing before the end closes the connection: it is not drained.
        self._end(False)

    async def read(self, amt: Optional[int]) -> bytes:
        if self._done:
            return b""
        try:
            return await self._read(amt)
        except BaseException:
            self._end(False)  # an error, a cancelled task: the connection is closed
            raise

    async def _read(self, amt: Optional[int]) -> bytes:
        raise NotImplementedError

    def _broken(self, missing: Optional[int]) -> Error:
        conn = self._conn
        conn.check()
        lost = conn.lost
        if isinstance(lost, OSError):
            return IncompleteBody(f"connection broke while reading the body: {lost}")
        if missing is None:
            return IncompleteBody("server closed the connection before the last chunk")
        return IncompleteBody(f"server closed the connection with {missing} bytes of the body still to come")

    def __del__(self) -> None:
        # Dropped before its end without aclose(): close the connection; the pool frees its
        # slot at its next step (a finalizer must not run pool steps).
        if not self._done:
            self._done = True
            conn = self._conn
            try:
                conn.close()
            except RuntimeError:
                pass  # its loop is closed already, and the connection with it
            if conn.orphans is not None:
                conn.orphans.append(conn)


class _EmptyBody(_AsyncBody):
    __slots__ = ()

    async def _read(self, amt: Optional[int]) -> bytes:
        return b""


class _FixedLengthBody(_AsyncBody):
    """Content-Length bytes (RFC 9112 §6.2)."""

    __slots__ = ("_remaining", "_reusable")

    def __init__(self, conn: AsyncConnection, finish: Finish, length: int, reusable: bool) -> None:
        # _AsyncBody.__init__ inlined: a step of most responses.
        self._conn = conn
        self._finish = finish
        self._done = False
        self.conn_reused = conn.reused
        self.bytes_written = conn.bytes_written
        self._remaining = length
        self._reusable = reusable

    def arrived(self) -> Optional[bytes]:
        """The whole body when it has all arrived, in one piece (a small response), else None:
        read with no wait and no copy."""
        conn = self._conn
        if conn.raw_size != self._remaining or len(conn.raw) != 1 or self._done:
            return None
        data = conn.raw.popleft()
        conn.raw_size = self._remaining = 0
        self._end(self._reusable and not conn.eof)
        return data

    async def _read(self, amt: Optional[int]) -> bytes:
        conn = self._conn
        remaining = self._remaining
        if amt is None or amt < 0:
            parts = []
            have = 0
            while have < remaining:
                if conn.raw:
                    data = conn.take_raw(remaining - have)
                    parts.append(data)
                    have += len(data)
                elif conn.eof:
                    raise self._broken(remaining - have)
                else:
                    await conn.wait()
            data = b"".join(parts)
        else:
            while not conn.raw:
                if conn.eof:
                    raise self._broken(remaining)
                await conn.wait()
            data = conn.take_raw(min(amt, remaining))
        self._remaining = remaining - len(data)
        if self._remaining == 0:
            # Bytes after the body that nobody asked for: the connection is out of step.
            self._end(self._reusable and not conn.raw and not conn.eof)
        return data


class _UntilCloseBody(_AsyncBody):
    """A body ended by the server closing the connection (RFC 9112 §6.3 rule 8)."""

    __slots__ = ()

    async def _read(self, amt: Optional[int]) -> bytes:
        conn = self._conn
        if amt is None or amt < 0:
            parts = []
            while True:
                while conn.raw:
                    parts.append(conn.take_raw(CHUNK * 16))
                if conn.eof:
                    conn.check()
                    self._end(False)
                    return b"".join(parts)
                await conn.wait()
        while not conn.raw:
            if conn.eof:
                conn.check()
                self._end(False)
                return b""
            await conn.wait()
        return conn.take_raw(amt)


class _ChunkedBody(_AsyncBody):
    """A chunked body (RFC 9112 §7.1) decoded by the parser as bytes arrive; fills trailers."""

    __slots__ = ("_parser", "_trailers", "_pending", "_reusable")

    def __init__(self, conn: AsyncConnection, finish: Finish, parser: Parser, trailers: Headers, reusable: bool) -> None:
        super().__init__(conn, finish)
        self._parser = parser
        self._trailers = trailers
        self._pending = b""
        self._reusable = reusable

    async def read(self, amt: Optional[int]) -> bytes:
        if self._done and not self._pending:
            return b""
        try:
            return await self._read(amt)
        except BaseException:
            self._end(False)
            raise

    async def _read(self, amt: Optional[int]) -> bytes:
        if amt is None or amt < 0:
            parts = [self._pending]
            self._pending = b""
            while not self._done:
                await self._receive()
                parts.append(self._pending)
                self._pending = b""
            return b"".join(parts)
        if not self._pending and not self._done:
            await self._receive()
        data = self._pending[:amt]
        self._pending = self._pending[amt:]
        return data

    async def _receive(self) -> None:
        """Wait until some body bytes or the end arrive, and take all that has arrived."""
        parser = self._parser
        conn = self._conn
        parts = [self._pending] if self._pending else []
        while True:
            event = parser.next_event()
            if event is None:
                if parts or self._done:
                    break
                if conn.eof:
                    conn.check()
                    if isinstance(conn.lost, OSError) or conn.fed_eof:
                        raise self._broken(None)
                    conn.fed_eof = True
                    parser.feed_eof()  # the parser raises for a body cut short
                    continue
                await conn.wait()
            elif type(event) is bytes:
                parts.append(event)
            else:
                # After the head, the parser's events are bytes and EndOfBody.
                self._trailers._items.extend(event.trailers)  # type: ignore[union-attr]
                self._end(self._reusable and not parser.take_unparsed() and not conn.eof)
                break
        self._pending = b"".join(parts)


class _Feed:
    """The inner body ``GzipBody`` reads from: bytes fetched ahead by the async reader, or
    ``_NeedInput`` (raised where ``GzipBody`` has decoded nothing yet, so its state holds)."""

    __slots__ = ("data", "conn_reused", "bytes_written")

    def __init__(self, inner: _AsyncBody) -> None:
        self.data: Optional[bytes] = None
        self.conn_reused = inner.conn_reused
        self.bytes_written = inner.bytes_written

    def read(self, amt: Optional[int]) -> bytes:
        data = self.data
        if data is None:
            raise _NeedInput()
        self.data = None
        return data

    def close(self) -> None:
        pass


class _NeedInput(Exception):
    pass


class _GzipBody:
    """Transparent gunzip over another body, with ``GzipBody``'s decoding and bounds."""

    __slots__ = ("_inner", "_feed", "_decoder", "conn_reused", "bytes_written")

    def __init__(self, inner: _AsyncBody) -> None:
        self._inner = inner
        self._feed = _Feed(inner)
        self._decoder = GzipBody(self._feed)
        self.conn_reused = inner.conn_reused
        self.bytes_written = inner.bytes_written

    async def read(self, amt: Optional[int]) -> bytes:
        if amt is None or amt < 0:
            parts: list[bytes] = []
            while True:
                piece = await self._read_some(GzipBody._MAX_OUT)
                if not piece:
                    return b"".join(parts)
                parts.append(piece)
        return await self._read_some(amt) if amt else b""

    async def _read_some(self, amt: int) -> bytes:
        while True:
            try:
                return self._decoder._read_some(amt)
            except _NeedInput:
                self._feed.data = await self._inner.read(CHUNK)
            except ProtocolError:
                self._inner.close()
                raise

    def close(self) -> None:
        self._inner.close()


AsyncBody = Union[_AsyncBody, _GzipBody]


class AsyncResponse:
    """One HTTP response on an event loop; ``await read()`` or ``async for`` over
    ``iter_bytes()`` its body, then ``await aclose()`` it (or use ``async with``).

    A response from the wire returns its connection to the pool when a read reaches the end of
    the body; closing it before then closes the connection.
    """

    __slots__ = ("status_code", "reason", "http_version", "headers", "request", "content_length", "uncompressed", "trailers", "closed", "_body", "_sync")

    status_code: int
    reason: str
    http_version: str
    headers: Headers
    request: Optional[Request]
    content_length: Optional[int]
    uncompressed: bool
    trailers: Headers
    closed: bool
    _body: Optional[AsyncBody]
    _sync: Optional[Response]  # a plain Response from a registered round tripper

    @classmethod
    def _wrap(cls, response: Response) -> AsyncResponse:
        """An ``AsyncResponse`` reading a plain ``Response`` (from a registered round tripper)."""
        wrapped = cls.__new__(cls)
        for name in ("status_code", "reason", "http_version", "headers", "request", "content_length", "uncompressed", "trailers", "closed"):
            setattr(wrapped, name, getattr(response, name))
        wrapped._body = None
        wrapped._sync = response
        return wrapped

    async def read(self, amt: Optional[int] = None) -> bytes:
        """All the remaining body, or at most ``amt`` bytes; ``b""`` at the end.

        Raises ``ResponseClosed`` after ``aclose()``, and ``ProtocolError`` (or a subclass)
        when the body on the wire is malformed or cut short.
        """
        if self.closed:
            raise ResponseClosed("response body read after close")
        body = self._body
        if body is None:
            assert self._sync is not None
            return self._sync.read(amt)
        if (amt is None or amt < 0) and type(body) is _FixedLengthBody:
            data = body.arrived()
            if data is not None:
                return data
        try:
            return await body.read(amt)
        except Error as exc:
            exc.conn_reused = body.conn_reused
            exc.bytes_written = body.bytes_written
            raise

    async def iter_bytes(self, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        """Yield the body in pieces of at most ``chunk_size`` bytes."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        while True:
            data = await self.read(chunk_size)
            if not data:
                return
            yield data

    async def aclose(self) -> None:
        """Release the response; a body not read to its end closes its connection."""
        if not self.closed:
            self.closed = True
            if self._body is not None:
                self._body.close()
            elif self._sync is not None:
                self._sync.close()

    async def __aenter__(self) -> AsyncResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncResponse [{self.status_code} {self.reason}]>"


def build_response(conn: AsyncConnection, request: Request, method: str, close_after: bool, gzip_requested: bool, parser: Parser, head: ResponseHead, finish: Finish) -> AsyncResponse:
    """The response for ``head``, its body framed as ``_framing`` decides (RFC 9112 §6.3)."""
    facts = parser.head_facts()
    length = head.body_length
    if length > 0 and not (facts[1] and gzip_requested):
        # Most responses: Content-Length bytes, not decoded. ``frame_response`` decides the
        # same here (every field kept, the length said as it is) without building a Framing.
        response = AsyncResponse.__new__(AsyncResponse)
        response.status_code = status = head.status_code
        response.reason = head.reason
        response.http_version = head.http_version
        response.request = request
        response.uncompressed = False
        response.trailers = Headers()
        response.closed = False
        response.content_length = length
        response.headers = Headers._from_list(head.headers)
        response._sync = None
        conn.raw_mode(parser.take_unparsed())
        response._body = _FixedLengthBody(conn, finish, length, not close_after and status != 101 and facts[0])
        return response
    framing = frame_response(head, facts, method, close_after, gzip_requested)
    reusable = framing.reusable
    length = framing.length
    response = AsyncResponse.__new__(AsyncResponse)
    response.status_code = head.status_code
    response.reason = head.reason
    response.http_version = head.http_version
    response.request = request
    response.uncompressed = framing.gunzip
    response.trailers = Headers()
    response.closed = False
    response.content_length = framing.content_length
    response.headers = Headers._from_list(framing.fields)
    response._sync = None
    body: AsyncBody
    if length == CHUNKED:
        body = _ChunkedBody(conn, finish, parser, response.trailers, reusable)
    else:
        conn.raw_mode(parser.take_unparsed())
        if length == UNTIL_CLOSE:
            body = _UntilCloseBody(conn, finish)
        elif length == 0:
            body = _EmptyBody(conn, finish)
            body._end(reusable and not conn.raw)
        else:
            body = _FixedLengthBody(conn, finish, length, reusable)
    response._body = _GzipBody(body) if framing.gunzip else body
    return response
