# cython: language_level=3, auto_pickle=False
"""The hot paths compiled: the twin of ``_speedups_py`` (its docstrings are the specification).

Same names, signatures, results, exception classes and messages. The response parser accepts
and rejects byte for byte what h11 does behind the py twin (``tests/test_parser_differential.py``).
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport (PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize,
                            PyBytes_GET_SIZE)
from cpython.list cimport PyList_CheckExact
from cpython.long cimport PyLong_CheckExact, PyLong_FromVoidPtr
from cpython.tuple cimport PyTuple_CheckExact, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport (PyUnicode_1BYTE_DATA, PyUnicode_1BYTE_KIND, PyUnicode_Check,
                              PyUnicode_CheckExact, PyUnicode_DATA, PyUnicode_DecodeLatin1,
                              PyUnicode_GET_LENGTH, PyUnicode_KIND, PyUnicode_READ)
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memcpy, memmove


from . import _messages
from ._errors import HeaderTooLarge, IncompleteBody, ProtocolError
from ._events import CHUNKED, UNTIL_CLOSE, EndOfBody, ResponseHead

cdef extern from "rt_bytes.h":
    const unsigned char rt_class[256]
    unsigned int rt_hexval(unsigned char c) noexcept
    enum:
        RT_TCHAR, RT_REQ_BAD, RT_WIRE_BAD, RT_HEX, RT_OWS

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

cdef extern from "Python.h":
    enum: PyBUF_WRITE


# Every system call below goes through csrc/rt_io.h: POSIX, Winsock, or (built with
# ROUNDTRIP_PORTABLE_IO=1) the Winsock path's logic on POSIX, so that it is tested here.
cdef extern from "rt_io.h":
    const char* RT_IO_NAME
    enum: RT_IO_ERROR, RT_IO_AGAIN, RT_IO_INTR, RT_IO_TOGGLES
    int rt_io_poll_readable(long long fd) noexcept nogil
    Py_ssize_t rt_io_send_nowait(long long fd, const char* buf, Py_ssize_t n, int nonblocking) noexcept
    int rt_io_wait(long long fd, int for_write, int timeout_ms) noexcept nogil
    Py_ssize_t rt_io_send_some(long long fd, const char* buf, Py_ssize_t n, int nonblocking, int may_block) noexcept nogil
    Py_ssize_t rt_io_recv_some(long long fd, char* buf, Py_ssize_t n, int may_block) noexcept nogil
    double rt_io_now_ms() noexcept nogil
    int rt_io_last_error() noexcept nogil
    void rt_io_restore_error(int code) noexcept nogil
    object rt_io_raise()

from cpython.exc cimport PyErr_CheckSignals

IO_BACKEND = RT_IO_NAME.decode("ascii")  # "posix", "winsock" or "portable"; not in __all__
# exchange_io (_exchange_c.pxi) is compiled-only and not in __all__ either: the general exchange
# in _connection is its specification, and the pure twin has no use for a copy of it.


def poll_readable(long long fd):
    """Whether ``fd`` is readable, hung up or in error, without waiting. A poll that cannot
    block keeps the GIL: no hand-over to another thread for a check that takes no time."""
    cdef int ready
    while True:
        ready = rt_io_poll_readable(fd)
        if ready >= 0:
            return ready > 0
        if ready != RT_IO_INTR:
            rt_io_raise()
        PyErr_CheckSignals()


def send_nowait(sock, data):
    """Send what the socket takes now (``MSG_DONTWAIT``): the count sent, 0 if nothing fits.

    For plain TCP sockets only. It keeps the GIL, as a send that cannot block takes no time;
    a request head usually goes out whole in this one call.
    """
    cdef long long fd = sock.fileno()
    # Python keeps a socket with a timeout non-blocking underneath (socket.settimeout); Winsock
    # cannot be asked, so the portable path goes by this.
    cdef int nonblocking = sock.gettimeout() is not None
    cdef Py_buffer view
    cdef Py_ssize_t sent
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        while True:
            sent = rt_io_send_nowait(fd, <const char*>view.buf, view.len, nonblocking)
            if sent >= 0:
                return sent
            if sent == RT_IO_AGAIN:
                return 0
            if sent != RT_IO_INTR:
                rt_io_raise()
            PyErr_CheckSignals()
    finally:
        PyBuffer_Release(&view)


def new_body_buffer(Py_ssize_t size):
    """``(body, view)``: a body of ``size`` bytes to receive into through ``view``.

    Here ``body`` is the very bytes object that is returned to the caller, filled in place
    before anyone else sees it (as CPython's own ``socket.recv`` fills the bytes it returns),
    so a large body is neither zeroed first nor copied at the end. Release ``view`` before
    handing ``body`` on, and use ``bytes(body)``: for a bytes object that costs nothing.
    """
    if size < 0:
        raise ValueError("size must not be negative")
    cdef bytes body = PyBytes_FromStringAndSize(NULL, size)
    return body, PyMemoryView_FromMemory(PyBytes_AS_STRING(body), size, PyBUF_WRITE)

# The parser's messages come from the module both twins share.
cdef str _BAD_HEAD = _messages.BAD_HEAD
cdef str _BAD_CHUNKED = _messages.BAD_CHUNKED
cdef str _CLOSED_IN_HEAD = _messages.CLOSED_IN_HEAD
cdef str _CLOSED_IN_BODY = _messages.CLOSED_IN_BODY
cdef str _TOO_LARGE = _messages.HEAD_TOO_LARGE
cdef str _LINE_TOO_LONG = _messages.LINE_TOO_LONG
cdef str _CHUNK_TOO_LARGE = _messages.CHUNK_SIZE_TOO_LARGE
cdef str _FED_AFTER_EOF = _messages.FED_AFTER_EOF
cdef str _BAD_CONTENT_LENGTH = _messages.BAD_CONTENT_LENGTH


# ---------------------------------------------------------------------------------------------
# Request side: RFC 9110 §5.6.2 tokens, §5.5 field values, RFC 9112 §3 request head.

cdef inline int _need_str(object s) except -1:
    if not PyUnicode_Check(s):  # the py twin's str regexes raise TypeError too
        raise TypeError(f"expected str, got {type(s).__name__!r}")
    return 0


cdef bint _token(str s) noexcept:
    """1*tchar. A kind 2/4 string holds a char > 0xFF, which is never a tchar (all ASCII)."""
    cdef Py_ssize_t i, n = PyUnicode_GET_LENGTH(s)
    cdef const unsigned char* p
    if n == 0 or PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND:
        return False
    p = PyUnicode_1BYTE_DATA(s)
    for i in range(n):
        if not rt_class[p[i]] & RT_TCHAR:
            return False
    return True


cdef int _value_problem(str s) noexcept:
    """0: fine; 1: a CTL other than HTAB, or DEL (checked first); 2: a char past latin-1."""
    cdef Py_ssize_t i, n = PyUnicode_GET_LENGTH(s)
    cdef unsigned int kind = PyUnicode_KIND(s)
    cdef void* data = PyUnicode_DATA(s)
    cdef const unsigned char* p
    cdef Py_UCS4 c
    cdef bint wide = False
    if kind == PyUnicode_1BYTE_KIND:
        p = <const unsigned char*>data
        for i in range(n):
            if rt_class[p[i]] & RT_REQ_BAD:
                return 1
        return 0
    for i in range(n):
        c = PyUnicode_READ(kind, data, i)
        if c > 0xFF:
            wide = True
        elif rt_class[c] & RT_REQ_BAD:
            return 1
    return 2 if wide else 0


def is_token(text):
    """Whether ``text`` is an RFC 9110 token (one or more tchar)."""
    _need_str(text)
    return _token(<str>text)


def validate_method(method):
    """Raise ``InvalidRequest`` unless ``method`` is a token."""
    _need_str(method)
    if not _token(<str>method):
        raise _messages.invalid_method(method)


def validate_header_fields(fields):
    """Check names and values in order; raise ``InvalidRequest`` at the first bad one.

    The message names the field but never echoes a value: it may be a secret.
    """
    cdef int problem
    for name, value in fields:
        _need_str(name)
        if not _token(<str>name):
            raise _messages.invalid_header_name(name)
        _need_str(value)
        problem = _value_problem(<str>value)
        if problem == 1:
            raise _messages.invalid_header_value(name)
        if problem == 2:
            raise _messages.unencodable_header_value(name)


cdef inline char* _put(char* out, str s) noexcept:
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s)
    memcpy(out, PyUnicode_1BYTE_DATA(s), n)
    return out + n


cdef inline bint _narrow(object s) noexcept:
    return PyUnicode_CheckExact(s) and PyUnicode_KIND(s) == PyUnicode_1BYTE_KIND


cdef Py_ssize_t _head_length(object method, object target, object pairs):
    """Bytes of the head, or -1 unless every part is an exact latin-1 (kind 1) str and every
    field an exact 2-tuple; pairs is an exact list or tuple."""
    cdef Py_ssize_t total = 14  # " " + " HTTP/1.1\r\n" + the final "\r\n"
    if not (_narrow(method) and _narrow(target)):
        return -1
    total += PyUnicode_GET_LENGTH(method) + PyUnicode_GET_LENGTH(target)
    for pair in pairs:
        if not (PyTuple_CheckExact(pair) and PyTuple_GET_SIZE(pair) == 2):
            return -1
        name, value = <object>PyTuple_GET_ITEM(pair, 0), <object>PyTuple_GET_ITEM(pair, 1)
        if not (_narrow(name) and _narrow(value)):
            return -1
        total += PyUnicode_GET_LENGTH(name) + PyUnicode_GET_LENGTH(value) + 4  # ": ", CRLF
    return total


cdef bytes _write_head(str method, str target, object pairs, Py_ssize_t total):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* w = PyBytes_AS_STRING(out)
    w = _put(w, method)
    w[0] = b' '
    w = _put(w + 1, target)
    memcpy(w, b" HTTP/1.1\r\n", 11)
    w += 11
    for pair in pairs:
        w = _put(w, <str><object>PyTuple_GET_ITEM(pair, 0))
        w[0] = b':'
        w[1] = b' '
        w = _put(w + 2, <str><object>PyTuple_GET_ITEM(pair, 1))
        w[0] = b'\r'
        w[1] = b'\n'
        w += 2
    w[0] = b'\r'
    w[1] = b'\n'
    return out


def encode_request_head(method, target, fields):
    """Serialize ``METHOD target HTTP/1.1``, the fields and the blank line (RFC 9112 §3).

    The fields must already have passed ``validate_header_fields``.
    """
    cdef Py_ssize_t total
    if PyList_CheckExact(fields) or PyTuple_CheckExact(fields):  # the usual case: one copy
        total = _head_length(method, target, fields)
        if total >= 0:
            return _write_head(method, target, fields, total)
    # Otherwise format each part as the py twin's f-strings do, in the same order.
    method, target = f"{method}", f"{target}"
    pairs = [(f"{name}", f"{value}") for name, value in fields]
    total = _head_length(method, target, pairs)
    if total >= 0:
        return _write_head(method, target, pairs, total)
    # A char past latin-1: let the codec raise exactly the py twin's UnicodeEncodeError.
    lines = [f"{method} {target} HTTP/1.1\r\n", *[f"{n}: {v}\r\n" for n, v in pairs], "\r\n"]
    return "".join(lines).encode("latin-1")


# The response parser, the idle table and the exchange's syscall loop live in their own files,
# compiled into this module.
include "_parser_c.pxi"
include "_idle_c.pxi"
include "_exchange_c.pxi"
