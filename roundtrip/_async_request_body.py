"""Request bodies on an event loop: ``Request``'s bodies, plus async iterables of bytes (sent
chunked), framed by ``_request_body`` as any iterable of unknown length is."""

from __future__ import annotations

from typing import Any, AsyncIterator, Optional

from ._errors import InvalidRequest
from ._prepare import PreparedRequest, rewound_body
from ._request_body import BYTES_LIKE, OutgoingBody, plan_body

__all__ = ("async_source", "rewind", "async_pieces")


class _AsyncSource:
    """An async iterable request body, framed as an iterable of unknown length (chunked)."""

    __slots__ = ("iterable",)

    def __init__(self, iterable: Any) -> None:
        self.iterable = iterable

    def __iter__(self) -> Any:
        raise TypeError("an async iterable body is read by AsyncTransport only")


def async_source(body: Any) -> Any:
    if hasattr(body, "__aiter__") and not isinstance(body, BYTES_LIKE) and not hasattr(body, "read"):
        return _AsyncSource(body)
    return body


def rewind(prepared: PreparedRequest) -> None:
    """``PreparedRequest.rewind`` for bodies that may be async iterables."""
    prepared.close_after = prepared.wants_close
    if prepared.body is None or prepared.body.source is None:
        return
    prepared.body = plan_body(prepared.method, async_source(rewound_body(prepared.request)), prepared.declared_length)


async def async_pieces(body: Optional[OutgoingBody]) -> AsyncIterator[Any]:
    """The body's wire pieces (``OutgoingBody.pieces``), for async iterables too."""
    if body is None:
        return
    source = body.source
    if not isinstance(source, _AsyncSource):
        for piece in body.pieces():
            yield piece
        return
    sent = 0
    async for chunk in source.iterable:
        if not isinstance(chunk, BYTES_LIKE):
            raise InvalidRequest(f"request body iterable yielded {type(chunk).__name__}, not bytes", "body")
        if not len(chunk):
            continue  # an empty chunk would end a chunked body early
        sent += len(chunk)
        if body.length is None:
            # RFC 9112 §7.1: chunk = chunk-size CRLF chunk-data CRLF.
            yield b"%x\r\n" % len(chunk)
            yield chunk
            yield b"\r\n"
        elif sent > body.length:
            raise InvalidRequest(f"request body is longer than its Content-Length {body.length}", "body")
        else:
            yield chunk
    if body.length is None:
        yield b"0\r\n\r\n"
    elif sent != body.length:
        raise InvalidRequest(f"request body of {sent} bytes is shorter than its Content-Length {body.length}", "body")
