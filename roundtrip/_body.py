"""Request bodies going out (Go's ``transferWriter``) and response bodies coming in
(Go's ``body`` and ``bodyEOFSignal``)."""

from __future__ import annotations

import os
import stat
import zlib
from typing import Any, Callable, Iterator, Optional

from . import _speedups
from ._errors import Error, IncompleteBody, InvalidRequest, ProtocolError

__all__ = (
    "OutgoingBody",
    "plan_body",
    "FixedLengthBody",
    "ChunkedBody",
    "UntilCloseBody",
    "EmptyBody",
    "GzipBody",
)

BYTES_LIKE = (bytes, bytearray, memoryview)  # bodies held in memory
# RFC 9110 §8.6: a user agent sends Content-Length: 0 for these methods even without a body.
_EXPECTS_BODY = frozenset(("POST", "PUT", "PATCH"))
_CHUNK = 65536


class OutgoingBody:
    """How a request body goes on the wire: ``length`` bytes, or chunked when ``length`` is None."""

    __slots__ = ("data", "source", "length")

    def __init__(self, data: Any, source: Any, length: Optional[int]) -> None:
        self.data = data  # bytes-like held in memory, or None
        self.source = source  # a file or an iterable, or None
        self.length = length

    @property
    def chunked(self) -> bool:
        return self.length is None

    def pieces(self) -> Iterator[Any]:
        """The body as it goes on the wire: framed for chunked, checked for fixed length."""
        if self.data is not None:
            if len(self.data):
                yield self.data
            return
        chunks = _read_source(self.source)
        if self.length is None:
            # RFC 9112 §7.1: chunk = chunk-size CRLF chunk-data CRLF; last-chunk = "0" CRLF CRLF.
            for chunk in chunks:
                yield b"%x\r\n" % len(chunk)
                yield chunk
                yield b"\r\n"
            yield b"0\r\n\r\n"
            return
        sent = 0
        for chunk in chunks:
            sent += len(chunk)
            if sent > self.length:
                raise InvalidRequest(f"request body is longer than its Content-Length {self.length}")
            yield chunk
        if sent != self.length:
            raise InvalidRequest(f"request body of {sent} bytes is shorter than its Content-Length {self.length}")


def _read_source(source: Any) -> Iterator[Any]:
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            chunk = read(_CHUNK)
            if not chunk:
                return
            if not isinstance(chunk, BYTES_LIKE):
                raise InvalidRequest("request body file must be opened in binary mode")
            yield chunk
    for chunk in source:
        if not isinstance(chunk, BYTES_LIKE):
            raise InvalidRequest(f"request body iterable yielded {type(chunk).__name__}, not bytes")
        if len(chunk):  # an empty chunk would end a chunked body early
            yield chunk


def _file_size(body: Any) -> Optional[int]:
    """Bytes left in a file from its current position, or None when it cannot be known."""
    try:
        status = os.fstat(body.fileno())
        if not stat.S_ISREG(status.st_mode):
            return None  # a pipe or socket: its size is not known in advance
        return max(status.st_size - body.tell(), 0)
    except (AttributeError, OSError, ValueError, TypeError):
        pass
    try:
        if not body.seekable():
            return None
        here = body.tell()
        end = body.seek(0, os.SEEK_END)
        body.seek(here)
        return max(end - here, 0)
    except (AttributeError, OSError, ValueError, TypeError):
        return None


def plan_body(method: str, body: Any, declared_length: Optional[int]) -> Optional[OutgoingBody]:
    """Decide the framing of ``body`` (the rules of ``Request``'s ``body``); ``None`` means no body and no
    framing header. ``declared_length`` is the caller's Content-Length, used for bodies
    whose size cannot be known otherwise."""
    if body is None:
        return OutgoingBody(b"", None, 0) if method in _EXPECTS_BODY else None
    if isinstance(body, BYTES_LIKE):
        data = body if not isinstance(body, memoryview) else body.cast("B") if body.ndim <= 1 else bytes(body)
        if not len(data) and method not in _EXPECTS_BODY:
            return None  # Go's outgoingLength: an empty body sends no Content-Length outside POST/PUT/PATCH
        return OutgoingBody(data, None, len(data))
    if isinstance(body, str):
        raise InvalidRequest("request body must be bytes, a binary file or an iterable of bytes, not str")
    if hasattr(body, "read"):
        length = _file_size(body)
    elif hasattr(body, "__iter__"):
        length = None
    else:
        raise InvalidRequest(f"request body of type {type(body).__name__} is not supported")
    if length is None:
        length = declared_length
    return OutgoingBody(None, body, length)


# -- response bodies --------------------------------------------------------------------------


class _WireBody:
    """A response body read from a connection; ``finish(reusable)`` is called exactly once,
    when the body ends (before the read that reached the end returns) or when it is abandoned."""

    __slots__ = ("_conn", "_finish", "_done", "conn_reused", "bytes_written")

    def __init__(self, conn: Any, finish: Callable[[bool], None]) -> None:
        self._conn = conn
        self._finish = finish
        self._done = False
        # What an error raised while reading reports (conn_reused, bytes_written): the attempt's facts.
        self.conn_reused: bool = conn.reused
        self.bytes_written: int = conn.bytes_written

    def _end(self, reusable: bool) -> None:
        if not self._done:
            self._done = True
            self._finish(reusable)

    def _recv(self, view: Any) -> int:
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

    def __init__(self, conn: Any, finish: Callable[[bool], None], length: int, buffered: bytes, reusable: bool) -> None:
        super().__init__(conn, finish)
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
            self._end(self._reusable)
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

    def __init__(self, conn: Any, finish: Callable[[bool], None], buffered: bytes) -> None:
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

    def __init__(self, conn: Any, finish: Callable[[bool], None], parser: Any, trailers: Any, reusable: bool) -> None:
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
                    self._trailers._items.extend(event.trailers)
                    self._end(self._reusable and not parser.take_unparsed())
                    break
        except ProtocolError:
            self._end(False)
            raise
        self._pending = b"".join(parts)


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

    def __init__(self, inner: Any) -> None:
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
                    self._input = self._inner.read(_CHUNK)
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

    def _inflate(self, data: Any, limit: int) -> bytes:
        try:
            return self._decoder.decompress(data, limit)
        except zlib.error as exc:
            self.close()
            self._error = ProtocolError(f"invalid gzip body: {exc}")
            raise self._error from None

    def close(self) -> None:
        self._inner.close()
