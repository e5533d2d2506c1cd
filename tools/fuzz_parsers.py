"""Differential fuzzing of the two response parsers, with h11 as a third opinion.

    python3 tools/fuzz_parsers.py --seconds 60 [--seed N] [--out fuzz-failures]
    python3 tools/fuzz_parsers.py --replay fuzz-failures/<hash>.bin

Each input (a generated response, often mutated, or random bytes after a chunked head) is fed
whole and split at random points, with a request method, an end of stream or not, and a head
budget, to the compiled parser and to the pure one: their events (body pieces joined), the class
and message of any error, and the unparsed bytes must be equal. With the default budget the
input also goes to h11 itself (``h11.Connection(h11.CLIENT)``): heads, body bytes and trailers
must be equal, and both sides must fail or neither (h11 words its errors its own way). One
known difference is exempt: h11 takes 20-digit chunk sizes, while the parsers stop at 64 bits.

The fuzzing runs in a child process, so that a crash of the compiled parser is caught too. An
input that makes a difference or a crash is saved as ``<out>/<hash>.bin`` (the bytes) beside
``<hash>.json`` (method, end of stream, budget, split points, what differed); the command then
exits 1. At the end it prints ``N inputs, M splits, K differences``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import h11  # noqa: E402

from roundtrip import _messages, _speedups_py  # noqa: E402
from roundtrip._events import EndOfBody, ResponseHead  # noqa: E402

try:
    from roundtrip import _speedups_c
except ImportError:  # reported by main(): there is nothing to compare without it
    _speedups_c = None

DEFAULT_BUDGET = 1 << 20
METHODS = ["GET"] * 6 + ["HEAD", "HEAD", "CONNECT", "POST", "head"]

# --- inputs -----------------------------------------------------------------------------------

FIELD_VALUES = [b"nginx", b"", b"a b", b"x\x80\xff", b"1, 2", b"\x01\x7f", b"q=\"x;y\"", b"text/html"]
FIELD_NAMES = [b"Server", b"X-V", b"Date", b"Vary", b"Connection", b"Cache-Control", b"ETag"]
# Rarely, something a parser must refuse: a NUL or VT in a value, a name that is no token.
BAD_VALUES = [b"a\x00b", b"\x0b", b"a\rb"]
BAD_NAMES = [b"X Bad", b"", b"X(y)", b"\x80"]


def _rare(rng: random.Random, usual: list[bytes], odd: list[bytes], p: float = 0.02) -> bytes:
    return rng.choice(odd if rng.random() < p else usual)


def _head(rng: random.Random, status: bytes, framing: list[tuple[bytes, bytes]]) -> bytes:
    eol = rng.choice([b"\r\n"] * 6 + [b"\n"])
    version = _rare(rng, [b"HTTP/1.1"] * 8 + [b"HTTP/1.0"], [b"HTTP/2.0", b"HTTP/1.10", b"http/1.1"], 0.01)
    reason = _rare(rng, [b" OK", b" OK", b"", b" ", b" Some Reason", b"  x\t\x80"], [b" O\x00K", b"\tOK"], 0.01)
    fields = list(framing)
    for _ in range(rng.randint(0, 4)):
        fields.append((_rare(rng, FIELD_NAMES, BAD_NAMES, 0.005), _rare(rng, FIELD_VALUES, BAD_VALUES, 0.005)))
    rng.shuffle(fields)
    lines = [version + b" " + status + reason]
    for name, value in fields:
        ows = rng.choice([b" ", b" ", b"", b"\t "])
        if (name, value) not in framing and rng.random() < 0.05:  # obs-fold (RFC 9112 §5.2)
            value = value[:2] + rng.choice([b"\r\n ", b"\r\n\t", b"\n  "]) + value[2:]
        lines.append(name + b":" + ows + value + rng.choice([b"", b"", b" "]))
    return rng.choice([eol, b"\r\n"]).join(lines) + eol + eol


def _chunk_size(rng: random.Random, n: int) -> bytes:
    roll = rng.random()
    if roll < 0.04:  # around the 64-bit limit: 15 to 20 digits, leading zeros or not
        return rng.choice([b"f" * 16, b"1" + b"0" * 16, b"0000" + b"F" * 16, b"8" + b"0" * 15, b"F" * 20])
    if roll < 0.1:
        return b"0" * rng.randint(1, 5) + b"%x" % n
    return (b"%X" if rng.random() < 0.3 else b"%x") % n


def _chunked_body(rng: random.Random, payload: bytes) -> bytes:
    out = b""
    pos = 0
    while pos < len(payload):
        n = rng.randint(1, max(1, len(payload) - pos))
        ext = rng.choice([b"", b"", b"", b";a=b", b';q="x y"', b";", b";x\r"])
        ows = rng.choice([b"", b"", b"", b" ", b"\t"])
        end = _rare(rng, [b"\r\n"], [b"\n", b"x", b"\r"], 0.03)
        out += _chunk_size(rng, n) + ext + ows + b"\r\n" + payload[pos : pos + n] + end
        pos += n
    out += b"0" + rng.choice([b"", b"", b";end", b" "]) + b"\r\n"
    for _ in range(rng.choice([0, 0, 1, 2])):
        usual = [b"X-T: 1", b"Content-Length: 9", b"Checksum: ab", b"X: a\r\n b"]
        trailer = _rare(rng, usual, [b" fold", b"Bad Name: 1"], 0.05)
        out += trailer + rng.choice([b"\r\n", b"\r\n", b"\n"])
    return out + rng.choice([b"\r\n", b"\r\n", b"\n"])


def generate(rng: random.Random) -> bytes:
    """One response: 1xx heads, a final head with its framing, a body; maybe mutated."""
    if rng.random() < 0.08:  # random bytes after a chunked head
        tail = bytes(rng.choice(b"0123456789abcdefABCDEF;\r\n \tXx:=") for _ in range(rng.randint(0, 40)))
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + tail
    out = b""
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        out += _head(rng, rng.choice([b"100", b"102", b"103", b"199"]), [])
    payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 24)))
    if rng.random() < 0.15:  # gzip is opaque to the parser, but its bytes are anything
        payload = gzip.compress(payload)
    framing: list[tuple[bytes, bytes]] = []
    kind = rng.choice(["chunked", "chunked", "length", "none"])
    if kind == "chunked":
        coding = _rare(rng, [b"chunked", b"Chunked", b"chunked "], [b"gzip, chunked", b"gzip"])
        framing.append((b"Transfer-Encoding", coding))
        body = _chunked_body(rng, payload)
    else:
        body = payload
        if kind == "length":
            same = b"%d" % len(payload)
            length = _rare(rng, [same, same, b"00" + same, same + b", " + same], [b"x", b"-1", b"1, 2"], 0.05)
            framing.append((b"Content-Length", length))
    if payload[:2] == b"\x1f\x8b":
        framing.append((b"Content-Encoding", b"gzip"))
    status = _rare(rng, [b"200"] * 8 + [b"201", b"204", b"304", b"101", b"404", b"999"], [b"099", b"2x0", b"20"])
    out += _head(rng, status, framing) + body
    if rng.random() < 0.5:
        out += b"HTTP/1.1 200 OK\r\n\r\n"  # pipelined bytes: left unparsed
    for _ in range(rng.choice([0, 0, 0, 0, 1, 1, 2, 3])):
        out = mutate(rng, out)
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    byte = bytes([rng.choice(list(b"\r\n \t:0aF;,\"") + [0x00, 0x7F, 0xFF, rng.getrandbits(8)])])
    edit = rng.choice(["delete", "insert", "replace", "truncate", "duplicate", "flip"])
    if edit == "delete":
        return data[:at] + data[at + rng.randint(1, 3) :]
    if edit == "insert":
        return data[:at] + byte + data[at:]
    if edit == "replace":
        return data[:at] + byte + data[at + 1 :]
    if edit == "truncate":
        return data[:at]
    if edit == "duplicate":
        end = min(len(data), at + rng.randint(1, 16))
        return data[:end] + data[at:end] + data[end:]
    return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]


def split(rng: random.Random, data: bytes) -> list[int]:
    """Cut points: none, every byte, or a few at random."""
    if len(data) < 2:
        return []
    roll = rng.random()
    if roll < 0.15 and len(data) <= 400:
        return list(range(1, len(data)))
    return sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)]) if b > a]


# --- running the parsers ----------------------------------------------------------------------


def run_parser(module: Any, chunks: list[bytes], method: str, eof: bool, budget: int) -> tuple[Any, ...]:
    """Feed the pieces, draining after each: (events, (class, message) or None, unparsed)."""
    parser = module.ResponseParser(method, budget)
    events: list[Any] = []
    try:
        for chunk in [*chunks, None] if eof else chunks:
            if chunk is None:
                parser.feed_eof()
            else:
                parser.feed(chunk)
            while (event := parser.next_event()) is not None:
                if isinstance(event, bytes) and events and isinstance(events[-1], bytes):
                    events[-1] += event
                else:
                    events.append(event)
    except Exception as exc:  # noqa: BLE001 - any difference counts
        return events, (type(exc).__name__, str(exc)), parser.take_unparsed()
    return events, None, parser.take_unparsed()


def _text_fields(headers: Any) -> list[tuple[str, str]]:
    return [(bytes(n).decode("latin-1"), bytes(v).decode("latin-1")) for n, v in headers.raw_items()]


def _h11_chunked(method: str, status: int, fields: list[tuple[str, str]]) -> bool:
    """Whether a body follows this final head, chunked (RFC 9112 §6.3; h11 refuses any other
    Transfer-Encoding before we get here)."""
    if method == "HEAD" or status in (101, 204, 304) or (method == "CONNECT" and status < 300):
        return False
    return any(name.lower() == "transfer-encoding" for name, _ in fields)


def run_h11(chunks: list[bytes], method: str, eof: bool) -> tuple[list[Any], bool]:
    """h11 on its own, asked the same request as the pure twin asks it: (events, failed).

    Like the parsers, it is followed past the final head only into a chunked body.
    """
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=sys.maxsize)
    request_fields = [("Host", "h"), ("Connection", "upgrade"), ("Upgrade", "h")]
    conn.send(h11.Request(method=method, target="/", headers=request_fields))
    conn.send(h11.EndOfMessage())
    events: list[Any] = []
    try:
        for chunk in [*chunks, b""] if eof else chunks:
            conn.receive_data(chunk)
            while (event := conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                if isinstance(event, (h11.InformationalResponse, h11.Response)):
                    fields = _text_fields(event.headers)
                    version = "HTTP/" + event.http_version.decode()
                    events.append((event.status_code, event.reason.decode("latin-1"), version, fields))
                    final = isinstance(event, h11.Response) or event.status_code == 101
                    if final and not _h11_chunked(method, event.status_code, fields):
                        return events, False
                elif isinstance(event, h11.Data):
                    if events and isinstance(events[-1], bytes):
                        events[-1] += bytes(event.data)
                    else:
                        events.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    events.append(("end", _text_fields(event.headers)))
                    return events, False
                else:  # ConnectionClosed where a message was due
                    return events, True
    except h11.RemoteProtocolError:
        return events, True
    return events, False


def as_h11_events(events: list[Any]) -> list[Any]:
    out: list[Any] = []
    for event in events:
        if isinstance(event, ResponseHead):
            out.append((event.status_code, event.reason, event.http_version, list(event.headers)))
        elif isinstance(event, EndOfBody):
            out.append(("end", list(event.trailers)))
        else:
            out.append(event)
    return out


def compare(data: bytes, method: str, eof: bool, budget: int, cuts: list[int]) -> str | None:
    """What differs between the parsers (and h11) on one way of feeding ``data``, or None."""
    chunks = pieces(data, cuts)
    c = run_parser(_speedups_c, chunks, method, eof, budget)
    py = run_parser(_speedups_py, chunks, method, eof, budget)
    if c != py:
        return f"compiled {c!r}\npure     {py!r}"
    if budget != DEFAULT_BUDGET:
        return None
    events, failed = run_h11(chunks, method, eof)
    ours = as_h11_events(c[0])
    if c[1] is not None and c[1][1] == _messages.CHUNK_SIZE_TOO_LARGE:
        return None  # h11 takes up to 20 hex digits; we stop at 64 bits, as Go does
    if (ours, c[1] is not None) != (events, failed):
        return f"parsers {ours!r} error={c[1]!r}\nh11     {events!r} failed={failed}"
    return None


# --- the child: fuzz and report ---------------------------------------------------------------


def _send(out: BinaryIO, kind: bytes, payload: bytes) -> None:
    out.write(kind + struct.pack("<I", len(payload)) + payload)
    out.flush()


def save(out_dir: Path, data: bytes, info: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(data + json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]
    (out_dir / f"{name}.bin").write_bytes(data)
    (out_dir / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    return out_dir / f"{name}.bin"


def fuzz(
    seconds: float,
    seed: int,
    out_dir: Path,
    announce: Callable[[bytes], None] = lambda data: None,
    max_differences: int = 20,
) -> tuple[int, int, int]:
    """Fuzz for ``seconds`` or until ``max_differences``, saving each difference:
    (inputs, splits, differences)."""
    rng = random.Random(seed)
    inputs = splits = differences = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and differences < max_differences:
        data = generate(rng)
        method = rng.choice(METHODS)
        eof = rng.random() < 0.4
        budget = DEFAULT_BUDGET if rng.random() < 0.8 else rng.randint(0, len(data) + 8)
        case = {"method": method, "eof": eof, "budget": budget}
        announce(json.dumps(case).encode() + b"\n" + data)
        inputs += 1
        for cuts in ([], split(rng, data), split(rng, data), split(rng, data)):
            splits += 1
            diff = compare(data, method, eof, budget, cuts)
            if diff is not None:
                differences += 1
                path = save(out_dir, data, {**case, "cuts": cuts, "difference": diff})
                sys.stderr.write(f"difference, saved {path}:\n{diff}\n")
                break
    return inputs, splits, differences


def child(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    counts = fuzz(args.seconds, args.seed, Path(args.out), lambda data: _send(out, b"I", data))
    _send(out, b"E", json.dumps(counts).encode())
    return 0


# --- the parent: watch the child --------------------------------------------------------------


def supervise(command: list[str], out_dir: Path) -> tuple[int, tuple[int, int, int] | None]:
    """Run the fuzzing child; save the input it was on if it dies. (exit status, counts)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    last = b""
    counts = None
    with proc.stdout:
        while (header := proc.stdout.read(5)) and len(header) == 5:
            kind, size = header[:1], struct.unpack("<I", header[1:])[0]
            payload = proc.stdout.read(size)
            if kind == b"I":
                last = payload
            elif kind == b"E":
                counts = tuple(json.loads(payload))
    status = proc.wait()
    if counts is None:  # the child died: keep what it was parsing
        case, _, data = last.partition(b"\n")
        info = {**(json.loads(case) if case else {}), "crash": f"child exit status {status}"}
        path = save(out_dir, data, info)
        sys.stderr.write(f"the fuzzing process died (status {status}); input saved as {path}\n")
        return 1, None
    return (1 if status or counts[2] else 0), counts


def replay(path: Path) -> int:
    info = json.loads(path.with_suffix(".json").read_text())
    data = path.read_bytes()
    cuts_list = [info["cuts"]] if "cuts" in info else [[], list(range(1, len(data)))]
    for cuts in cuts_list:
        diff = compare(data, info["method"], info["eof"], info["budget"], cuts)
        print(diff or f"no difference (cuts {cuts})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default="fuzz-failures", help="where failing inputs are saved")
    parser.add_argument("--replay", type=Path, help="run one saved input again")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if _speedups_c is None:
        sys.stderr.write("fuzz_parsers: roundtrip._speedups_c is not built (python3 setup.py build_ext --inplace)\n")
        return 2
    if args.replay:
        return replay(args.replay)
    if args.child:
        return child(args)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"seed {seed}", flush=True)
    command = [sys.executable, os.path.abspath(__file__), "--child", "--seconds", str(args.seconds)]
    command += ["--seed", str(seed), "--out", args.out]
    status, counts = supervise(command, Path(args.out))
    if counts is not None:
        print(f"{counts[0]} inputs, {counts[1]} splits, {counts[2]} differences")
    return status


if __name__ == "__main__":
    sys.exit(main())
