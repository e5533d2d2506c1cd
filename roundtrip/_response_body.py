"""Response bodies coming in (Go's ``body`` and ``bodyEOFSignal``): read from the connection
by their framing (Content-Length, chunked, until close), and gzip decoded on the fly. Each
hands its connection back exactly once, when it ends or is abandoned."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from . import _speedups
from ._errors import Error, IncompleteBody, ProtocolError
from ._request_body import CHUNK

if TYPE_CHECKING:
    from ._events import Parser
    from ._headers import Headers

__all__ = ("Finish", "FixedLengthBody", "ChunkedBody", "UntilCloseBody", "EmptyBody", "GzipBody")


class _Orphans(Protocol):
    def append(self, conn: Any, /) -> None: ...


class Connection(Protocol):
    """What a body reads from: the connection its response came on (``_connection``)."""

    buf: bytearray
    view: memoryview
    reused: bool
    bytes_written: int

    @property
    def orphans(self) -> Optional["_Orphans"]: ...

    def recv_into(self, view: memoryview) -> int: ...

    def close(self) -> None: ...


# Called once per body as finish(conn, reusable): no closure per response.
Finish = Callable[[Any, bool], None]


class _WireBody:
    """A response body read from a connection; ``finish(conn, reusable)`` is called exactly once,
    when the body ends (before the read that reached the end returns) or when it is abandoned."""

    __slots__ = ("_conn", "_finish", "_done", "conn_reused", "bytes_written")

    def __init__(self, conn: Connection, finish: Finish) -> None:
        self._conn = conn
        self._finish = finish
        self._done = False
        # What an error raised while reading reports (conn_reused, bytes_written): the attempt's facts.
        self.conn_reused: bool = conn.reused
        self.bytes_written: int = conn.bytes_written

    def _end(self, reusable: bool) -> None:
        if not self._done:
            self._done = True
            self._finish(self._conn, reusable)

    def _recv(self, view: memoryview) -> int:
        try:
            return self._conn.recv_into(view)
        except Error:
            self._end(False)
            raise
        except OSError as exc:
            self._end(False)
            raise IncompleteBody(f"connection broke while reading the body: {exc}") from exc

    def close(self) -> None:
        # Closing before the end closes the connection: it is not drained.
        if not self._done:  # checked here too: closing a finished body is the usual case
            self._end(False)

    def __del__(self) -> None:
        # The response was dropped before its end without close(). Close the socket here, and
        # leave the pool slot to be freed by the pool's next step: a finalizer may run while
        # this very thread holds the pool's lock.
        if not self._done:
            self._done = True
            conn = self._conn
            conn.close()
            if conn.orphans is not None:
                conn.orphans.append(conn)


class EmptyBody(_WireBody):
    """No body (HEAD, 204, 304, Content-Length: 0): the connection is released at once."""

    __slots__ = ()

    def read(self, amt: Optional[int]) -> bytes:
        return b""


class FixedLengthBody(_WireBody):
    """A body of Content-Length bytes (RFC 9112 §6.2)."""

    __slots__ = ("_remaining", "_buffered", "_reusable")

    def __init__(self, conn: Connection, finish: Finish, length: int, buffered: bytes, reusable: bool) -> None:
        # _WireBody.__init__ written out: one call less for the most common body.
        self._conn = conn
        self._finish = finish
        self._done = False
        self.conn_reused = conn.reused
        self.bytes_written = conn.bytes_written
        self._remaining = length
        self._reusable = reusable
        if len(buffered) > length:
            # Bytes after the body that nobody asked for: the connection is out of step.
            buffered = buffered[:length]
            self._reusable = False
        self._buffered = buffered

    def read(self, amt: Optional[int]) -> bytes:
        remaining = self._remaining
        if remaining == 0 or self._done:
            return b""
        buffered = self._buffered
        if amt is None or amt < 0:
            data = buffered if len(buffered) == remaining else self._read_exactly(remaining)
            self._buffered = b""
            self._remaining = 0
            if not self._done:  # _end, written out for the read of a whole small body
                self._done = True
                self._finish(self._conn, self._reusable)
            return data
        if buffered:
            data = buffered[:amt]
            self._buffered = buffered[amt:]
        else:
            # What has arrived, up to amt (Go's Body.Read), never past the end of the body.
            conn = self._conn
            count = self._recv(conn.view[: min(amt, remaining, len(conn.buf))])
            if count == 0:
                self._end(False)
                raise IncompleteBody(self._short_message(remaining))
            data = bytes(conn.view[:count])
        self._remaining = remaining - len(data)
        if self._remaining == 0:
            self._end(self._reusable)
        return data

    def _read_exactly(self, remaining: int) -> bytes:
        # One buffer, sized once; the socket reads straight into it.
        body, view = _speedups.impl.new_body_buffer(remaining)
        try:
            have = len(self._buffered)
            view[:have] = self._buffered
            while have < remaining:
                count = self._recv(view[have:])
                if count == 0:
                    self._end(False)
                    raise IncompleteBody(self._short_message(remaining - have))
                have += count
        finally:
            view.release()
        return bytes(body)

    def _short_message(self, missing: int) -> str:
        return f"server closed the connection with {missing} bytes of the body still to come"


class UntilCloseBody(_WireBody):
    """A body delimited by the server closing the connection (RFC 9112 §6.3 rule 8)."""

    __slots__ = ("_buffered",)

    def __init__(self, conn: Connection, finish: Finish, buffered: bytes) -> None:
        super().__init__(conn, finish)
        self._buffered = buffered

    def read(self, amt: Optional[int]) -> bytes:
        if self._done and not self._buffered:
            return b""
        if amt is None or amt < 0:
            parts = [self._buffered]
            self._buffered = b""
            while not self._done:
                parts.append(self._read_some(len(self._conn.buf)))
            return b"".join(parts)
        if self._buffered:
            data, self._buffered = self._buffered[:amt], self._buffered[amt:]
            return data
        return self._read_some(amt)

    def _read_some(self, amt: int) -> bytes:
        conn = self._conn
        count = self._recv(conn.view[: min(amt, len(conn.buf))])
        if count == 0:
            self._end(False)
            return b""
        return bytes(conn.view[:count])


class ChunkedBody(_WireBody):
    """A chunked body (RFC 9112 §7.1), decoded by the sans-I/O parser; fills ``trailers``.

    ``read(amt)`` returns what has arrived (at most ``amt``) rather than waiting for ``amt``,
    so streamed responses flow; and the connection is released as soon as the last chunk is
    parsed, even when that happens while serving the read of the final data.
    """

    __slots__ = ("_parser", "_trailers", "_pending", "_reusable")

    def __init__(self, conn: Connection, finish: Finish, parser: Parser, trailers: Headers, reusable: bool) -> None:
        super().__init__(conn, finish)
        self._parser = parser
        self._trailers = trailers
        self._pending = b""
        self._reusable = reusable

    def read(self, amt: Optional[int]) -> bytes:
        if amt is None or amt < 0:
            parts = [self._pending]
            self._pending = b""
            while not self._done:
                self._receive()
                parts.append(self._pending)
                self._pending = b""
            return b"".join(parts)
        if not self._pending and not self._done:
            self._receive()
        data = self._pending[:amt]
        self._pending = self._pending[amt:]
        return data

    def _receive(self) -> None:
        """Block until some body bytes or the end arrive, then take whatever else is already
        buffered without blocking."""
        parser = self._parser
        parts = [self._pending] if self._pending else []
        try:
            while True:
                event = parser.next_event()
                if event is None:
                    if parts or self._done:
                        break
                    conn = self._conn
                    count = self._recv(conn.view)
                    if count == 0:
                        parser.feed_eof()
                    else:
                        parser.feed(conn.view[:count])
                elif type(event) is bytes:
                    parts.append(event)
                else:
                    # After the head, the parser's events are bytes and EndOfBody.
                    self._trailers._items.extend(event.trailers)  # type: ignore[union-attr]
                    self._end(self._reusable and not parser.take_unparsed())
                    break
        except ProtocolError:
            self._end(False)
            raise
        self._pending = b"".join(parts)


class _Decodable(Protocol):
    """What GzipBody wraps: a body from the wire, with the facts of its attempt."""

    @property
    def conn_reused(self) -> bool: ...

    @property
    def bytes_written(self) -> int: ...

    def read(self, amt: Optional[int]) -> bytes: ...

    def close(self) -> None: ...


class GzipBody:
    """Transparent gunzip over another body (``disable_compression=False``), decoding lazily
    and never inflating more than one read's worth at a time.

    RFC 1952 §2.2: a gzip file is a series of members, each with its own header and trailer,
    and Go's gzip reader (multistream mode, its default) decodes them all; so one read
    follows as many member boundaries as its input and ``amt`` allow. Each zlib call is
    capped at what is still wanted, so a small body that inflates hugely (a bomb) costs no
    more memory than the reads asked for.
    """

    __slots__ = ("_inner", "_decoder", "_input", "_pos", "_in_member", "_eof", "_error")

    _MAX_OUT = 1 << 20  # bound on what one read may inflate when no amt is given
    _WINDOW = 4096  # compressed bytes given to zlib per call

    @property
    def conn_reused(self) -> bool:
        return self._inner.conn_reused

    @property
    def bytes_written(self) -> int:
        return self._inner.bytes_written

    def __init__(self, inner: _Decodable) -> None:
        self._inner = inner
        self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._input = b""  # compressed bytes received; those from _pos on are not decoded yet
        self._pos = 0
        self._in_member = False  # the decoder has taken bytes of a member it has not finished
        self._eof = False
        self._error: Optional[ProtocolError] = None  # raised by every read once met

    def read(self, amt: Optional[int]) -> bytes:
        if amt is None or amt < 0:
            parts: list[bytes] = []
            while True:
                piece = self._read_some(self._MAX_OUT)
                if not piece:
                    return b"".join(parts)
                parts.append(piece)
        return self._read_some(amt) if amt else b""

    def _read_some(self, amt: int) -> bytes:
        """Up to ``amt`` decoded bytes: what the input at hand gives, reading the inner body
        only while nothing has been decoded yet; ``b""`` only at the end."""
        if self._error is not None:
            raise self._error
        parts: list[bytes] = []
        wanted = amt
        while wanted:
            if self._pos == len(self._input):
                if self._in_member:
                    # zlib may hold output it had no room for when the input ran out.
                    out = self._inflate(b"", wanted)
                    if out:
                        parts.append(out)
                        wanted -= len(out)
                        continue
                if parts:
                    break
                if not self._eof:
                    self._input = self._inner.read(CHUNK)
                    self._pos = 0
                    if self._input:
                        continue
                    self._eof = True
                if self._in_member:
                    self._error = ProtocolError("gzip body is truncated")
                    raise self._error
                # The end, after a whole member or before any byte (Go's gzip.NewReader
                # reports io.EOF on an empty body, which its transport reads as the end).
                break
            # zlib copies the input it leaves over; feeding a window at a time keeps that
            # copy small when a chunk holds thousands of tiny members.
            window = memoryview(self._input)[self._pos : self._pos + self._WINDOW]
            self._in_member = True
            try:
                out = self._inflate(window, wanted)
            except ProtocolError:
                if parts:
                    break  # what decoded cleanly first; the error comes with the next read
                raise
            decoder = self._decoder
            if decoder.eof:
                # The member's trailer checked out; what follows must be another member
                # (Go's Reader.Read: anything else is ErrHeader, from zlib's header check here).
                self._pos += len(window) - len(decoder.unused_data)
                self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._in_member = False
            else:
                self._pos += len(window) - len(decoder.unconsumed_tail)
            if out:
                parts.append(out)
                wanted -= len(out)
        return b"".join(parts)

    def _inflate(self, data: bytes | memoryview, limit: int) -> bytes:
        try:
            return self._decoder.decompress(data, limit)
        except zlib.error as exc:
            self.close()
            self._error = ProtocolError(f"invalid gzip body: {exc}")
            raise self._error from None

    def close(self) -> None:
        self._inner.close()
