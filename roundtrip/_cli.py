"""The ``roundtrip`` command.

``roundtrip URL [-X METHOD] [-H "Name: value"]... [-d DATA | --data-file PATH] [-i] [--trace] [--timeout S]``
sends one request and writes the response body to stdout as it arrives, adding nothing;
``roundtrip bench ...`` runs the benchmark (``roundtrip bench --help``).

Exit status: 0 when a response was received (a 4xx or 5xx is a response, as in Go), 1 when the
round trip failed, 2 for a bad command line; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, BinaryIO, Optional, Sequence, TextIO

__all__ = ("main",)

PROG = "roundtrip"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit status 2."""

    def error(self, message: str) -> "Any":  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "bench":
            from ._bench import main as bench_main

            return bench_main(args[1:])
        return _fetch(args)
    except SystemExit as exc:  # argparse: --help, --version, a bad command line
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Send one HTTP request with roundtrip and write the response body to stdout, as received.",
        epilog="roundtrip bench [--full] [--json FILE] [--plot FILE] [--clients ...] [--scenarios ...]: "
        "run the benchmark (roundtrip bench --help).",
    )
    parser.add_argument("url", metavar="URL", help="http:// or https:// URL")
    parser.add_argument("-X", "--request", dest="method", metavar="METHOD", help="request method (default GET, or POST with -d/--data-file)")
    parser.add_argument("-H", "--header", dest="headers", action="append", default=[], metavar='"Name: value"', help="add a request header (repeatable)")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("-d", "--data", metavar="DATA", help="send DATA as the request body (implies POST unless -X)")
    data.add_argument("--data-file", metavar="PATH", help="send the file PATH as the request body ('-' for stdin; implies POST unless -X)")
    parser.add_argument("-i", "--include", action="store_true", help="write the status line and headers before the body")
    parser.add_argument("--trace", action="store_true", help="print a timing waterfall to stderr (DNS, connect, TLS, request written, first byte, body done)")
    parser.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds for the whole exchange, body included")
    parser.add_argument("--version", action="version", version=_version())
    return parser


def _version() -> str:
    import roundtrip

    return f"roundtrip {roundtrip.__version__} ({roundtrip.IMPLEMENTATION})"


def _parse_header(parser: _Parser, text: str) -> "tuple[str, str]":
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        parser.error(f'-H needs "Name: value", got {text!r}')
    return name.strip(), value.strip()  # RFC 9110 §5.5: OWS around the value is not part of it


def _fetch(argv: list[str], stdout: Optional[BinaryIO] = None, stderr: Optional[TextIO] = None) -> int:
    parser = _parser()
    opts = parser.parse_args(argv)
    headers = [_parse_header(parser, text) for text in opts.headers]
    if opts.timeout is not None and not opts.timeout > 0:
        parser.error("--timeout must be a positive number of seconds")
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr

    import roundtrip

    body: Any = None
    data_file: Optional[BinaryIO] = None
    if opts.data is not None:
        body = os.fsencode(opts.data)  # the argument's own bytes, as the shell passed them
    elif opts.data_file is not None:
        if opts.data_file == "-":
            body = sys.stdin.buffer
        else:
            try:
                data_file = body = open(opts.data_file, "rb")
            except OSError as exc:
                err.write(f"{PROG}: error: cannot read --data-file: {exc.strerror or exc}: {opts.data_file}\n")
                return 1
    method = opts.method if opts.method is not None else ("POST" if opts.data is not None or opts.data_file is not None else "GET")

    waterfall = _Waterfall() if opts.trace else None
    context = roundtrip.Context(timeout=opts.timeout) if opts.timeout is not None else None
    request = roundtrip.Request(
        method,
        opts.url,
        headers=headers,
        body=body,
        context=context,
        trace=waterfall.trace() if waterfall is not None else None,
    )
    transport = roundtrip.Transport()
    received = 0
    try:
        if waterfall is not None:
            waterfall.start()
        with transport.round_trip(request) as resp:
            if opts.include:
                head = [f"{resp.http_version} {resp.status_code} {resp.reason}".rstrip() + "\r\n"]
                head.extend(f"{name}: {value}\r\n" for name, value in resp.headers.items())
                head.append("\r\n")
                out.write("".join(head).encode("latin-1"))
                out.flush()
            for chunk in resp.iter_bytes():
                out.write(chunk)
                out.flush()  # as received: a slow stream shows up as it comes
                received += len(chunk)
        if waterfall is not None:
            waterfall.body_done(received)
            waterfall.print(err, method, opts.url)
        return 0
    except roundtrip.Error as exc:
        if waterfall is not None:
            waterfall.print(err, method, opts.url, failed=True)
        err.write(f"{PROG}: error: {type(exc).__name__}: {_one_line(exc)}\n")
        return 1
    except BrokenPipeError:
        # The reader went away (``roundtrip URL | head``): stop quietly, as cat does.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        transport.close()
        if data_file is not None:
            data_file.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class _Waterfall:
    """Times the phases of one round trip from Trace hooks and draws them on stderr."""

    PHASES = ("DNS", "connect", "TLS", "request written", "first byte", "body done")

    def __init__(self) -> None:
        self.t0 = 0.0
        self.marks: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self.retries: list[str] = []
        self.reused = False
        self.received = 0

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def _mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()

    def trace(self) -> Any:
        import roundtrip

        def dns_start(host: str) -> None:
            self._mark("dns_start")
            self.notes["DNS"] = host

        def dns_done(addrs: list, error: Optional[BaseException]) -> None:
            self._mark("dns_done")
            self.notes["DNS"] += f" -> {', '.join(map(str, addrs))}" if not error else f": {_one_line(error)}"

        def connect_start(addr: tuple) -> None:
            self.marks.setdefault("connect_start", time.perf_counter())  # the first address tried
            self.notes["connect"] = f"{addr[0]}:{addr[1]}"

        def connect_done(addr: tuple, error: Optional[BaseException]) -> None:
            self._mark("connect_done")
            self.notes["connect"] = f"{addr[0]}:{addr[1]}" + (f": {_one_line(error)}" if error else "")

        def tls_handshake_start() -> None:
            self._mark("tls_start")

        def tls_handshake_done(error: Optional[BaseException]) -> None:
            self._mark("tls_done")
            if error is not None:
                self.notes["TLS"] = _one_line(error)

        def got_conn(info: Any) -> None:
            self._mark("got_conn")
            self.reused = bool(info.reused)

        def wrote_request(error: Optional[BaseException]) -> None:
            self._mark("wrote_request")
            if error is not None:
                self.notes["request written"] = _one_line(error)

        def got_first_response_byte() -> None:
            self._mark("first_byte")

        def retried(reason: str, attempt: int) -> None:
            self.retries.append(f"retry {attempt}: {reason}")

        return roundtrip.Trace(
            dns_start=dns_start,
            dns_done=dns_done,
            connect_start=connect_start,
            connect_done=connect_done,
            tls_handshake_start=tls_handshake_start,
            tls_handshake_done=tls_handshake_done,
            got_conn=got_conn,
            wrote_request=wrote_request,
            got_first_response_byte=got_first_response_byte,
            retried=retried,
        )

    def body_done(self, received: int) -> None:
        self._mark("body_done")
        self.received = received
        self.notes["body done"] = f"{received} bytes"

    def _spans(self) -> list["tuple[str, Optional[float], Optional[float]]"]:
        m = self.marks
        t0 = self.t0

        def span(start: str, end: str) -> "tuple[Optional[float], Optional[float]]":
            if start in m and end in m:
                return m[start] - t0, m[end] - m[start]
            if start in m:
                return m[start] - t0, None
            return None, None

        written_from = "got_conn" if "got_conn" in m else "tls_done" if "tls_done" in m else "connect_done"
        return [
            ("DNS", *span("dns_start", "dns_done")),
            ("connect", *span("connect_start", "connect_done")),
            ("TLS", *span("tls_start", "tls_done")),
            ("request written", *span(written_from, "wrote_request")),
            ("first byte", *span("wrote_request", "first_byte")),
            ("body done", *span("first_byte", "body_done")),
        ]

    def print(self, err: TextIO, method: str, url: str, failed: bool = False) -> None:
        spans = self._spans()
        total = max([(start or 0) + (length or 0) for _, start, length in spans] + [1e-9])
        width = 32
        lines = [f"* trace: {method} {url}" + (" (connection reused)" if self.reused else "")]
        lines.append(f"  {'phase':<16}{'start':>10}{'duration':>11}")
        for name, start, length in spans:
            note = self.notes.get(name, "")
            if start is None:
                why = {"DNS": "IP literal or reused connection", "connect": "reused connection or custom dial", "TLS": "not https"}.get(name, "did not happen")
                lines.append(f"  {name:<16}{'-':>10}{'-':>11}   ({why})")
                continue
            if length is None:
                lines.append(f"  {name:<16}{start * 1000:>8.3f}ms{'-':>11}   (did not finish{': ' + note if note else ''})")
                continue
            offset = int(width * start / total)
            size = max(1, int(round(width * length / total)))
            offset = min(offset, width - size)
            bar = " " * offset + "#" * size + " " * (width - offset - size)
            lines.append(f"  {name:<16}{start * 1000:>8.3f}ms{length * 1000:>9.3f}ms |{bar}| {note}".rstrip())
        for retry in self.retries:
            lines.append(f"  {retry}")
        if not failed:
            lines.append(f"  {'total':<16}{'':>10}{total * 1000:>9.3f}ms")
        err.write("\n".join(lines) + "\n")
        err.flush()
