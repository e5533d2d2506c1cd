# Included by _speedups_c.pyx (textually: it shares that module's imports and names).

# ---------------------------------------------------------------------------------------------
# Response side: RFC 9112 §4 status line, §5 fields, §6.3 framing, §7.1 chunked coding, with
# h11's leniencies (bare LF, obs-fold, no reason phrase, trailing OWS after a chunk size).

cdef inline bint _ci_equal(const unsigned char* p, const char* lower, Py_ssize_t n) noexcept:
    # lower is letters and "-"; c | 0x20 hits a letter only from its two cases, and "-" only
    # from "-" or CR, which is no tchar (callers compare "-" against field names only).
    cdef Py_ssize_t i
    for i in range(n):
        if (p[i] | 0x20) != <unsigned char>lower[i]:
            return False
    return True


cdef inline bint _py_space(unsigned char c) noexcept:
    # What str.strip() removes from a latin-1 value that got past RT_WIRE_BAD (the py twin's
    # response_facts strips with it): HTAB, SP, FS..US, NEL and NBSP.
    return c == 9 or c == 32 or 0x1c <= c <= 0x1f or c == 0x85 or c == 0xa0


cdef bint _has_token(const unsigned char* p, Py_ssize_t n, const char* lower, Py_ssize_t size) noexcept:
    """Whether the comma-separated list p[:n] holds ``lower`` (stripped, any case)."""
    cdef Py_ssize_t i = 0, a, b
    while i <= n:
        a = i
        while i < n and p[i] != b',':
            i += 1
        b = i
        while a < b and _py_space(p[a]):
            a += 1
        while b > a and _py_space(p[b - 1]):
            b -= 1
        if b - a == size and _ci_equal(p + a, lower, size):
            return True
        i += 1
    return False


cdef Py_ssize_t _content_length(const unsigned char* p, Py_ssize_t n, Py_ssize_t* start) noexcept:
    """The digits of a Content-Length value: every comma-separated part, stripped of SP and
    HTAB, the same 1-20 digits (RFC 9110 §8.6, as h11 reads it). Their length, with their
    offset in ``start``; -1 if the value is not that."""
    cdef Py_ssize_t i = 0, a, b, first = -1, size = 0, j
    while i <= n:
        a = i
        while i < n and p[i] != b',':
            i += 1
        b = i
        while a < b and (p[a] == b' ' or p[a] == b'\t'):
            a += 1
        while b > a and (p[b - 1] == b' ' or p[b - 1] == b'\t'):
            b -= 1
        if first < 0:
            first, size = a, b - a
        elif b - a != size or memcmp(p + a, p + first, size) != 0:
            return -1
        i += 1
    if size == 0 or size > 20:
        return -1
    for j in range(first, first + size):
        if not _digit(p[j]):
            return -1
    start[0] = first
    return size


cdef inline bint _digit(unsigned char c) noexcept:
    return b'0' <= c <= b'9'


cdef bint _status_line_ok(const unsigned char* b, Py_ssize_t n) noexcept:
    """HTTP/d.d SP 3DIGIT [SP reason]; h11 allows an absent reason (RFC 9112 §4 wants SP)."""
    cdef Py_ssize_t i
    if n < 12 or memcmp(b, b"HTTP/", 5) != 0 or b[6] != b'.' or b[8] != b' ':
        return False
    if not (_digit(b[5]) and _digit(b[7]) and _digit(b[9]) and _digit(b[10]) and _digit(b[11])):
        return False
    if n == 12:
        return True
    if b[12] != b' ':
        return False
    for i in range(13, n):  # reason-phrase = *( HTAB / SP / VCHAR / obs-text ), as h11 reads it
        if rt_class[b[i]] & RT_WIRE_BAD:
            return False
    return True


cdef int _chunk_size(const unsigned char* b, Py_ssize_t n, unsigned long long* size) noexcept:
    """chunk-size [chunk-ext] OWS of one line without its CRLF: 0 and the size in ``size``,
    -1 if malformed, -2 if well formed but the size does not fit in 64 bits.

    Like h11: 1 to 20 HEXDIG; the extension is ";" and anything but LF, unparsed. Like Go's
    parseHexUint, at most 16 significant digits (leading zeros aside): 2**64 - 1 is the largest
    size, and the body then ends short if the server stops first.
    """
    cdef Py_ssize_t k = 0, j, significant = 0
    cdef unsigned long long value = 0
    while k < n and rt_class[b[k]] & RT_HEX:
        if significant or b[k] != b'0':
            significant += 1
            value = (value << 4) | rt_hexval(b[k])  # wraps past 16 digits, refused below
        k += 1
    if k == 0 or k > 20:
        return -1
    if k < n and b[k] == b';':
        if memchr(b + k, b'\n', n - k) != NULL:
            return -1
    else:
        for j in range(k, n):
            if not rt_class[b[j]] & RT_OWS:
                return -1
    if significant > 16:
        return -2
    size[0] = value
    return 0


_NO_FACTS = (False, False, False)

# Field names most servers send, spelled as they send them: a name found here is shared rather
# than decoded again for every response (str objects are immutable; equal either way).
cdef tuple _COMMON_NAMES = (
    "Date", "Server", "Connection", "Content-Type", "Content-Length", "Last-Modified", "ETag",
    "Accept-Ranges", "Transfer-Encoding", "Content-Encoding", "Cache-Control", "Vary",
    "Expires", "Keep-Alive", "Location", "Set-Cookie", "Age", "Via", "Etag", "Pragma",
    "Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options",
    "Access-Control-Allow-Origin", "Content-Security-Policy", "Alt-Svc",
    "date", "server", "connection", "content-type", "content-length", "last-modified", "etag",
    "accept-ranges", "transfer-encoding", "content-encoding", "cache-control", "vary",
    "expires", "keep-alive", "location", "set-cookie", "age", "via",
)


# The same names as C data, by length (the names of length k are entries _name_start[k] to
# _name_start[k + 1] - 1), so that a field's name is compared with two or three at most.
cdef const char* _name_bytes[64]
cdef PyObject* _name_objs[64]  # borrowed: _COMMON_NAMES keeps them
cdef Py_ssize_t _name_start[34]
cdef bint _name_private[64]  # values that may carry a secret (a session, a token in a URL)
assert len(_COMMON_NAMES) <= 64 and max(map(len, _COMMON_NAMES)) <= 32
_name_count = 0
for _size in range(34):
    _name_start[_size] = _name_count
    for _name in _COMMON_NAMES:
        if len(_name) == _size:
            _name_bytes[_name_count] = <const char*>PyUnicode_1BYTE_DATA(_name)
            _name_objs[_name_count] = <PyObject*>_name
            _name_private[_name_count] = _name.lower() in ("set-cookie", "location", "content-security-policy")
            _name_count += 1


cdef Py_ssize_t _name_index(const unsigned char* p, Py_ssize_t k) noexcept:
    """Where the name p[:k] is in the table, or -1."""
    cdef Py_ssize_t i
    if k <= 32:
        for i in range(_name_start[k], _name_start[k + 1]):
            if <unsigned char>_name_bytes[i][0] == p[0] and memcmp(_name_bytes[i], p, k) == 0:
                return i
    return -1


# The last field seen under each common name, as the (name, value) tuple a head's list holds:
# a server sends the same Server, Content-Type or Connection line again and again, and an equal
# line is given that same immutable tuple instead of a new one (owned references; values of at
# most _PAIR_VALUE_MAX bytes, so that the table stays small). Set-Cookie, Location and
# Content-Security-Policy values are never kept: a session, a token or a nonce must not outlive
# its response here.
cdef PyObject* _pairs[64]
cdef enum: _PAIR_VALUE_MAX = 96
for _i in range(64):
    _pairs[_i] = NULL


cdef inline str _field_name(Py_ssize_t index, const unsigned char* p, Py_ssize_t k):
    return <str>_name_objs[index] if index >= 0 else PyUnicode_DecodeLatin1(<char*>p, k, NULL)


cdef tuple _field_pair(Py_ssize_t index, const unsigned char* p, Py_ssize_t k, const unsigned char* v, Py_ssize_t n):
    cdef PyObject* cached
    cdef tuple pair
    cdef str value
    if index < 0 or _name_private[index]:
        return (_field_name(index, p, k), PyUnicode_DecodeLatin1(<char*>v, n, NULL))
    cached = _pairs[index]
    if cached != NULL:
        value = <str>PyTuple_GET_ITEM(<tuple>cached, 1)
        # A decoded latin-1 str holds one byte per character: compare the bytes as received.
        if PyUnicode_GET_LENGTH(value) == n and memcmp(PyUnicode_1BYTE_DATA(value), v, n) == 0:
            return <tuple>cached
    pair = (<str>_name_objs[index], PyUnicode_DecodeLatin1(<char*>v, n, NULL))
    if n <= _PAIR_VALUE_MAX:
        # Read the entry again: making the pair may have run a finalizer, and another thread.
        cached = _pairs[index]
        Py_INCREF(pair)
        _pairs[index] = <PyObject*>pair
        Py_XDECREF(cached)
    return pair


# The classes a response is made of, looked up on first use: _response_body imports the module
# that chooses this one.
cdef object _Response = None, _Headers = None, _bodies = None


cdef int _load_response_types() except -1:
    global _Response, _Headers, _bodies
    from . import _response_body
    from ._headers import Headers
    from ._models import Response
    _Response, _Headers, _bodies = Response, Headers, _response_body
    return 0


cdef class ResponseParser:
    """Sans-I/O parser of the response to one request: bytes in, events out.

    ``method`` is the request method (it decides whether a body may follow);
    ``max_head_bytes`` bounds the status lines and fields of every head of this response,
    informational heads included. Feed bytes with ``feed()``, the end of the stream with
    ``feed_eof()``, and call ``next_event()`` until it returns ``None`` (more bytes needed).

    After the final head with a ``body_length`` other than ``CHUNKED``, the body is not parsed:
    ``take_unparsed()`` hands over the bytes received past the head.
    """

    cdef unsigned char* _buf  # received bytes live in _buf[_start:_end]
    cdef Py_ssize_t _start, _end, _cap
    cdef Py_ssize_t _scan  # where the search for the end of a line or head resumes
    cdef long long _budget, _limit
    cdef unsigned long long _chunk_left
    cdef int _crlf_owed  # bytes of the CRLF that must follow chunk data still to be seen
    cdef bint _is_head, _is_connect, _in_head, _chunked, _trailer, _done, _eof, _failed, _taken
    cdef object _cl  # per field section: the Content-Length value seen, or None
    cdef bint _saw_te
    cdef object _invalid  # the first Content-Length / Transfer-Encoding fault of a head, or None
    cdef long long _cl_int  # _cl as a number when it has at most 18 digits, else -1
    # The facts of the head being parsed (py twin: response_facts), and of the last one returned.
    cdef bint _saw_close, _saw_keep_alive, _saw_encoding, _gzipped, _has_length
    cdef object _facts
    cdef object _head  # the last head returned

    def __cinit__(self):
        self._buf = NULL

    def __dealloc__(self):
        free(self._buf)

    def __init__(self, method, max_head_bytes=1 << 20):
        cdef long long budget
        # h11 refuses to frame a request whose method is not a token; we refuse it up front.
        if not (PyUnicode_CheckExact(method) and _token(<str>method)):
            validate_method(method)  # raises as the py twin does
        self._is_head = <str>method == "HEAD"
        self._is_connect = <str>method == "CONNECT"
        if PyLong_CheckExact(max_head_bytes) and -(1 << 62) <= max_head_bytes <= 1 << 62:
            budget = max_head_bytes  # the usual case, clamped below without Python calls
            self._budget = budget
        else:
            self._budget = max(-(1 << 62), min(max_head_bytes, 1 << 62))
        self._limit = self._budget  # also bounds a chunk-size line or a trailer section
        self._in_head = True
        self._facts = _NO_FACTS

    def feed(self, data):
        """Append received bytes."""
        cdef Py_buffer view
        if PyBytes_CheckExact(data):
            self._append(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
            return
        try:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        except Exception:  # not one contiguous buffer: bytes() decides, as in the py twin
            data = bytes(data)
            self._append(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
            return
        try:
            self._append(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def feed_eof(self):
        """Note that the server closed the connection."""
        self._eof = True

    def head_facts(self):
        """``(keeps_alive, gzipped, has_length)`` of the last head returned, worked out while
        it was parsed; all False before the first."""
        return self._facts

    def take_unparsed(self):
        """Remove and return the bytes received but not parsed."""
        if self._taken:
            return b""
        self._taken = True
        if self._end == self._start:
            return b""
        return PyBytes_FromStringAndSize(<char*>self._buf + self._start, self._end - self._start)

    def next_event(self):
        """The next event: a ``ResponseHead``, chunk ``bytes``, ``EndOfBody``, or ``None``."""
        if self._done or not (self._in_head or self._chunked):
            return None
        if self._failed:  # h11 stays in its ERROR state
            raise ProtocolError(_BAD_HEAD if self._in_head else _BAD_CHUNKED)
        if self._in_head:
            return self._head_event()
        event = self._chunk_event()
        if event is None:
            if self._eof:
                # Whether the body stopped inside chunk data, a chunk-size line or the trailer
                # section, it was cut short (Go: io.ErrUnexpectedEOF from its chunked reader).
                self._failed = True
                raise IncompleteBody(_CLOSED_IN_BODY)
            if self._end - self._start > self._limit:
                # An endless chunk-size line or trailer section (h11's max_incomplete_event_size).
                self._failed = True
                raise ProtocolError(_LINE_TOO_LONG)
        return event

    def build_response(self, conn, prepared, head, finish):
        """The ``Response`` to ``prepared`` from ``head``, the final head this parser returned
        last, with the body reader its framing calls for (``_speedups_py`` is the spec)."""
        if head is not self._head or self._in_head:
            raise ValueError("head is not the final head this parser returned last")
        if _Response is None:
            _load_response_types()
        h = head
        keeps_alive, gzipped, has_length = self._facts
        status = h.status_code
        reusable = not prepared.close_after and status != 101 and keeps_alive
        length = h.body_length
        fields = h.headers
        response = _Response.__new__(_Response)
        response.status_code = status
        response.reason = h.reason
        response.http_version = h.http_version
        response.request = prepared.request
        response.uncompressed = False
        response.closed = False
        if length == CHUNKED:
            if has_length:
                # RFC 9112 §6.3: chunked framing overrides Content-Length (Go's fixLength).
                fields = [field for field in fields if field[0].lower() != "content-length"]
            trailers = response._trailers = _Headers()
            body = _bodies.ChunkedBody(conn, finish, self, trailers, reusable)
            response.content_length = None
        else:
            response._trailers = None
            buffered = self.take_unparsed()
            if length == UNTIL_CLOSE:
                body = _bodies.UntilCloseBody(conn, finish, buffered)
                response.content_length = None
            elif length == 0:
                body = _bodies.EmptyBody(conn, finish)
                response.content_length = 0
                if self._is_head:
                    # A HEAD response's Content-Length: the size a GET would have had.
                    response.content_length = (
                        None if self._cl is None else self._cl_int if self._cl_int >= 0 else int(self._cl))
                body._end(reusable and not buffered)
            else:
                body = _bodies.FixedLengthBody(conn, finish, length, buffered, reusable)
                response.content_length = length
        headers = _Headers.__new__(_Headers)  # Headers._from_list, without its Python frame
        headers._items = fields
        response.headers = headers
        if gzipped and prepared.gzip_requested and length != 0:
            # Go's transparent gzip: the caller sees the decoded body and no encoding headers.
            body = _bodies.GzipBody(body)
            for name in ("Content-Encoding", "Content-Length"):
                if name in headers:
                    del headers[name]
            response.content_length = None
            response.uncompressed = True
        response._body = body
        return response

    cdef int _append(self, const char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t live = self._end - self._start, cap
        cdef unsigned char* fresh
        if n == 0:  # nothing received is not the end of the stream: feed_eof() says that
            return 0
        if self._eof:
            raise RuntimeError(_FED_AFTER_EOF)
        if self._end + n > self._cap:
            # Compact only into at most half the space: amortised O(1) per byte fed.
            if live + n <= self._cap // 2:
                memmove(self._buf, self._buf + self._start, live)
            else:
                cap = max(2 * self._cap, live + n, 1024)
                fresh = <unsigned char*>malloc(cap)
                if fresh == NULL:
                    raise MemoryError()
                if live:
                    memcpy(fresh, self._buf + self._start, live)
                free(self._buf)
                self._buf = fresh
                self._cap = cap
            self._start = 0
            self._end = live
        memcpy(self._buf + self._end, p, n)
        self._end += n
        return 0

    cdef inline void _consume(self, Py_ssize_t n) noexcept:
        self._start += n
        if self._start == self._end:
            self._start = self._end = 0
        self._scan = 0

    cdef Py_ssize_t _find_block_end(self) noexcept:
        """Length of the field block ending in the first LF [CR] LF (RFC 9112 §2.2: a bare LF
        may end a line), 1 or 2 for an empty block ((CR)LF first), or -1 when incomplete."""
        cdef const unsigned char* b = self._buf + self._start
        cdef const unsigned char* q
        cdef Py_ssize_t n = self._end - self._start, i = self._scan
        if n >= 1 and b[0] == b'\n':
            return 1
        if n >= 2 and b[0] == b'\r' and b[1] == b'\n':
            return 2
        while i < n:
            q = <const unsigned char*>memchr(b + i, b'\n', n - i)
            if q == NULL:
                break
            i = q - b
            if i + 1 < n and b[i + 1] == b'\n':
                return i + 2
            if i + 2 < n and b[i + 1] == b'\r' and b[i + 2] == b'\n':
                return i + 3
            i += 1
        self._scan = max(0, n - 2)  # a terminator may still start in the last two bytes
        return -1

    cdef object _head_event(self):
        cdef const unsigned char* b = self._buf + self._start
        cdef const unsigned char* q
        cdef Py_ssize_t n = self._end - self._start, end, stop, eol, ln
        cdef int status
        end = self._find_block_end()
        if end >= 0:
            self._consume(end)  # h11 takes a block out of its buffer before it validates it
        if n and b[0] < 0x21:  # h11 rejects an obviously invalid first byte (TLS, CRLF) early
            self._failed = True
            raise ProtocolError(_BAD_HEAD)
        if end < 0:
            if self._eof:
                self._failed = True
                raise ProtocolError(_CLOSED_IN_HEAD if n else _BAD_HEAD)
            if n >= self._budget:  # no complete head within the budget: it cannot fit any more
                raise HeaderTooLarge(_TOO_LARGE)
            return None
        stop = end - 3 if b[end - 2] == b'\r' else end - 2  # the lines are b[0:stop]
        eol = stop
        q = <const unsigned char*>memchr(b, b'\n', stop)
        if q != NULL:
            eol = q - b
        ln = eol - 1 if b[eol - 1] == b'\r' else eol
        if not _status_line_ok(b, ln):
            self._failed = True
            raise ProtocolError(_BAD_HEAD)
        status = (b[9] - 48) * 100 + (b[10] - 48) * 10 + (b[11] - 48)
        self._cl, self._saw_te, self._invalid = None, False, None  # nothing carries over from a 1xx head
        self._saw_close = self._saw_keep_alive = self._saw_encoding = False
        self._gzipped = self._has_length = False
        fields = self._fields(b, eol + 1, stop, _BAD_HEAD) if eol < stop else []
        if status < 100:  # h11 checks the status (100-999) after the fields
            self._failed = True
            raise ProtocolError(_BAD_HEAD)
        reason = PyUnicode_DecodeLatin1(<char*>b + 13, ln - 13, NULL) if ln > 13 else ""
        version = PyUnicode_DecodeLatin1(<char*>b, 8, NULL)
        if end > self._budget:
            self._failed = True
            raise HeaderTooLarge(_TOO_LARGE)
        self._budget -= end
        if status < 200 and status != 101:  # RFC 9110 §15.2: more heads follow
            body_length = 0
        elif status == 101:  # the connection now speaks another protocol
            body_length = UNTIL_CLOSE
            self._in_head = False
        else:
            # RFC 9112 §6.3: no body after HEAD, 204, 304; a 2xx to CONNECT is a tunnel;
            # Transfer-Encoding (only "chunked" got past _fields) beats Content-Length.
            if self._is_head or status in (204, 304) or (self._is_connect and status < 300):
                body_length = 0
            elif self._saw_te:
                body_length = CHUNKED
            elif self._cl is not None:
                body_length = self._cl_int if self._cl_int >= 0 else int(self._cl)
            else:
                body_length = UNTIL_CLOSE
            self._in_head = False
            self._chunked = body_length == CHUNKED
            self._done = not self._chunked
        # RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
        self._facts = (
            not self._saw_close and (memcmp(b, b"HTTP/1.1", 8) == 0 or self._saw_keep_alive),
            self._gzipped,
            self._has_length,
        )
        head = ResponseHead(status, reason, version, fields, body_length, end)
        self._head = head
        return head

    cdef list _fields(self, const unsigned char* b, Py_ssize_t pos, Py_ssize_t stop, str msg):
        """The field lines in b[pos:stop], separated by LF, each maybe ending in CR."""
        cdef list out = []
        cdef const unsigned char* q
        cdef Py_ssize_t ls = -1, le = 0, e, w, lend
        cdef bytearray joined = None
        self._cl = None
        self._saw_te = False
        self._invalid = None
        while True:
            q = <const unsigned char*>memchr(b + pos, b'\n', stop - pos)
            e = q - b if q != NULL else stop
            lend = e - 1 if e > pos and b[e - 1] == b'\r' else e
            if lend > pos and rt_class[b[pos]] & RT_OWS:
                # obs-fold (RFC 9112 §5.2): h11 replaces the fold and leading OWS with one SP.
                if ls < 0:
                    self._failed = True
                    raise ProtocolError(msg)
                w = pos
                while w < lend and rt_class[b[w]] & RT_OWS:
                    w += 1
                if joined is None:
                    joined = bytearray(PyBytes_FromStringAndSize(<char*>b + ls, le - ls))
                joined += b" " + PyBytes_FromStringAndSize(<char*>b + w, lend - w)
            else:
                if ls >= 0:
                    self._field(out, joined, b + ls, le - ls, msg)
                ls, le, joined = pos, lend, None
            if e >= stop:
                break
            pos = e + 1
        self._field(out, joined, b + ls, le - ls, msg)
        if self._invalid is not None:
            # h11 parses every line of a head before it checks the framing fields, so a
            # malformed line anywhere wins over a bad Content-Length or Transfer-Encoding.
            self._failed = True
            raise ProtocolError(self._invalid)
        return out

    cdef int _field(self, list out, bytearray joined, const unsigned char* p, Py_ssize_t n,
                    str msg) except -1:
        """field-name ":" OWS field-value OWS (RFC 9112 §5), normalised as h11 does."""
        cdef Py_ssize_t k = 0, vs, ve, j, ds = 0, size, index
        if joined is not None:
            p = <const unsigned char*>PyByteArray_AS_STRING(joined)
            n = PyByteArray_GET_SIZE(joined)
        while k < n and rt_class[p[k]] & RT_TCHAR:
            k += 1
        if k == 0 or k == n or p[k] != b':':
            self._failed = True
            raise ProtocolError(msg)
        vs, ve = k + 1, n
        while vs < ve and rt_class[p[vs]] & RT_OWS:
            vs += 1
        while ve > vs and rt_class[p[ve - 1]] & RT_OWS:
            ve -= 1
        for j in range(vs, ve):
            if rt_class[p[j]] & RT_WIRE_BAD:  # h11: no NUL, CR, LF, VT, FF in a value
                self._failed = True
                raise ProtocolError(msg)
        index = _name_index(p, k)
        name = _field_name(index, p, k)
        if msg is _BAD_HEAD:
            # The facts build_response needs (the py twin's response_facts), found in passing.
            if k == 10 and _ci_equal(p, b"connection", 10):
                self._saw_close = self._saw_close or _has_token(p + vs, ve - vs, b"close", 5)
                self._saw_keep_alive = self._saw_keep_alive or _has_token(p + vs, ve - vs, b"keep-alive", 10)
            elif k == 16 and not self._saw_encoding and _ci_equal(p, b"content-encoding", 16):
                self._saw_encoding = True
                # Go: EqualFold(Header.Get(...), "gzip"): the whole value, not one of a list.
                self._gzipped = (memchr(p + vs, b',', ve - vs) == NULL
                                 and _has_token(p + vs, ve - vs, b"gzip", 4))
        if k == 14 and _ci_equal(p, b"content-length", 14):
            # RFC 9110 §8.6: "5, 5" is one length. h11 wants every comma-separated part to be
            # the same 1-20 digits and every Content-Length field the same; it keeps one field.
            size = _content_length(p + vs, ve - vs, &ds)
            if size > 0:
                value = PyUnicode_DecodeLatin1(<char*>p + vs + ds, size, NULL)
                if self._cl is None:
                    self._cl = value
                    self._cl_int = -1
                    if size <= 18:
                        self._cl_int = 0
                        for j in range(vs + ds, vs + ds + size):
                            self._cl_int = self._cl_int * 10 + (p[j] - 48)
                    self._has_length = True
                    out.append((name, value))
                    return 0
                if self._cl == value:
                    return 0
            if msg is _BAD_HEAD:
                if self._invalid is None:
                    self._invalid = _BAD_CONTENT_LENGTH
                return 0
            self._failed = True
            raise ProtocolError(msg)
        if k == 17 and _ci_equal(p, b"transfer-encoding", 17):
            # h11 understands exactly one Transfer-Encoding field: "chunked", any case.
            if self._saw_te or ve - vs != 7 or not _ci_equal(p + vs, b"chunked", 7):
                if msg is _BAD_HEAD:
                    if self._invalid is None:
                        self._invalid = _BAD_HEAD
                    return 0
                self._failed = True
                raise ProtocolError(msg)
            self._saw_te = True
            out.append((name, "chunked"))
            return 0
        out.append(_field_pair(index, p, k, p + vs, ve - vs))
        return 0

    cdef object _chunk_event(self):
        """One step of h11's chunked reader: bytes, EndOfBody or None (more bytes needed)."""
        cdef const unsigned char* b = self._buf + self._start
        cdef const unsigned char* q
        cdef Py_ssize_t n = self._end - self._start, e, k, stop
        cdef unsigned long long size = 0
        cdef int status
        if self._trailer:  # trailer-section CRLF (RFC 9112 §7.1.2), read as a field block
            e = self._find_block_end()
            if e < 0:
                return None
            stop = e - 3 if e > 2 and b[e - 2] == b'\r' else e - 2
            self._consume(e)
            trailers = self._fields(b, 0, stop, _BAD_CHUNKED) if e > 2 else []
            self._done = True
            self._chunked = False
            return EndOfBody(trailers)
        if self._crlf_owed:  # chunk-data CRLF: checked byte by byte as it arrives
            k = min(n, self._crlf_owed)
            self._consume(k)  # h11 takes what it compares, a mismatch included
            while k:
                if b[0] != (13 if self._crlf_owed == 2 else 10):  # CR, then LF
                    self._failed = True
                    raise ProtocolError(_BAD_CHUNKED)
                self._crlf_owed -= 1
                b += 1
                k -= 1
            if self._crlf_owed:
                return None
            b, n = self._buf + self._start, self._end - self._start
        if self._chunk_left == 0:  # chunk-size [chunk-ext] CRLF: only a CR LF ends this line
            e = self._scan
            while True:
                q = <const unsigned char*>memchr(b + e, b'\r', n - e) if e < n else NULL
                if q == NULL or q - b + 1 >= n:
                    self._scan = max(0, n - 1)
                    return None
                e = q - b + 1
                if b[e] == b'\n':
                    break
            self._consume(e + 1)
            status = _chunk_size(b, e - 1, &size)
            if status == -1:
                self._failed = True
                raise ProtocolError(_BAD_CHUNKED)
            if status == -2:
                # What follows is the refused chunk's data, taken with it (as the py twin's
                # h11 takes the data of a chunk whose size it reads as valid).
                self._consume(self._end - self._start)
                self._failed = True
                raise ProtocolError(_CHUNK_TOO_LARGE)
            if size == 0:
                self._trailer = True
                return self._chunk_event()
            self._chunk_left = size
            b, n = self._buf + self._start, self._end - self._start
        if n == 0:
            return None
        k = n if <unsigned long long>n < self._chunk_left else <Py_ssize_t>self._chunk_left
        data = PyBytes_FromStringAndSize(<char*>b, k)
        self._consume(k)
        self._chunk_left -= k
        if self._chunk_left == 0:
            self._crlf_owed = 2
        return data
