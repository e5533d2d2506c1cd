"""The ``roundtrip`` command.

``roundtrip URL [-X METHOD] [-H "Name: value"]... [-d DATA | --data-file PATH] [-i] [--trace] [--timeout S]``
sends one request and writes the response body to stdout as it arrives, adding nothing;
``roundtrip bench ...`` runs the benchmark (``roundtrip bench --help``).

Exit status: 0 when a response was received (a 4xx or 5xx is a response, as in Go), 1 when the
round trip failed, 2 for a bad command line; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
from typing import TYPE_CHECKING, BinaryIO, Callable, NoReturn, Optional, Sequence, TextIO, Union

from ._errors import Timeout

if TYPE_CHECKING:
    from ._models import Response
    from ._trace import GotConnInfo, Trace

__all__ = ("main",)

PROG = "roundtrip"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
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
    parser.add_argument("--trace", action="store_true", help="print a timing waterfall to stderr (DNS, connect, TLS, request written, first byte, body done; "
        "a failed phase is marked, with its error)")
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

    body: Union[bytes, BinaryIO, None] = None
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
    if waterfall is not None:
        waterfall.start()
    transport = roundtrip.Transport()
    received = 0
    try:
        with transport.round_trip(request) as resp:
            if waterfall is not None:
                waterfall.response(resp)
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
            waterfall.fail(exc)
            waterfall.print(err, method, opts.url)
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
    """Times the phases of one round trip from Trace hooks and draws them on stderr.

    A phase is drawn only from its own start and end events, so a phase that never began is
    never drawn as if it had; a failure ends the phase that was running at that moment, and
    time between phases is drawn as waiting.
    """

    PHASES = ("DNS", "connect", "TLS", "request written", "first byte", "body done")
    _WIDTH = 32  # characters of the bar
    _GAP = 0.001  # seconds between phases worth a row of their own

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.t0 = 0.0
        self.end: Optional[float] = None  # when the round trip finished or failed
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.errors: dict[str, str] = {}  # the phases that failed, with their error
        self.timed_out: set[str] = set()
        self.notes: dict[str, str] = {}
        self.attempts: list[tuple[float, float, str]] = []  # earlier attempts: start, end, why retried
        self.reused = False
        self.failed = False

    def start(self) -> None:
        self.t0 = self.clock()

    def _begin(self, phase: str, at: Optional[float] = None) -> None:
        self.started[phase] = self.clock() if at is None else at
        self.ended.pop(phase, None)
        self.errors.pop(phase, None)

    def _finish(self, phase: str, error: Optional[BaseException] = None, at: Optional[float] = None) -> float:
        now = self.clock() if at is None else at
        if phase not in self.started:
            return now
        self.ended[phase] = now
        self.timed_out.discard(phase)
        if error is not None:
            self.errors[phase] = f"{type(error).__name__}: {_one_line(error)}"
            if isinstance(error, Timeout):
                self.timed_out.add(phase)
        else:
            self.errors.pop(phase, None)
        return now

    def trace(self) -> Trace:
        import roundtrip

        def dns_start(host: str) -> None:
            self._begin("DNS")
            self.notes["DNS"] = host

        def dns_done(addrs: list[str], error: Optional[BaseException]) -> None:
            self._finish("DNS", error)
            if not error:
                self.notes["DNS"] += f" -> {', '.join(map(str, addrs))}"

        def connect_start(addr: tuple[str, int]) -> None:
            if "connect" not in self.started:
                self._begin("connect")  # from the first address tried (Go tries them in turn)
            self.notes["connect"] = f"{addr[0]}:{addr[1]}"

        def connect_done(addr: tuple[str, int], error: Optional[BaseException]) -> None:
            self._finish("connect", error)

        def tls_handshake_start() -> None:
            self._begin("TLS")

        def tls_handshake_done(error: Optional[BaseException]) -> None:
            self._finish("TLS", error)

        def got_conn(info: GotConnInfo) -> None:
            self.reused = bool(info.reused)
            if info.tls_version and not info.reused:
                self.notes["TLS"] = info.tls_version
            self._begin("request written")

        def wrote_request(error: Optional[BaseException]) -> None:
            self._begin("first byte", self._finish("request written", error))

        def got_first_response_byte() -> None:
            self._begin("body done", self._finish("first byte"))

        def retried(reason: str, attempt: int) -> None:
            # The next attempt starts over; what this one did becomes one row.
            now = self.clock()
            self.attempts.append((self._attempt_start(), now, reason))
            for phase in self.PHASES:
                self.started.pop(phase, None)
                self.ended.pop(phase, None)
                self.errors.pop(phase, None)
                self.notes.pop(phase, None)
            self.timed_out.clear()

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

    def response(self, resp: Response) -> None:
        self.notes["first byte"] = f"{resp.http_version} {resp.status_code} {resp.reason}".rstrip()

    def body_done(self, received: int) -> None:
        self.end = self._finish("body done")
        self.notes["body done"] = f"{received} bytes"

    def fail(self, error: BaseException) -> None:
        """The round trip failed now: the phase still running ends here, with the error."""
        self.end = self.clock()
        self.failed = True
        running = [phase for phase in self.PHASES if phase in self.started and phase not in self.ended]
        for phase in running[-1:]:
            self._finish(phase, error, self.end)

    def _attempt_start(self) -> float:
        return self.attempts[-1][1] if self.attempts else self.t0

    def _skipped(self, phase: str, url: str) -> str:
        """Why a phase that did not happen did not."""
        index = self.PHASES.index(phase)
        if not any(later in self.started for later in self.PHASES[index + 1 :]):
            return "not reached" if self.failed else "did not happen"
        if self.reused and phase in ("DNS", "connect", "TLS"):
            return "reused connection"
        if phase == "DNS":
            return "IP address, no lookup" if _is_ip_literal(url) else "no lookup"
        if phase == "TLS":
            return "not https"
        return "did not happen"

    def _rows(self, url: str) -> list["tuple[str, Optional[float], Optional[float], str]"]:
        """``(label, start, end, note)`` in time order, waiting between phases included."""
        rows: list[tuple[str, Optional[float], Optional[float], str]] = []
        for number, (tried, given_up, reason) in enumerate(self.attempts, 1):
            rows.append((f"attempt {number}", tried, given_up, f"retried: {reason}"))
        last = self._attempt_start()
        for phase in self.PHASES:
            if phase not in self.started:
                rows.append((phase, None, None, f"({self._skipped(phase, url)})"))
                continue
            begun = self.started[phase]
            ended = self.ended.get(phase)
            if begun - last >= self._GAP:
                # Before the handshake the transport sets TLS up (loading CA certificates
                # the first time); elsewhere the time is spent waiting.
                rows.append(("(waiting)", last, begun, "TLS setup" if phase == "TLS" else ""))
            if ended is None:  # still running when the trace was drawn
                rows.append((phase, begun, None, "(did not finish)"))
                continue
            last = max(last, ended)
            if phase in self.errors:
                marker = "TIMED OUT" if phase in self.timed_out else "FAILED"
                note = f"{marker}: {self.errors[phase]}"
            else:
                note = self.notes.get(phase, "")
            rows.append((phase, begun, ended, note))
        if self.end is not None and self.end - last >= self._GAP:
            rows.append(("(waiting)", last, self.end, "FAILED" if self.failed else ""))
        return rows

    def print(self, err: TextIO, method: str, url: str) -> None:
        rows = self._rows(url)
        ends = [end for _, _, end, _ in rows if end is not None]
        finish = self.end if self.end is not None else max(ends, default=self.t0)
        total = max(finish - self.t0, 1e-9)
        width = self._WIDTH
        lines = [f"* trace: {method} {url}" + (" (connection reused)" if self.reused else "")]
        lines.append(f"  {'phase':<16}{'start':>10}{'duration':>11}")
        for label, begun, ended, note in rows:
            if begun is None:
                lines.append(f"  {label:<16}{'-':>10}{'-':>11}   {note}")
                continue
            start = begun - self.t0
            if ended is None:
                lines.append(f"  {label:<16}{start * 1000:>8.3f}ms{'-':>11}   {note}")
                continue
            length = ended - begun
            offset = min(int(width * start / total), width - 1)
            size = min(max(1, int(round(width * length / total))), width - offset)
            bar = " " * offset + ("." if label == "(waiting)" else "#") * size + " " * (width - offset - size)
            lines.append(f"  {label:<16}{start * 1000:>8.3f}ms{length * 1000:>9.3f}ms |{bar}| {note}".rstrip())
        outcome = "failed" if self.failed else ""
        lines.append(f"  {'total':<16}{'':>10}{total * 1000:>9.3f}ms   {outcome}".rstrip())
        err.write("\n".join(lines) + "\n")
        err.flush()


def _is_ip_literal(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
