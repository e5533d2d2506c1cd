"""What the installed package tells about itself (version, implementation), and the socket
calls of the compiled module on the code path Windows uses (``csrc/rt_io.h``)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import roundtrip
from roundtrip import _cli, _version
from roundtrip._bench import runner
from roundtrip._speedups import env_flag

ROOT = Path(__file__).resolve().parents[1]

try:
    from roundtrip import _speedups_c
except ImportError:  # not built
    _speedups_c = None  # type: ignore[assignment]


@pytest.mark.once
def test_the_version_is_written_in_one_place():
    assert roundtrip.__version__ == _version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?", roundtrip.__version__)
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.exists():  # a wheel under test: only the package is there
        pytest.skip("no source tree")
    if sys.version_info >= (3, 11):
        import tomllib

        project = tomllib.loads(pyproject.read_text())
        assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
        assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "roundtrip._version.__version__"}


def _source_file(name: str) -> Path:
    path = ROOT / name
    if not path.exists():  # a wheel under test: only the package is there
        pytest.skip("no source tree")
    return path


@pytest.mark.once
def test_the_changelog_has_a_section_for_this_version():
    changelog = _source_file("CHANGELOG.md").read_text()
    assert f"## [{roundtrip.__version__}]" in changelog
    assert "## [Unreleased]" in changelog


@pytest.mark.once
def test_every_claimed_python_is_built_and_tested():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is 3.11+")
    import tomllib

    config = tomllib.loads(_source_file("pyproject.toml").read_text())
    classifiers = config["project"]["classifiers"]
    claimed = sorted(
        (c.rsplit(":: ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)),
        key=lambda v: tuple(map(int, v.split("."))),
    )
    assert claimed[0] == "3.10" and config["project"]["requires-python"] == f">={claimed[0]}"
    built = config["tool"]["cibuildwheel"]["build"].split()
    assert all(f"cp3{v.split('.')[1]}-*" in built for v in claimed), built
    ci = _source_file(".github/workflows/ci.yml").read_text()
    matrix = re.search(r"python: \[(.*)\]", ci)
    assert matrix is not None and [v.strip(' "') for v in matrix.group(1).split(",")] == claimed


@pytest.mark.once
def test_version_option_names_the_implementation(capsys):
    assert _cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"roundtrip {roundtrip.__version__} ({roundtrip.IMPLEMENTATION})"


@pytest.mark.once
def test_bench_table_names_the_implementation_it_measured_against():
    meta = {
        "roundtrip_version": roundtrip.__version__,
        "roundtrip_implementation": "py",
        "mode": "quick",
        "runs": 1,
        "duration_s": 0.1,
        "server": "nginx",
        "server_description": "nginx/1.0",
        "python": "CPython 3.x",
        "cpus": 2,
        "load_average_before": [0.0, 0.0, 0.0],
        "load_average_after": [0.0, 0.0, 0.0],
    }
    report = {"meta": meta, "results": {}, "errors": [], "skipped": {}, "clients": {}, "targets": []}
    table = runner.format_table(report)
    assert f"roundtrip {roundtrip.__version__} (py) bench" in table


@pytest.mark.once
def test_the_compiled_module_uses_the_io_path_it_was_built_for():
    # ROUNDTRIP_PORTABLE_IO=1 at build time selects the Windows path's logic on POSIX; the same
    # variable at test time says which build is under test.
    if _speedups_c is None:
        pytest.skip("compiled extension not built")
    expected = "winsock" if sys.platform == "win32" else ("portable" if env_flag("ROUNDTRIP_PORTABLE_IO") else "posix")
    assert _speedups_c.IO_BACKEND == expected


def test_send_nowait_leaves_a_blocking_socket_blocking(impl):
    left, right = socket.socketpair()
    with left, right:
        assert left.gettimeout() is None
        assert impl.send_nowait(left, b"ping") == 4
        assert right.recv(4) == b"ping"
        assert left.gettimeout() is None and os.get_blocking(left.fileno())
        while impl.send_nowait(left, b"x" * 65536) > 0:  # fill the buffers: never blocks
            pass
        assert impl.send_nowait(left, b"more") == 0
        assert os.get_blocking(left.fileno())  # also after the send that found no room


def test_send_nowait_leaves_a_socket_with_a_timeout_as_it_was(impl):
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(5.0)  # Python keeps it non-blocking underneath
        assert impl.send_nowait(left, b"ping") == 4
        assert right.recv(4) == b"ping"
        assert left.gettimeout() == 5.0 and not os.get_blocking(left.fileno())


def test_send_nowait_reports_a_closed_peer_as_an_error(impl):
    left, right = socket.socketpair()
    with left:
        right.close()
        with pytest.raises(OSError):
            for _ in range(100):  # the first sends may still be buffered; EPIPE follows
                impl.send_nowait(left, b"x" * 65536)
        assert os.get_blocking(left.fileno())


def test_poll_readable_reports_data_and_hang_up(impl):
    left, right = socket.socketpair()
    with left:
        with right:
            assert impl.poll_readable(left.fileno()) is False
            right.sendall(b"x")
            assert impl.poll_readable(left.fileno()) is True
            assert left.recv(1) == b"x"
            assert impl.poll_readable(left.fileno()) is False
        assert impl.poll_readable(left.fileno()) is True  # hung up counts as readable


# The Python C API names rt_io.h uses, declared for a compile without Windows' Python headers.
_STUB_PYTHON_H = """
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L  /* as pyconfig.h defines it: clock_gettime under -std=c99 */
#endif
#include <stddef.h>
#include <limits.h>
typedef ptrdiff_t Py_ssize_t;
typedef struct _object PyObject;
extern PyObject* PyExc_OSError;
PyObject* PyErr_SetExcFromWindowsErr(PyObject* exc, int ierr);
PyObject* PyErr_SetFromErrno(PyObject* exc);
"""

_USE_EVERY_CALL = """
#include <Python.h>
#include "rt_io.h"
int use(long long fd, const char* buf, Py_ssize_t n) {
    int ready = rt_io_poll_readable(fd);
    Py_ssize_t sent = rt_io_send_nowait(fd, buf, n, 0) + rt_io_send_nowait(fd, buf, n, 1);
    char into[16];
    double now = rt_io_now_ms();
    ready += rt_io_wait(fd, 0, 10) + rt_io_wait(fd, 1, -1);
    sent += rt_io_send_some(fd, buf, n, 0, 0) + rt_io_send_some(fd, buf, n, 1, 1);
    sent += rt_io_recv_some(fd, into, sizeof into, 0) + rt_io_recv_some(fd, into, sizeof into, 1);
    if (ready == RT_IO_ERROR || sent == RT_IO_AGAIN || sent == RT_IO_INTR || now < 0 || RT_IO_TOGGLES)
        rt_io_restore_error(rt_io_last_error());
    if (ready == RT_IO_ERROR || sent == RT_IO_AGAIN || sent == RT_IO_INTR)
        rt_io_raise();
    return (int)sent + (int)sizeof(RT_IO_NAME);
}
"""


@pytest.mark.once
@pytest.mark.parametrize(
    "compiler, defines",
    [("x86_64-w64-mingw32-gcc", ["-D_WIN32_WINNT=0x0602"]), ("cc", []), ("cc", ["-DRT_IO_PORTABLE"])],
    ids=["winsock", "posix", "portable"],
)
def test_every_io_branch_compiles_cleanly(tmp_path, compiler, defines):
    # The Winsock branch cannot run here, but it can be compiled: with the MinGW-w64 cross
    # compiler where it is installed (apt install gcc-mingw-w64-x86-64).
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    if not (ROOT / "csrc" / "rt_io.h").exists():
        pytest.skip("no source tree")
    (tmp_path / "Python.h").write_text(_STUB_PYTHON_H)
    (tmp_path / "use.c").write_text(_USE_EVERY_CALL)
    argv = [compiler, *defines, "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{tmp_path}", f"-I{ROOT / 'csrc'}"]
    result = subprocess.run([*argv, "-c", str(tmp_path / "use.c"), "-o", str(tmp_path / "use.o")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
