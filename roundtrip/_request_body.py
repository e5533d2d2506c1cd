"""Request bodies going out, with no I/O (Go's ``transferWriter``): how a body is framed,
and its pieces as they go on the wire."""

from __future__ import annotations

import os
import stat
from typing import Any, Iterator, Optional, Union

from ._errors import InvalidRequest

__all__ = ("BYTES_LIKE", "BytesLike", "CHUNK", "OutgoingBody", "plan_body")

BYTES_LIKE = (bytes, bytearray, memoryview)  # bodies held in memory
BytesLike = Union[bytes, bytearray, memoryview]
# RFC 9110 §8.6: a user agent sends Content-Length: 0 for these methods even without a body.
_EXPECTS_BODY = frozenset(("POST", "PUT", "PATCH"))
CHUNK = 65536  # bytes read from a file body, or from a response body, at a time


class OutgoingBody:
    """How a request body goes on the wire: ``length`` bytes, or chunked when ``length`` is None."""

    __slots__ = ("data", "source", "length")

    def __init__(self, data: Optional[BytesLike], source: Any, length: Optional[int]) -> None:
        self.data = data  # bytes-like held in memory, or None
        self.source = source  # a file or an iterable, or None
        self.length = length

    def pieces(self) -> Iterator[BytesLike]:
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
                raise InvalidRequest(f"request body is longer than its Content-Length {self.length}", "body")
            yield chunk
        if sent != self.length:
            raise InvalidRequest(f"request body of {sent} bytes is shorter than its Content-Length {self.length}", "body")


def _read_source(source: Any) -> Iterator[BytesLike]:
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            chunk = read(CHUNK)
            if not chunk:
                return
            if not isinstance(chunk, BYTES_LIKE):
                raise InvalidRequest("request body file must be opened in binary mode", "body")
            yield chunk
    for chunk in source:
        if not isinstance(chunk, BYTES_LIKE):
            raise InvalidRequest(f"request body iterable yielded {type(chunk).__name__}, not bytes", "body")
        if len(chunk):  # an empty chunk would end a chunked body early
            yield chunk


def _file_size(body: Any) -> Optional[int]:
    """Bytes left in a file from its current position, or None when it cannot be known."""
    try:
        status = os.fstat(body.fileno())
        if not stat.S_ISREG(status.st_mode):
            return None  # a pipe or socket: its size is not known in advance
        left: int = max(status.st_size - body.tell(), 0)
        return left
    except (AttributeError, OSError, ValueError, TypeError):
        pass
    try:
        if not body.seekable():
            return None
        here = body.tell()
        end = body.seek(0, os.SEEK_END)
        body.seek(here)
        left = max(end - here, 0)
        return left
    except (AttributeError, OSError, ValueError, TypeError):
        return None


def plan_body(method: str, body: Any, declared_length: Optional[int]) -> Optional[OutgoingBody]:
    """Decide the framing of ``body`` (the rules of ``Request``'s ``body``); ``None`` means no body and no
    framing header. ``declared_length`` is the caller's Content-Length, used for bodies
    whose size cannot be known otherwise."""
    if body is None:
        return OutgoingBody(b"", None, 0) if method in _EXPECTS_BODY else None
    if type(body) is bytes and body:  # the usual body; the next branch in short
        return OutgoingBody(body, None, len(body))
    if isinstance(body, BYTES_LIKE):
        data = body if not isinstance(body, memoryview) else body.cast("B") if body.ndim <= 1 else bytes(body)
        if not len(data) and method not in _EXPECTS_BODY:
            return None  # Go's outgoingLength: an empty body sends no Content-Length outside POST/PUT/PATCH
        return OutgoingBody(data, None, len(data))
    if isinstance(body, str):
        raise InvalidRequest("request body must be bytes, a binary file or an iterable of bytes, not str", "body")
    if hasattr(body, "read"):
        length = _file_size(body)
    elif hasattr(body, "__iter__"):
        length = None
    else:
        raise InvalidRequest(f"request body of type {type(body).__name__} is not supported", "body")
    if length is None:
        length = declared_length
    return OutgoingBody(None, body, length)
