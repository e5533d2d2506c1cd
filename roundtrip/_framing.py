"""How a response's body is framed and what the caller is told about it, decided from its head
with no I/O (RFC 9112 §6.3, Go's ``readTransfer`` and its transparent gzip); both transports
build their response from this."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ._events import CHUNKED, UNTIL_CLOSE

if TYPE_CHECKING:
    from ._events import ResponseHead

__all__ = ("Framing", "frame_response", "declared_length")

_DECODED_AWAY = ("content-encoding", "content-length")


class Framing:
    """What ``frame_response`` decided.

    ``length`` is the head's ``body_length`` (bytes, ``CHUNKED`` or ``UNTIL_CLOSE``);
    ``reusable`` whether the connection may serve another request once the body has ended;
    ``fields`` the header fields the caller sees; ``content_length`` what the response says of
    its length; ``gunzip`` whether the body is decoded on the way.
    """

    __slots__ = ("length", "reusable", "fields", "content_length", "gunzip")

    def __init__(self, length: int, reusable: bool, fields: list[tuple[str, str]], content_length: Optional[int], gunzip: bool) -> None:
        self.length = length
        self.reusable = reusable
        self.fields = fields
        self.content_length = content_length
        self.gunzip = gunzip


def frame_response(head: ResponseHead, facts: tuple[bool, bool, bool], method: str, close_after: bool, gzip_requested: bool) -> Framing:
    """The framing of the response that ``head`` starts, for a request of ``method``.

    ``facts`` is ``_connection.response_facts`` of the head; ``close_after``: the connection is
    not to be reused whatever the response says; ``gzip_requested``: the transport asked for
    gzip and decodes it.
    """
    fields = head.headers
    keeps_alive, gzipped, has_length = facts
    reusable = not close_after and head.status_code != 101 and keeps_alive
    length = head.body_length
    content_length: Optional[int] = length
    if length == CHUNKED:
        content_length = None
        if has_length:
            # RFC 9112 §6.3: chunked framing overrides Content-Length, which then says
            # nothing true about the body (Go's fixLength deletes it); a caller forwarding
            # the headers must not forward it.
            fields = [field for field in fields if field[0].lower() != "content-length"]
    elif length == UNTIL_CLOSE:
        content_length = None
    elif length == 0 and method == "HEAD":
        content_length = declared_length(fields)
    gunzip = gzipped and gzip_requested and length != 0
    if gunzip:
        # Go's transparent gzip: the caller sees the decoded body and no encoding headers.
        fields = [field for field in fields if field[0].lower() not in _DECODED_AWAY]
        content_length = None
    return Framing(length, reusable, fields, content_length, gunzip)


def declared_length(fields: list[tuple[str, str]]) -> Optional[int]:
    """The Content-Length a response declares (a HEAD response's, say), or None."""
    for field, value in fields:
        if field.lower() == "content-length":
            try:
                return int(value.split(",")[0].strip())
            except ValueError:
                return None
    return None
