"""The ``roundtrip`` command against scripted servers, and ``roundtrip bench`` in its
smallest mode."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import roundtrip
from roundtrip import _speedups_py
from roundtrip._trace import GotConnInfo
from roundtrip._cli import _Waterfall, main

from proxies import tls_handler
from servers import body_cut_short, keep_alive_handler, respond, silent

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("DNS", "connect", "TLS", "request written", "first byte", "body done")


def run_cli(capsysbinary, *argv: str) -> tuple[int, bytes, str]:
    code = main(list(argv))
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err.decode()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_body_goes_to_stdout_exactly(capsysbinary, server):
    body = b"\x00binary\r\n\xff\xfe no newline at the end"
    srv = server(keep_alive_handler(body))
    code, out, err = run_cli(capsysbinary, srv.url("/file?x=1"))
    assert (code, out, err) == (0, body, "")
    assert srv.received[0].request_line == "GET /file?x=1 HTTP/1.1"


def test_include_writes_status_line_and_headers_before_the_body(capsysbinary, server):
    srv = server(keep_alive_handler(b"hi", [("Content-Type", "text/plain"), ("X-Thing", "a b")]))
    code, out, _ = run_cli(capsysbinary, "-i", srv.url("/"))
    assert code == 0
    assert out == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Thing: a b\r\nContent-Length: 2\r\n\r\nhi"


def test_error_status_is_a_response_not_a_failure(capsysbinary, server):
    srv = server(lambda conn: [conn.send(respond(404, b"missing", reason="Not Found")) for _ in conn.requests()])
    code, out, err = run_cli(capsysbinary, "-i", srv.url("/nope"))
    assert code == 0 and err == ""
    assert out.startswith(b"HTTP/1.1 404 Not Found\r\n") and out.endswith(b"\r\n\r\nmissing")


def test_data_implies_post_with_the_bytes_given(capsysbinary, server):
    srv = server(keep_alive_handler(b"ok"))
    code, out, _ = run_cli(capsysbinary, "-d", "name=value&x=é", srv.url("/form"))
    assert (code, out) == (0, b"ok")
    received = srv.received[0]
    assert received.method == "POST"
    assert received.body == "name=value&x=é".encode()
    assert received.header("content-length") == str(len(received.body))


def test_method_flag_wins_over_the_data_default(capsysbinary, server):
    srv = server(keep_alive_handler(b"ok"))
    assert run_cli(capsysbinary, "-X", "PUT", "-d", "x", srv.url("/a"))[0] == 0
    assert run_cli(capsysbinary, "-X", "DELETE", srv.url("/b"))[0] == 0
    assert [(r.method, r.target, r.body) for r in srv.received] == [("PUT", "/a", b"x"), ("DELETE", "/b", b"")]


def test_header_flags_are_sent_in_order(capsysbinary, server):
    srv = server(keep_alive_handler(b"ok"))
    code, _, _ = run_cli(capsysbinary, "-H", "X-One: 1", "-H", "x-two:  two words  ", "-H", "Host: example.test", srv.url("/"))
    assert code == 0
    received = srv.received[0]
    assert received.header("host") == "example.test"
    names = received.header_names()
    assert names.index("X-One") < names.index("x-two")
    assert received.header("x-two") == "two words"


def test_data_file_sends_the_file(capsysbinary, server, tmp_path):
    payload = bytes(range(256)) * 100
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    srv = server(keep_alive_handler(b"ok"))
    code, out, _ = run_cli(capsysbinary, "--data-file", str(path), srv.url("/upload"))
    assert (code, out) == (0, b"ok")
    received = srv.received[0]
    assert (received.method, received.body) == ("POST", payload)
    assert received.header("content-length") == str(len(payload))


def test_trace_prints_a_waterfall_naming_every_phase(capsysbinary, server):
    srv = server(keep_alive_handler(b"traced"))
    code, out, err = run_cli(capsysbinary, "--trace", srv.url("/t"))
    assert (code, out) == (0, b"traced")
    for phase in PHASES:
        assert phase in err, (phase, err)
    assert "6 bytes" in err
    assert "total" in err


# -- the --trace waterfall: what happened, what failed, what never began --------------------------


def waterfall_rows(err: str) -> dict[str, str]:
    """The waterfall's rows by label (the first column), each with the rest of its line."""
    lines = err.splitlines()
    assert lines[0].startswith("* trace: ") and lines[1].split() == ["phase", "start", "duration"], err
    rows = {}
    for line in lines[2:]:
        if line.startswith("roundtrip: error: "):
            break
        label = line[2:18].strip()
        rows.setdefault(label, line[18:])
    return rows


def assert_not_reached(rows: dict[str, str], *phases: str) -> None:
    for phase in phases:
        assert rows[phase].split() == ["-", "-", "(not", "reached)"], (phase, rows[phase])


def test_trace_of_a_refused_connect_marks_connect_failed_and_nothing_after_it(capsysbinary):
    code, _, err = run_cli(capsysbinary, "--trace", f"http://127.0.0.1:{refused_port()}/")
    assert code == 1
    rows = waterfall_rows(err)
    assert "FAILED: ConnectError: " in rows["connect"] and "refused" in rows["connect"]
    assert "(IP address, no lookup)" in rows["DNS"]
    assert_not_reached(rows, "TLS", "request written", "first byte", "body done")
    assert rows["total"].strip().endswith("failed")
    assert err.splitlines()[-1].startswith("roundtrip: error: ConnectError: ")


def test_trace_of_a_failed_lookup_marks_dns_failed_and_nothing_after_it(capsysbinary, monkeypatch):
    # RFC 6761 §6.4: names under .invalid never resolve. The answer is given here, as the
    # system resolver gives it, so the test never waits on a network.
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    code, _, err = run_cli(capsysbinary, "--trace", "http://no-such-host.invalid/")
    assert code == 1
    rows = waterfall_rows(err)
    assert "no-such-host.invalid" in rows["DNS"] and "FAILED: ConnectError: " in rows["DNS"]
    assert_not_reached(rows, "connect", "TLS", "request written", "first byte", "body done")
    assert "total" in rows


def test_trace_of_a_failed_tls_handshake_marks_tls_failed_and_nothing_after_it(capsysbinary, server, certs):
    srv = server(tls_handler(certs.server_context(), keep_alive_handler(b"never")))  # a CA nobody trusts
    code, _, err = run_cli(capsysbinary, "--trace", srv.url("/", scheme="https"))
    assert code == 1
    rows = waterfall_rows(err)
    assert "#" in rows["connect"] and "FAILED" not in rows["connect"]
    assert "FAILED: TLSError: " in rows["TLS"] and "certificate verify failed" in rows["TLS"]
    assert_not_reached(rows, "request written", "first byte", "body done")
    lines = err.decode().splitlines() if isinstance(err, bytes) else err.splitlines()
    tls = next(i for i, line in enumerate(lines) if line[2:18].strip() == "TLS")
    if lines[tls - 1][2:18].strip() == "(waiting)":  # loading CA certificates took a while
        assert lines[tls - 1].rstrip().endswith("| TLS setup")


def test_trace_of_a_timeout_shows_the_phase_running_until_the_deadline(capsysbinary, server):
    srv = server(silent)
    code, _, err = run_cli(capsysbinary, "--trace", "--timeout", "0.5", srv.url("/slow"))
    assert code == 1
    rows = waterfall_rows(err)
    assert "FAILED" not in rows["connect"] and "FAILED" not in rows["request written"]
    waited = rows["first byte"]
    assert "#" in waited and "TIMED OUT: DeadlineExceeded: context deadline exceeded" in waited
    assert_not_reached(rows, "body done")
    assert rows["total"].strip().endswith("failed")


def test_trace_of_https_shows_the_tls_version_and_the_status_line(capsysbinary, server, certs, tmp_path, monkeypatch):
    ca_file = tmp_path / "ca.pem"
    certs.ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # read when the default TLS settings are made
    srv = server(tls_handler(certs.server_context(), keep_alive_handler(b"secure")))
    code, out, err = run_cli(capsysbinary, "--trace", srv.url("/", scheme="https"))
    assert (code, out) == (0, b"secure"), err
    rows = waterfall_rows(err)
    assert rows["TLS"].rstrip().endswith("| TLSv1.3"), rows["TLS"]
    assert rows["first byte"].rstrip().endswith("| HTTP/1.1 200 OK")
    assert rows["body done"].rstrip().endswith("| 6 bytes")
    assert all("#" in rows[phase] for phase in ("connect", "TLS", "request written", "first byte", "body done"))
    assert "(IP address, no lookup)" in rows["DNS"] and not rows["total"].strip().endswith("failed")


def test_trace_of_http_shows_the_status_line_and_no_tls(capsysbinary, server):
    srv = server(lambda conn: [conn.send(respond(404, b"missing", reason="Not Found")) for _ in conn.requests()])
    code, _, err = run_cli(capsysbinary, "--trace", srv.url("/"))
    assert code == 0
    rows = waterfall_rows(err)
    assert rows["first byte"].rstrip().endswith("| HTTP/1.1 404 Not Found")
    assert "(not https)" in rows["TLS"] and "TLS setup" not in rows
    assert not rows["total"].strip().endswith("failed")


def test_trace_labels_the_time_between_phases_as_waiting():
    ticks = iter([0.0, 0.010, 0.011, 0.050, 0.052, 0.060, 0.070])  # a clock the test sets
    waterfall = _Waterfall(clock=lambda: next(ticks))
    waterfall.start()  # 0.000
    trace = waterfall.trace()
    trace.connect_start(("127.0.0.1", 80))  # 0.010 (10 ms after the start)
    trace.connect_done(("127.0.0.1", 80), None)  # 0.011
    trace.got_conn(GotConnInfo(False, False, 0.0))  # 0.050 (39 ms after the connect)
    trace.wrote_request(None)  # 0.052, when the first byte phase starts
    trace.got_first_response_byte()  # 0.060 (7 ms for the answer)
    waterfall.fail(roundtrip.IncompleteBody("cut short"))  # 0.070
    stream = io.StringIO()
    waterfall.print(stream, "GET", "http://127.0.0.1/")
    lines = stream.getvalue().splitlines()
    labels = [line[2:18].strip() for line in lines[2:]]
    assert labels == ["DNS", "(waiting)", "connect", "TLS", "(waiting)", "request written", "first byte", "body done", "total"]
    assert "FAILED: IncompleteBody: cut short" in lines[-2]
    waiting = lines[6]
    assert "39.000ms" in waiting and set(waiting.split("|")[1]) == {" ", "."}  # drawn, in its own mark


def test_trace_of_a_body_cut_short_marks_the_body_failed(capsysbinary, server):
    srv = server(body_cut_short)
    code, out, err = run_cli(capsysbinary, "--trace", srv.url("/"))
    assert (code, out) == (1, b"abc")
    rows = waterfall_rows(err)
    assert rows["first byte"].rstrip().endswith("| HTTP/1.1 200 OK")
    assert "FAILED: IncompleteBody: " in rows["body done"]


def test_trace_of_a_retried_request_draws_the_earlier_attempt_as_one_row():
    ticks = iter([0.0, 0.001, 0.002, 0.003, 0.020, 0.021, 0.022, 0.023, 0.030, 0.031])
    waterfall = _Waterfall(clock=lambda: next(ticks))
    waterfall.start()
    trace = waterfall.trace()
    trace.got_conn(GotConnInfo(True, True, 1.0))  # a kept-alive connection...
    trace.wrote_request(None)
    trace.retried("server_closed_idle", 1)  # ...that the server had closed
    trace.connect_start(("127.0.0.1", 80))
    trace.connect_done(("127.0.0.1", 80), None)
    trace.got_conn(GotConnInfo(False, False, 0.0))
    trace.wrote_request(None)
    trace.got_first_response_byte()
    waterfall.body_done(2)
    stream = io.StringIO()
    waterfall.print(stream, "GET", "http://127.0.0.1/")
    rows = waterfall_rows(stream.getvalue())
    assert "retried: server_closed_idle" in rows["attempt 1"] and "#" in rows["attempt 1"]
    assert "#" in rows["connect"] and "(not https)" in rows["TLS"]
    assert not rows["total"].strip().endswith("failed")


def test_connect_failure_exits_1_with_one_line(capsysbinary):
    code, out, err = run_cli(capsysbinary, f"http://127.0.0.1:{refused_port()}/")
    assert code == 1 and out == b""
    assert err.count("\n") == 1 and err.startswith("roundtrip: error: ConnectError: ")


def test_invalid_request_exits_1_with_one_line(capsysbinary):
    code, _, err = run_cli(capsysbinary, "ftp://example.test/")
    assert code == 1
    assert err == 'roundtrip: error: InvalidRequest: unsupported protocol scheme "ftp"\n'


def test_bad_header_argument_is_a_usage_error(capsysbinary):
    code, _, err = run_cli(capsysbinary, "-H", "no colon", "http://127.0.0.1:1/")
    assert code == 2 and err.count("\n") == 1 and "Name: value" in err


def test_data_and_data_file_together_are_refused(capsysbinary, tmp_path):
    code, _, err = run_cli(capsysbinary, "-d", "x", "--data-file", str(tmp_path / "f"), "http://127.0.0.1:1/")
    assert code == 2 and err.count("\n") == 1


def test_missing_data_file_exits_1(capsysbinary, tmp_path):
    code, _, err = run_cli(capsysbinary, "--data-file", str(tmp_path / "absent"), "http://127.0.0.1:1/")
    assert code == 1 and err.count("\n") == 1 and "absent" in err


def test_timeout_bounds_the_whole_exchange(capsysbinary, server):
    srv = server(silent)
    code, out, err = run_cli(capsysbinary, "--timeout", "0.2", srv.url("/slow"))
    assert code == 1 and out == b""
    assert err.startswith("roundtrip: error: DeadlineExceeded: ") and err.count("\n") == 1


def test_python_m_roundtrip_is_the_same_program(server, impl):
    srv = server(keep_alive_handler(b"via -m"))
    env = _env()
    if impl is _speedups_py:
        env["ROUNDTRIP_NO_EXTENSIONS"] = "1"
    result = subprocess.run([sys.executable, "-m", "roundtrip", "-i", srv.url("/m")], capture_output=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"HTTP/1.1 200 OK\r\n") and result.stdout.endswith(b"\r\n\r\nvia -m")


# -- roundtrip bench ------------------------------------------------------------------------------


def _bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    report_path = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "roundtrip", "bench", "--smoke", "--no-progress", "--json", str(report_path), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result, json.loads(report_path.read_text())


@pytest.mark.once(impl="py")  # the bench runs both implementations itself
def test_bench_smoke_checks_every_response_of_every_client(tmp_path):
    result, report = _bench(tmp_path, "--no-async")  # the async scenarios: tests/test_bench.py
    assert report["errors"] == []
    assert {"raw", "roundtrip-py"} <= set(report["clients"])
    for scenario, per_client in report["results"].items():
        assert set(per_client) == set(report["clients"]), scenario
        for client, cell in per_client.items():
            assert cell["runs"] and cell["checked"] >= cell["runs"][0]["requests"] > 0, (scenario, client)
            assert cell["cpu_us"] > 0 and cell["rate"] > 0
    assert "Every response checked" in result.stdout and "0 failure(s)" in result.stdout
    for client in report["clients"]:
        assert f"| {client} " in result.stdout
    assert "Targets" in result.stdout
    # Which regime ran: the server on one CPU and the clients on the others, where possible.
    placement = report["meta"]["placement"]
    if report["meta"]["server"] == "nginx" and len(os.sched_getaffinity(0)) >= 2:
        cpus = sorted(os.sched_getaffinity(0))
        assert placement == f"server on CPU {cpus[0]}, clients on CPU {','.join(map(str, cpus[1:]))}"
    else:
        assert placement.startswith("unpinned: ")
    assert placement in result.stdout


@pytest.mark.once(impl="py")
def test_bench_falls_back_to_the_embedded_server_and_says_so(tmp_path):
    result, report = _bench(tmp_path, "--server", "python", "--clients", "roundtrip-py", "--scenarios", "small", "post", "threads")
    assert report["meta"]["server"] == "python"
    assert "EMBEDDED PYTHON SERVER" in result.stdout and "WARNING" in result.stderr
    assert set(report["clients"]) == {"raw", "roundtrip-py"}
    assert report["meta"]["placement"] == "unpinned: the embedded server runs in the benchmark's own process"
    assert set(report["results"]) == {"small", "post", "threads"}
    assert report["results"]["post"]["roundtrip-py"]["checked"] > 0


@pytest.mark.once(impl="py")
def test_bench_rejects_unknown_names():
    assert main(["bench", "--clients", "nope"]) == 2


@pytest.mark.once(impl="py")
def test_bench_workers_import_the_bench_own_roundtrip_not_the_working_directory(tmp_path):
    # "pip install . && roundtrip bench" is run from the source checkout, whose unbuilt
    # roundtrip/ would shadow the installed wheel in any worker that starts from there.
    decoy = tmp_path / "roundtrip"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise ImportError('the working directory was imported')\n")
    report_path = tmp_path / "bench.json"
    result = subprocess.run(
        # "python -P -m roundtrip" for every supported Python (-P is 3.11+): no working directory on sys.path.
        [sys.executable, "-c", "import runpy, sys; del sys.path[0]; runpy.run_module('roundtrip', run_name='__main__')", "bench", "--smoke", "--no-progress", "--json", str(report_path),
         "--clients", "roundtrip-c", "roundtrip-py", "--scenarios", "small"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert report["errors"] == [], report["errors"]
    assert report["results"]["small"]["roundtrip-c"]["checked"] > 0
