"""The hot paths in plain Python: the readable specification of ``_speedups_c``.

Both modules export the same names with the same signatures, results, exception classes and
messages (``tests/test_speedups_parity.py`` holds them to it). Response framing here is done by
h11, which is also the oracle the compiled parser is tested against.
"""

from __future__ import annotations

import re
import select
import socket
import sys
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Generic, Hashable, Iterable, TypeVar, Union

import h11

from . import _messages
from . import _response_body as _bodies  # a module: _response_body imports this one's chooser
from ._errors import HeaderTooLarge, IncompleteBody, ProtocolError
from ._events import CHUNKED, UNTIL_CLOSE, EndOfBody, ResponseHead
from ._framing import frame_response
from ._headers import Headers, response_facts
from ._models import Response

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from ._events import IdleConn
    from ._prepare import PreparedRequest
    from ._response_body import Connection, Finish

__all__ = (
    "is_token",
    "validate_method",
    "validate_header_fields",
    "encode_request_head",
    "ResponseParser",
    "IdleConnections",
    "new_body_buffer",
    "poll_readable",
    "send_nowait",
)

# RFC 9110 §5.6.2: token = 1*tchar
#   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
#           / DIGIT / ALPHA
_token_re = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# Go's httpguts.ValidHeaderFieldValue: any byte but the CTLs, where HTAB is allowed
# (RFC 9110 §5.5: field-value = *field-content, obs-text allowed; CR, LF and NUL never).
_bad_value_char_re = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# Anything past latin-1 cannot go on the wire (RFC 9110 §5.5: fields are octets).
_not_latin1_re = re.compile(r"[^\x00-\xff]")


def is_token(text: str) -> bool:
    """Whether ``text`` is an RFC 9110 token (one or more tchar)."""
    return _token_re.fullmatch(text) is not None


def validate_method(method: str) -> None:
    """Raise ``InvalidRequest`` unless ``method`` is a token."""
    if _token_re.fullmatch(method) is None:
        raise _messages.invalid_method(method)


def validate_header_fields(fields: Iterable[tuple[str, str]]) -> None:
    """Check names and values in order; raise ``InvalidRequest`` at the first bad one.

    The message names the field but never echoes a value: it may be a secret.
    """
    for name, value in fields:
        if _token_re.fullmatch(name) is None:
            raise _messages.invalid_header_name(name)
        if _bad_value_char_re.search(value) is not None:
            raise _messages.invalid_header_value(name)
        if _not_latin1_re.search(value) is not None:
            raise _messages.unencodable_header_value(name)


def encode_request_head(method: str, target: str, fields: Iterable[tuple[str, str]]) -> bytes:
    """Serialize ``METHOD target HTTP/1.1``, the fields and the blank line (RFC 9112 §3).

    The fields must already have passed ``validate_header_fields``.
    """
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in fields)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def poll_readable(fd: int) -> bool:
    """Whether ``fd`` is readable, hung up or in error, without waiting."""
    if _poll is None:  # Windows: select() reports a hang-up or an error as readable too
        readable, _, failed = select.select([fd], [], [fd], 0)
        return bool(readable or failed)
    poller = _poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


_poll = getattr(select, "poll", None)
# MSG_DONTWAIT: Linux and macOS; MSG_NOSIGNAL (no SIGPIPE on a closed peer): Linux only
# (CPython ignores SIGPIPE anyway). Windows has neither: the socket is made non-blocking.
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_NOWAIT_FLAGS = _DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0)


def send_nowait(sock: socket.socket, data: ReadableBuffer) -> int:
    """Send what the socket takes now: the count sent, 0 if nothing fits. For plain TCP
    sockets only; a blocking socket stays blocking."""
    try:
        if _DONTWAIT:
            return sock.send(data, _NOWAIT_FLAGS)
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            return sock.send(data)
        finally:
            sock.settimeout(timeout)
    except BlockingIOError:
        return 0


def new_body_buffer(size: int) -> tuple[bytearray, memoryview]:
    """``(body, view)``: a body of ``size`` bytes to receive into through ``view``.

    Release ``view`` before handing ``body`` on, and use ``bytes(body)`` (a copy here; the
    compiled twin fills a bytes object in place and the conversion costs nothing).
    """
    if size < 0:
        raise ValueError("size must not be negative")
    body = bytearray(size)
    return body, memoryview(body)


_hex_digits_re = re.compile(rb"[0-9A-Fa-f]+")


def _decode_fields(fields: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1")) for name, value in fields]


def _comma_values(fields: list[tuple[str, str]], name: str) -> list[str]:
    values: list[str] = []
    for field, value in fields:
        if field.lower() == name:
            values.extend(v.strip().lower() for v in value.split(",") if v.strip())
    return values


def _body_length(method: str, status_code: int, fields: list[tuple[str, str]]) -> int:
    """The framing of a response body, in RFC 9112 §6.3's order (h11 agrees)."""
    # Rule 1: no body after HEAD, 1xx, 204 or 304; rule 2: a 2xx to CONNECT is a tunnel.
    if method == "HEAD" or status_code < 200 or status_code in (204, 304):
        return 0
    if method == "CONNECT" and 200 <= status_code < 300:
        return 0
    # Rule 3: Transfer-Encoding beats Content-Length (h11 accepts only "chunked").
    if _comma_values(fields, "transfer-encoding"):
        return CHUNKED
    lengths = _comma_values(fields, "content-length")
    if lengths:
        return int(lengths[0])
    # Rule 8: read until the server closes.
    return UNTIL_CLOSE


_HEAD_END = re.compile(rb"\r?\n\r?\n")


def _client_after_request(method: str) -> h11.Connection:
    """An h11 client that has sent a request: h11 needs the request it is answering, and only
    the method matters for the response. A 101 reply is final for us, so every request offers
    an upgrade for h11's sake."""
    client = h11.Connection(h11.CLIENT, max_incomplete_event_size=sys.maxsize)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "h"), ("Connection", "upgrade"), ("Upgrade", "h")]))
    client.send(h11.EndOfMessage())
    return client


# Bytes h11 refuses anywhere in a field line (RFC 9112 §5: no CR, LF or NUL; nor VT, FF).
_BAD_IN_LINE = re.compile(rb"[\x00\r\n\x0b\x0c]")
_STATUS_CODE = re.compile(rb"^(HTTP/[0-9]\.[0-9] )[0-9]{3}")


def _content_length_to_blame(received: bytes, method: str) -> bool:
    """Whether a head h11 refused is refused for a Content-Length field (RFC 9110 §8.6: every
    comma-separated part the same 1-20 digits, every such field the same length), its other
    lines being sound: the first framing field at fault is a Content-Length one, and the head
    parses once its framing fields are left out. The compiled twin checks the framing fields
    after every line has parsed, in this order."""
    end = _HEAD_END.search(received)
    if end is None:
        return False
    status_line, *raw_lines = re.split(rb"\r?\n", received[: end.start()])
    lines: list[bytes] = []
    for line in raw_lines:
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += b" " + line.strip(b" \t")  # RFC 9112 §5.2: obs-fold is one space
        else:
            lines.append(line)
    kept = [status_line]
    length: bytes | None = None
    chunked = False
    first_fault = None
    for line in lines:
        name, colon, value = line.partition(b":")
        name = name.lower()
        if colon and name in (b"content-length", b"transfer-encoding") and _BAD_IN_LINE.search(value):
            return False  # a malformed line, whatever its field
        if colon and name == b"content-length":
            parts = {part.strip(b" \t") for part in value.strip(b" \t").split(b",")}
            digits = parts.pop() if len(parts) == 1 else b""
            if 0 < len(digits) <= 20 and digits.isdigit() and length in (None, digits):
                length = digits
            elif first_fault is None:
                first_fault = "content-length"
        elif colon and name == b"transfer-encoding":
            if not chunked and value.strip(b" \t").lower() == b"chunked":
                chunked = True
            elif first_fault is None:
                first_fault = "transfer-encoding"
        else:
            kept.append(line)
    if first_fault != "content-length":
        return False
    # The status code's range is checked after the fields: any three digits parse here.
    kept[0] = _STATUS_CODE.sub(rb"\g<1>200", kept[0], count=1)
    probe = _client_after_request(method)
    probe.receive_data(b"\r\n".join(kept) + b"\r\n\r\n")
    try:
        return probe.next_event() is not h11.NEED_DATA
    except h11.RemoteProtocolError:
        return False

# What h11's next_event() returns: an event, or one of its NEED_DATA and PAUSED sentinels.
_H11Event = Union[h11.Event, type[h11.NEED_DATA], type[h11.PAUSED]]


class ResponseParser:
    """Sans-I/O parser of the response to one request: bytes in, events out.

    ``method`` is the request method (it decides whether a body may follow);
    ``max_head_bytes`` bounds the status lines and fields of every head of this response,
    informational heads included. Feed bytes with ``feed()``, the end of the stream with
    ``feed_eof()``, and call ``next_event()`` until it returns ``None`` (more bytes needed).

    After the final head with a ``body_length`` other than ``CHUNKED``, the body is not parsed:
    ``take_unparsed()`` hands over the bytes received past the head.
    """

    def __init__(self, method: str, max_head_bytes: int = 1 << 20) -> None:
        validate_method(method)
        self._method = method
        self._head_budget = max_head_bytes
        # The same bound also stops an endless chunk-size line or trailer section.
        self._limit = max_head_bytes
        # h11 is given neither a size limit nor the end of the stream: both are checked here,
        # where h11 asks for more data, so that every error h11 raises is a malformed message
        # and the class never depends on the text of h11's message (which quotes the peer).
        self._h11 = _client_after_request(method)
        self._in_head = True
        self._chunked = False
        self._done = False
        self._eof = False
        self._failed = False
        self._at_size_line = False  # h11 reads a chunk-size line next
        self._crlf_owed = 0  # bytes of the CRLF after chunk data that h11 has yet to take
        self._unparsed_taken = False
        self._facts = (False, False, False)
        self._head: ResponseHead | None = None  # the last head returned

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        data = bytes(data)
        if not data:  # nothing received is not the end of the stream: feed_eof() says that
            return
        if self._eof:
            raise RuntimeError(_messages.FED_AFTER_EOF)
        self._h11.receive_data(data)

    def feed_eof(self) -> None:
        """Note that the server closed the connection."""
        self._eof = True

    def head_facts(self) -> tuple[bool, bool, bool]:
        """``(keeps_alive, gzipped, has_length)`` of the last head returned (``response_facts``);
        all False before the first."""
        return self._facts

    def take_unparsed(self) -> bytes:
        """Remove and return the bytes received but not parsed."""
        if self._unparsed_taken:
            return b""
        self._unparsed_taken = True
        return bytes(self._h11.trailing_data[0])

    def next_event(self) -> ResponseHead | bytes | EndOfBody | None:
        """The next event: a ``ResponseHead``, chunk ``bytes``, ``EndOfBody``, or ``None``."""
        if self._done or not (self._in_head or self._chunked):
            return None
        if self._failed:  # h11 stays in its ERROR state
            raise ProtocolError(_messages.BAD_HEAD if self._in_head else _messages.BAD_CHUNKED)
        # Keep what h11 is about to read: it does not say a chunk's size, nor why it refused a
        # head (its message quotes the server's bytes, so it is never read here).
        before = self._h11.trailing_data[0] if self._at_size_line or self._in_head else None
        unparsed_before = self._unparsed()
        try:
            event = self._h11.next_event()
        except h11.RemoteProtocolError:
            # Without a size limit or an end of stream, h11 raises only for bytes it refuses.
            self._failed = True
            if not self._in_head:
                raise ProtocolError(_messages.BAD_CHUNKED) from None
            assert before is not None
            if _content_length_to_blame(before, self._method):
                raise ProtocolError(_messages.BAD_CONTENT_LENGTH) from None
            raise ProtocolError(_messages.BAD_HEAD) from None
        if self._in_head:
            return self._head_event(event, unparsed_before)
        if self._at_size_line and before is not None:
            self._check_size_line(before, unparsed_before - self._unparsed())
        if isinstance(event, h11.Data) and event.chunk_end:
            self._at_size_line, self._crlf_owed = True, 2
        return self._body_event(event)

    def build_response(self, conn: Connection, prepared: PreparedRequest, head: ResponseHead, finish: Finish) -> Response:
        """The ``Response`` to ``prepared`` from ``head``, the final head this parser returned last,
        with the body reader its framing calls for. No I/O: an empty body (HEAD, 204, 304,
        Content-Length: 0) hands ``conn`` to ``finish(conn, reusable)`` here, every other body
        when it ends or is closed. ``conn`` is read only by the body.
        """
        if head is not self._head or self._in_head:
            raise ValueError("head is not the final head this parser returned last")
        # The framing rule itself lives in _framing, shared with the asyncio transport; the
        # compiled twin does the same steps in C.
        framing = frame_response(head, self._facts, prepared.method, prepared.close_after, prepared.gzip_requested)
        reusable = framing.reusable
        length = framing.length
        response = Response.__new__(Response)
        response.status_code = head.status_code
        response.reason = head.reason
        response.http_version = head.http_version
        response.request = prepared.request
        response.uncompressed = framing.gunzip
        response.closed = False
        response.content_length = framing.content_length
        response.headers = Headers._from_list(framing.fields)
        body: _bodies.ChunkedBody | _bodies.UntilCloseBody | _bodies.EmptyBody | _bodies.FixedLengthBody | _bodies.GzipBody
        if length == CHUNKED:
            trailers = response._trailers = Headers()
            body = _bodies.ChunkedBody(conn, finish, self, trailers, reusable)
        else:
            # A body not fully received yet is not its trailers' concern: made on first use.
            response._trailers = None
            buffered = self.take_unparsed()
            if length == UNTIL_CLOSE:
                body = _bodies.UntilCloseBody(conn, finish, buffered)
            elif length == 0:
                body = _bodies.EmptyBody(conn, finish)
                body._end(reusable and not buffered)
            else:
                body = _bodies.FixedLengthBody(conn, finish, length, buffered, reusable)
        if framing.gunzip:
            # Go's transparent gzip: the caller sees the decoded body.
            body = _bodies.GzipBody(body)
        response._body = body
        return response

    def _check_size_line(self, before: bytes, consumed: int) -> None:
        """Refuse a chunk size over 64 bits, as Go's parseHexUint does (h11 takes 20 digits).

        h11 first takes what remains of the CRLF after the previous chunk's data; if it took
        more, it read the size line, which it found well formed.
        """
        if consumed <= self._crlf_owed:
            self._crlf_owed -= consumed
            return
        line = before[self._crlf_owed : before.index(b"\r\n", self._crlf_owed)]
        self._at_size_line, self._crlf_owed = False, 0
        digits = _hex_digits_re.match(line)
        if digits is not None and len(digits.group().lstrip(b"0")) > 16:
            self._failed = True
            raise ProtocolError(_messages.CHUNK_SIZE_TOO_LARGE)

    def _unparsed(self) -> int:
        return len(self._h11.trailing_data[0])

    def _head_event(self, event: _H11Event, unparsed_before: int) -> ResponseHead | None:
        if event is h11.NEED_DATA:
            if self._eof:
                self._failed = True
                raise ProtocolError(
                    _messages.CLOSED_IN_HEAD if unparsed_before else _messages.BAD_HEAD
                )
            # No complete head within the budget: it cannot fit any more.
            if unparsed_before >= self._head_budget:
                raise HeaderTooLarge(_messages.HEAD_TOO_LARGE)
            return None
        if event is h11.PAUSED:  # only after a 101 or a CONNECT tunnel, handled below
            return None
        head_size = unparsed_before - self._unparsed()
        if head_size > self._head_budget:
            self._failed = True
            raise HeaderTooLarge(_messages.HEAD_TOO_LARGE)
        self._head_budget -= head_size
        # Neither sentinel: h11 gives a response head here (1xx or final).
        head: h11.InformationalResponse | h11.Response = event  # type: ignore[assignment]
        status_code = head.status_code
        fields = _decode_fields(head.headers.raw_items())
        if status_code < 200 and status_code != 101:
            body_length = 0
        elif status_code == 101:
            body_length = UNTIL_CLOSE
            self._in_head = False
        else:
            body_length = _body_length(self._method, status_code, fields)
            self._in_head = False
            self._chunked = self._at_size_line = body_length == CHUNKED
            if not self._chunked:
                self._done = True
        version = "HTTP/" + head.http_version.decode("ascii")
        self._facts = response_facts(version, fields)
        self._head = ResponseHead(
            status_code,
            head.reason.decode("latin-1"),
            version,
            fields,
            body_length,
            head_size,
        )
        return self._head

    def _body_event(self, event: _H11Event) -> bytes | EndOfBody | None:
        if isinstance(event, h11.Data):
            return bytes(event.data)
        if isinstance(event, h11.EndOfMessage):
            self._done = True
            self._chunked = False
            return EndOfBody(_decode_fields(event.headers.raw_items()))
        # NEED_DATA: h11's reader waits for the rest of a line, a chunk or a trailer section.
        unparsed = self._unparsed()
        if self._eof:
            # Whether the body stopped inside chunk data, a chunk-size line or the trailer
            # section, it was cut short (Go: io.ErrUnexpectedEOF from its chunked reader).
            self._failed = True
            raise IncompleteBody(_messages.CLOSED_IN_BODY)
        if unparsed > self._limit:
            # An endless chunk-size line or trailer section (h11's max_incomplete_event_size).
            self._failed = True
            raise ProtocolError(_messages.LINE_TOO_LONG)
        return None


_K = TypeVar("_K", bound=Hashable)
_C = TypeVar("_C", bound="IdleConn")


class IdleConnections(Generic[_K, _C]):
    """Idle connections by pool key: the most recently used first within a key, and the least
    recently used across all keys evicted first (Go's ``idleConn`` and ``idleLRU``).

    Connections must carry an ``idle_since`` attribute (a ``time.monotonic()`` value) set by the
    caller before ``put``. Not thread-safe: the pool holds its lock around every call.
    """

    def __init__(self, max_idle: int, max_idle_per_key: int) -> None:
        self._max_idle = max_idle  # 0 = no limit
        self._max_idle_per_key = max_idle_per_key  # < 1 = keep none
        self._by_key: dict[_K, deque[_C]] = {}
        self._lru: OrderedDict[int, tuple[_K, _C]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._lru)

    def count(self, key: _K) -> int:
        """Idle connections under ``key``."""
        stack = self._by_key.get(key)
        return len(stack) if stack else 0

    def keys(self) -> list[_K]:
        """Keys with at least one idle connection."""
        return list(self._by_key)

    def get(self, key: _K) -> _C | None:
        """Take the most recently used idle connection for ``key``, or ``None``."""
        stack = self._by_key.get(key)
        if not stack:
            return None
        conn = stack.pop()
        if not stack:
            del self._by_key[key]
        del self._lru[id(conn)]
        return conn

    def put(self, key: _K, conn: _C) -> list[_C]:
        """Keep ``conn`` idle; return the connections that must now be closed (possibly
        ``conn`` itself when its key is full)."""
        already = self._lru.pop(id(conn), None)
        if already is not None:  # put again: it becomes the most recently used
            self._discard(already[0], conn)
        stack = self._by_key.get(key)
        if stack is not None and len(stack) >= self._max_idle_per_key:
            return [conn]
        if self._max_idle_per_key < 1:
            return [conn]
        if stack is None:
            stack = self._by_key[key] = deque()
        stack.append(conn)
        self._lru[id(conn)] = (key, conn)
        evicted = []
        while self._max_idle and len(self._lru) > self._max_idle:
            _, (old_key, old) = self._lru.popitem(last=False)
            self._discard(old_key, old)
            evicted.append(old)
        return evicted

    def remove(self, key: _K, conn: _C) -> bool:
        """Forget ``conn`` if it is idle; whether it was."""
        if self._lru.pop(id(conn), None) is None:
            return False
        self._discard(key, conn)
        return True

    def pop_expired(self, cutoff: float) -> list[_C]:
        """Remove and return every connection idle since before ``cutoff``."""
        expired = []
        while self._lru:
            key, conn = next(iter(self._lru.values()))
            if conn.idle_since >= cutoff:
                break
            self._lru.popitem(last=False)
            self._discard(key, conn)
            expired.append(conn)
        return expired

    def oldest_idle_since(self) -> float | None:
        """When the least recently used connection went idle, or ``None`` if there is none."""
        if not self._lru:
            return None
        return next(iter(self._lru.values()))[1].idle_since

    def pop_all(self) -> list[_C]:
        """Remove and return every idle connection."""
        conns = [conn for _, conn in self._lru.values()]
        self._lru.clear()
        self._by_key.clear()
        return conns

    def _discard(self, key: _K, conn: _C) -> None:
        stack = self._by_key[key]
        stack.remove(conn)
        if not stack:
            del self._by_key[key]
