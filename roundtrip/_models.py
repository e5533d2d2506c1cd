"""``Request`` and ``Response``: the values a round trip takes and gives."""

from __future__ import annotations

import io
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Protocol, Union

from ._request_body import BYTES_LIKE
from ._errors import Error, ResponseClosed
from ._headers import Headers, HeadersLike
from ._trace import Trace

if TYPE_CHECKING:
    from ._context import Context

__all__ = ("Request", "Response", "BodyType", "ResponseBody")

BodyType = Union[None, bytes, bytearray, memoryview, io.IOBase, Iterable[bytes], Any]



def _rewinder(body: Any) -> Optional[Callable[[], BodyType]]:
    """``get_body`` for bodies that can be replayed: bytes, and seekable files (rewound to
    where they stand now)."""
    if isinstance(body, BYTES_LIKE):
        return lambda: body
    seekable = getattr(body, "seekable", None)
    if seekable is not None and hasattr(body, "read"):
        try:
            if not seekable():
                return None
            start = body.tell()
        except (OSError, ValueError):
            return None

        def rewind() -> BodyType:
            body.seek(start)
            return body

        return rewind
    return None


class Request:
    """One HTTP request to send.

    Args:
        method: an RFC 9110 token; ``""`` means GET.
        url: ``http://`` or ``https://`` (or a registered scheme); userinfo is never sent.
        headers: ``Headers``, a mapping, or ``(name, value)`` pairs; a ``Host`` field overrides
            the host sent on the wire.
        body: ``None``, bytes-like, a binary file (``.read()``), or an iterable of bytes.
        get_body: returns a fresh copy of the body for a replay; set automatically for bytes-like
            bodies and seekable files.
        context: a ``Context`` (deadline and cancellation).
        trace: a ``Trace`` with hooks to call.

    Nothing is validated here: ``Transport.round_trip`` validates before any I/O.
    """

    __slots__ = ("method", "url", "headers", "body", "get_body", "context", "trace")

    def __init__(
        self,
        method: str,
        url: str,
        headers: HeadersLike = None,
        body: BodyType = None,
        *,
        get_body: Optional[Callable[[], BodyType]] = None,
        context: Optional[Context] = None,
        trace: Optional[Trace] = None,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers if type(headers) is Headers else Headers(headers)
        self.body = body
        self.get_body = get_body if get_body is not None or body is None else _rewinder(body)
        self.context = context
        self.trace = trace

    def __repr__(self) -> str:
        return f"<Request {self.method or 'GET'} {self.url}>"


class ResponseBody(Protocol):
    """What a ``Response`` reads its body from: held in memory, built by hand, or on the wire
    (``_response_body``)."""

    def read(self, amt: Optional[int]) -> bytes: ...

    def close(self) -> None: ...


class _BytesBody:
    """A body held in memory (also the body of a finished wire response)."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, amt: Optional[int]) -> bytes:
        data, pos = self._data, self._pos
        if amt is None or amt < 0:
            self._pos = len(data)
            return data if pos == 0 else data[pos:]
        self._pos = min(pos + amt, len(data))
        return data[pos : self._pos]

    def close(self) -> None:
        self._pos = len(self._data)


class _StreamBody:
    """A body built from a file or an iterable of bytes (for ``Response(...)`` by hand)."""

    __slots__ = ("_file", "_chunks", "_pending")

    def __init__(self, source: Any) -> None:
        self._file = source if hasattr(source, "read") else None
        self._chunks: Optional[Iterator[bytes]] = None if self._file is not None else iter(source)
        self._pending = b""

    def read(self, amt: Optional[int]) -> bytes:
        if self._file is not None:
            data = self._file.read() if amt is None or amt < 0 else self._file.read(amt)
            return bytes(data or b"")
        parts = [self._pending]
        have = len(self._pending)
        while amt is None or amt < 0 or have < amt:
            chunk = next(self._chunks, None) if self._chunks is not None else None
            if chunk is None:
                break
            parts.append(bytes(chunk))
            have += len(chunk)
        data = b"".join(parts)
        if amt is None or amt < 0 or len(data) <= amt:
            self._pending = b""
            return data
        self._pending = data[amt:]
        return data[:amt]

    def close(self) -> None:
        self._chunks = None
        self._pending = b""


class Response:
    """One HTTP response; read its body with ``read()`` or ``iter_bytes()``, then close it.

    ``Response(status_code, ...)`` builds one directly, for registered round trippers and tests.
    A response from the wire returns its connection to the pool when a read reaches the end of
    the body; closing it before then closes the connection.
    """

    __slots__ = (
        "status_code",
        "reason",
        "http_version",
        "headers",
        "request",
        "content_length",
        "uncompressed",
        "_trailers",
        "closed",
        "_body",
        "__weakref__",
    )

    def __init__(
        self,
        status_code: int,
        *,
        reason: Optional[str] = None,
        headers: HeadersLike = None,
        body: BodyType = b"",
        request: Optional[Request] = None,
        http_version: str = "HTTP/1.1",
    ) -> None:
        self.status_code = status_code
        if reason is None:
            try:
                reason = HTTPStatus(status_code).phrase
            except ValueError:
                reason = ""
        self.reason = reason
        self.http_version = http_version
        self.headers = headers if type(headers) is Headers else Headers(headers)
        self.request = request
        self.uncompressed = False
        self._trailers: Optional[Headers] = None
        self.closed = False
        if body is None:
            body = b""
        if isinstance(body, BYTES_LIKE):
            data = bytes(body)
            self.content_length: Optional[int] = len(data)
            self._body: ResponseBody = _BytesBody(data)
        else:
            self.content_length = None
            self._body = _StreamBody(body)

    @property
    def trailers(self) -> Headers:
        """Trailer fields of a chunked body, filled in when its end is read (empty until then)."""
        # Made on first use: most responses never have (or are asked for) trailers.
        trailers = self._trailers
        if trailers is None:
            trailers = self._trailers = Headers()
        return trailers

    @trailers.setter
    def trailers(self, value: Headers) -> None:
        self._trailers = value

    def read(self, amt: Optional[int] = None) -> bytes:
        """All the remaining body, or at most ``amt`` bytes; ``b""`` at the end.

        Raises ``ResponseClosed`` after ``close()``, and ``ProtocolError`` (or a subclass) when
        the body on the wire is malformed or cut short.
        """
        if self.closed:
            raise ResponseClosed("response body read after close")
        try:
            return self._body.read(amt)
        except Error as exc:
            exc.conn_reused = getattr(self._body, "conn_reused", False)
            exc.bytes_written = getattr(self._body, "bytes_written", 0)
            raise

    def iter_bytes(self, chunk_size: int = 65536) -> Iterator[bytes]:
        """Yield the body in pieces of at most ``chunk_size`` bytes."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        while True:
            data = self.read(chunk_size)
            if not data:
                return
            yield data

    def close(self) -> None:
        """Release the response; a body not read to its end closes its connection."""
        if not self.closed:
            self.closed = True
            self._body.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason}]>"
