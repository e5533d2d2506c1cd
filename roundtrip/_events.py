"""What the sans-I/O response parser reports; shared by both implementations.

``ResponseParser.next_event()`` returns ``None`` when it needs more bytes, a ``ResponseHead``
(informational heads first, then the final one), ``bytes`` for a piece of a chunked body, and
``EndOfBody`` once the last chunk and its trailers have been read.

``Parser`` and ``IdleTable`` are the interfaces of the twins' ``ResponseParser`` and
``IdleConnections``, for the type checker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Hashable, Protocol, TypeVar

if TYPE_CHECKING:
    from ._models import Response
    from ._prepare import PreparedRequest

__all__ = ("ResponseHead", "EndOfBody", "CHUNKED", "UNTIL_CLOSE", "Parser", "IdleConn", "IdleTable")

#: ``ResponseHead.body_length`` for a chunked body (RFC 9112 §7.1).
CHUNKED = -1
#: ``ResponseHead.body_length`` for a body that runs until the server closes (RFC 9112 §6.3 rule 8).
UNTIL_CLOSE = -2


class ResponseHead:
    """One parsed response head.

    ``body_length`` is the exact body size (0 for HEAD, 1xx, 204, 304), or ``CHUNKED``, or
    ``UNTIL_CLOSE``. ``head_size`` is the number of bytes the head took on the wire.
    """

    __slots__ = ("status_code", "reason", "http_version", "headers", "body_length", "head_size")

    def __init__(
        self,
        status_code: int,
        reason: str,
        http_version: str,
        headers: list[tuple[str, str]],
        body_length: int,
        head_size: int,
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.http_version = http_version
        self.headers = headers
        self.body_length = body_length
        self.head_size = head_size

    def _key(self) -> tuple[object, ...]:
        return (
            self.status_code,
            self.reason,
            self.http_version,
            self.headers,
            self.body_length,
            self.head_size,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResponseHead):
            return NotImplemented
        return self._key() == other._key()

    def __repr__(self) -> str:
        return "ResponseHead(%r, %r, %r, %r, body_length=%r, head_size=%r)" % self._key()


class EndOfBody:
    """The chunked body ended; ``trailers`` holds the trailer fields (possibly empty)."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: list[tuple[str, str]]) -> None:
        self.trailers = trailers

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EndOfBody):
            return NotImplemented
        return self.trailers == other.trailers

    def __repr__(self) -> str:
        return f"EndOfBody({self.trailers!r})"


# The interfaces of the twins' classes, for the type checker (``_speedups.Speedups`` is the
# module's).
class Parser(Protocol):
    """A sans-I/O response parser (``ResponseParser`` of either twin)."""

    def feed(self, data: bytes | bytearray | memoryview) -> None: ...

    def feed_eof(self) -> None: ...

    def take_unparsed(self) -> bytes: ...

    def next_event(self) -> ResponseHead | bytes | EndOfBody | None: ...

    def head_facts(self) -> tuple[bool, bool, bool]: ...

    def build_response(self, conn: Any, prepared: PreparedRequest, head: ResponseHead, finish: Callable[[Any, bool], None]) -> Response: ...


class IdleConn(Protocol):
    """What the idle table reads of a connection: when it went idle (``time.monotonic()``)."""

    idle_since: float


_K = TypeVar("_K", bound=Hashable)
_C = TypeVar("_C", bound=IdleConn)


class IdleTable(Protocol[_K, _C]):
    """Idle connections by pool key (``IdleConnections`` of either twin)."""

    def __len__(self) -> int: ...

    def count(self, key: _K) -> int: ...

    def keys(self) -> list[_K]: ...

    def get(self, key: _K) -> _C | None: ...

    def put(self, key: _K, conn: _C) -> list[_C]: ...

    def remove(self, key: _K, conn: _C) -> bool: ...

    def pop_expired(self, cutoff: float) -> list[_C]: ...

    def oldest_idle_since(self) -> float | None: ...

    def pop_all(self) -> list[_C]: ...
