#!/usr/bin/env python3
"""Run httpx's and requests' own test suites with and without roundtrip, and compare them.

    python3 tools/compat.py                      # download the released sdists from the package index
    python3 tools/compat.py --sdists DIR         # use sdists already downloaded into DIR
    python3 tools/compat.py --sdists DIR --offline   # ... and install everything from DIR only

It tests these released versions (their tests ship in the sdists):

    httpx 0.28.1, requests 2.34.2

Steps: make a virtual environment under a temporary directory (or reuse ``--venv``), install
both sdists with the test requirements their repositories pin, then run each suite twice from
its unpacked sdist: once unmodified, once with roundtrip plugged in by ``tools/compat_plugin.py``
(httpx's default transports, sync and async, and requests' default Session mounts replaced; no
file of theirs is edited). roundtrip is the one this Python imports, made visible to the environment through a
symlink. Outcomes are compared test by test. A test whose outcome differs must be listed in
``tools/compat_expected.txt``, which may hold only tests that read httpcore's or urllib3's
internals, each naming what it reads. Any other difference fails the job (exit status 1).

httpx's async tests (``httpx.AsyncClient``, ``httpx.AsyncHTTPTransport``) run on asyncio over
``HTTPXAsyncTransport``, and their counts are reported apart from the sync tests'. Tests that
need the internet are deselected in both runs (``EXCLUDED`` below says why), as these machines
reach only loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Optional

HTTPX_VERSION = "0.28.1"
REQUESTS_VERSION = "2.34.2"

TOOLS = Path(__file__).resolve().parent
EXPECTED_FILE = TOOLS / "compat_expected.txt"

# What the test suites need beyond the package itself: the pins of httpx's requirements.txt
# and requests' requirements-dev.txt for that release (tools such as linters and docs left out).
SUITES = {
    "httpx": {
        "version": HTTPX_VERSION,
        "install": f"httpx-{HTTPX_VERSION}.tar.gz[brotli,cli,http2,socks,zstd]",
        "requirements": [
            "chardet==5.2.0",
            "click==8.1.8",  # later 8.x warn in httpx's test_download (warnings are errors there)
            "cryptography==44.0.0",
            "pytest==8.3.4",
            "trio==0.27.0",
            "trustme==1.2.0",
            "uvicorn==0.32.1",
        ],
        "tests": "tests",
    },
    "requests": {
        "version": REQUESTS_VERSION,
        "install": f"requests-{REQUESTS_VERSION}.tar.gz[socks]",
        "requirements": ["pytest-httpbin==2.1.0", "httpbin~=0.10.0"],  # and trustme, pinned above
        "tests": "tests",
    },
}

# Deselected in both runs, with the reason.
EXCLUDED = {
    "httpx": {
        # Both dial the real example.com through a proxy on the internet.
        "tests/client/test_proxies.py::test_sync_proxy_close": "needs the internet (example.com through a proxy)",
        "tests/client/test_proxies.py::test_async_proxy_close[asyncio]": "needs the internet (example.com through a proxy)",
        # Expects a connect to the black-hole address 10.255.255.1 to hang until the 1 µs
        # connect timeout; without a route it fails at once instead.
        "tests/test_timeouts.py::test_connect_timeout[asyncio]": "needs a route to 10.255.255.1",
    },
    "requests": {
        # These expect a connect to the black-hole address 10.255.255.1 to hang until the
        # connect timeout; without a route it fails at once instead, in both runs.
        "tests/test_requests.py::TestTimeout::test_connect_timeout[timeout0]": "needs a route to 10.255.255.1",
        "tests/test_requests.py::TestTimeout::test_connect_timeout[timeout1]": "needs a route to 10.255.255.1",
        "tests/test_requests.py::TestTimeout::test_total_timeout_connect[timeout0]": "needs a route to 10.255.255.1",
        "tests/test_requests.py::TestTimeout::test_total_timeout_connect[timeout1]": "needs a route to 10.255.255.1",
    },
}

# What an expected difference may read: httpcore's or urllib3's insides behind the three classes
# roundtrip replaces, or whether httpcore was imported at all.
INTERNALS = ("HTTPTransport._pool", "AsyncHTTPTransport._pool", "HTTPAdapter.poolmanager", "HTTPAdapter.proxy_manager",
             "HTTPAdapter.init_poolmanager", "HTTPAdapter.get_connection", 'sys.modules["httpcore"]')

RUN_TIMEOUT = 900  # seconds for one run of one suite


def log(message: str) -> None:
    print(f"[compat {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(command: list[str], **kwargs: object) -> None:
    log(" ".join(command))
    subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]


def sdist_names() -> list[str]:
    return [f"httpx-{HTTPX_VERSION}.tar.gz", f"requests-{REQUESTS_VERSION}.tar.gz"]


def get_sdists(folder: Optional[Path], work: Path) -> Path:
    if folder is None:
        folder = work / "sdists"
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps", "-d", str(folder),
             f"httpx=={HTTPX_VERSION}", f"requests=={REQUESTS_VERSION}"])
    missing = [name for name in sdist_names() if not (folder / name).exists()]
    if missing:
        sys.exit(f"compat: {folder} lacks {', '.join(missing)}")
    return folder


def make_venv(venv: Path, sdists: Path, offline: bool) -> Path:
    python = venv / "bin" / "python"
    marker = venv / "roundtrip-compat-ready"
    wanted = json.dumps({name: SUITES[name]["requirements"] for name in SUITES}, sort_keys=True) + sdist_names()[0] + sdist_names()[1]
    if marker.exists() and marker.read_text() == wanted:
        log(f"reusing {venv}")
        return python
    run([sys.executable, "-m", "venv", "--clear", str(venv)])
    index = ["--no-index", "--find-links", str(sdists)] if offline else []
    packages = [str(sdists / SUITES[name]["install"]) for name in SUITES]  # type: ignore[operator]
    for name in SUITES:
        packages += SUITES[name]["requirements"]  # type: ignore[arg-type]
    run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *index, *packages])
    marker.write_text(wanted)
    return python


def roundtrip_path(work: Path) -> Path:
    """A directory holding only a link to the roundtrip package of this checkout (or, if the
    script runs outside one, the package this Python imports)."""
    sys.path.insert(0, str(TOOLS.parent))
    import roundtrip

    package = Path(roundtrip.__file__).resolve().parent
    folder = work / "roundtrip-path"
    folder.mkdir(exist_ok=True)
    link = folder / "roundtrip"
    if not link.exists():
        link.symlink_to(package, target_is_directory=True)
    log(f"roundtrip from {package} (implementation {roundtrip.IMPLEMENTATION})")
    return folder


def unpack(sdists: Path, work: Path, name: str) -> Path:
    version = SUITES[name]["version"]
    target = work / "src"
    with tarfile.open(sdists / f"{name}-{version}.tar.gz") as archive:
        archive.extractall(target, filter="data")
    return target / f"{name}-{version}"


def start_run(python: Path, source: Path, name: str, plugged: bool, work: Path, rt_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    label = f"{name}-{'plugged' if plugged else 'plain'}"
    results = work / f"{label}.json"
    log_path = work / f"{label}.log"
    exclude = work / f"{name}-excluded.txt"
    exclude.write_text("".join(f"{nodeid}  # {why}\n" for nodeid, why in EXCLUDED[name].items()))
    env = dict(os.environ)
    for variable in ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(variable, None)
    env.update(
        PYTHONPATH=os.pathsep.join([str(TOOLS), str(rt_path)]),
        ROUNDTRIP_COMPAT_PLUG="1" if plugged else "0",
        ROUNDTRIP_COMPAT_RESULTS=str(results),
        ROUNDTRIP_COMPAT_EXCLUDE=str(exclude),
        NO_PROXY="*",
    )
    for proxy_variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(proxy_variable, None)
    command = [str(python), "-m", "pytest", "-q", "-p", "compat_plugin", "-p", "no:cacheprovider", "-o", "addopts=",
               "-rN", str(SUITES[name]["tests"])]
    log(f"start {label}: {' '.join(command)} (log {log_path})")
    with open(log_path, "w") as out:
        process = subprocess.Popen(command, cwd=source, env=env, stdout=out, stderr=subprocess.STDOUT)
    return process, results, log_path


def finish(process: subprocess.Popen, results: Path, log_path: Path) -> tuple[dict[str, str], set[str]]:
    """The run's ``({nodeid: outcome}, {node ids of coroutine tests})``."""
    try:
        process.wait(RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        sys.exit(f"compat: {log_path.stem} took more than {RUN_TIMEOUT} s; see {log_path}")
    if not results.exists():
        tail = log_path.read_text(errors="replace")[-3000:]
        sys.exit(f"compat: {log_path.stem} wrote no results (exit status {process.returncode}):\n{tail}")
    summary = log_path.read_text(errors="replace").strip().splitlines()[-1:]
    log(f"done {log_path.stem}: {summary[0] if summary else '?'}")
    data = json.loads(results.read_text())
    return data["outcomes"], set(data["async"])


def load_expected(path: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """``{suite: {nodeid: (attribute read, reason)}}`` from lines ``suite | nodeid | attribute | reason``."""
    expected: dict[str, dict[str, tuple[str, str]]] = {name: {} for name in SUITES}
    problems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [field.strip() for field in line.split(" | ")]
        if len(fields) != 4 or fields[0] not in SUITES or not all(fields):
            problems.append(f"{path.name}:{number}: want 'suite | node id | attribute read | reason'")
            continue
        suite, nodeid, attribute, reason = fields
        if not attribute.startswith(INTERNALS):
            problems.append(f"{path.name}:{number}: {attribute!r} is not an httpcore or urllib3 internal ({', '.join(INTERNALS)})")
            continue
        expected[suite][nodeid] = (attribute, reason)
    if problems:
        sys.exit("compat: bad expected-differences list:\n" + "\n".join(problems))
    return expected


def counts(outcomes: dict[str, str]) -> str:
    tally: dict[str, int] = {}
    for outcome in outcomes.values():
        tally[outcome] = tally.get(outcome, 0) + 1
    return ", ".join(f"{tally[key]} {key}" for key in sorted(tally)) or "nothing"


def compare(name: str, plain: dict[str, str], plugged: dict[str, str], coroutines: set[str],
            expected: dict[str, tuple[str, str]]) -> list[str]:
    unexpected = []
    seen_expected: dict[str, list[str]] = {}
    for nodeid in sorted(set(plain) | set(plugged)):
        before, after = plain.get(nodeid, "not run"), plugged.get(nodeid, "not run")
        if before == after:
            continue
        if nodeid in expected:
            seen_expected.setdefault(expected[nodeid][0], []).append(nodeid)
            continue
        unexpected.append(f"  {name}: {nodeid}: {before} unmodified, {after} with roundtrip")
    stale = [nodeid for nodeid in expected if plain.get(nodeid) == plugged.get(nodeid)]
    print(f"\n{name} {SUITES[name]['version']}")
    print(f"  unmodified:           {counts(plain)}")
    print(f"  roundtrip plugged in: {counts(plugged)}")
    if coroutines:
        for label, wanted in (("sync", False), ("async", True)):
            part = {nodeid for nodeid in set(plain) | set(plugged) if (nodeid in coroutines) == wanted}
            print(f"    {label + ' tests:':13s} unmodified {counts({k: plain[k] for k in part if k in plain})}; "
                  f"plugged in {counts({k: plugged[k] for k in part if k in plugged})}")
    total = sum(len(ids) for ids in seen_expected.values())
    print(f"  expected differences: {total}")
    for attribute in sorted(seen_expected):
        print(f"    {len(seen_expected[attribute]):3d}  reads {attribute}")
    for nodeid in stale:
        print(f"  note: listed as an expected difference but the same in both runs: {nodeid}")
    print(f"  unexpected differences: {len(unexpected)}")
    return unexpected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdists", type=Path, help=f"folder holding {' and '.join(sdist_names())} (no download)")
    parser.add_argument("--offline", action="store_true", help="install test requirements from --sdists only (wheels there)")
    parser.add_argument("--venv", type=Path, help="virtual environment to create or reuse (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, results)")
    parser.add_argument("--suite", choices=sorted(SUITES), action="append", help="run only this suite (repeatable)")
    args = parser.parse_args()
    if args.offline and args.sdists is None:
        parser.error("--offline needs --sdists")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="roundtrip-compat-"))
    log(f"httpx {HTTPX_VERSION}, requests {REQUESTS_VERSION}; working in {work}")
    try:
        expected = load_expected(EXPECTED_FILE)
        sdists = get_sdists(args.sdists.resolve() if args.sdists else None, work)
        python = make_venv(args.venv.resolve() if args.venv else work / "venv", sdists, args.offline)
        rt_path = roundtrip_path(work)
        names = args.suite or list(SUITES)
        sources = {name: unpack(sdists, work, name) for name in names}
        outcomes: dict[str, dict[str, dict[str, str]]] = {name: {} for name in names}
        coroutines: dict[str, set[str]] = {name: set() for name in names}
        # requests' suite mostly waits (its servers pick free ports), so both its runs go
        # alongside httpx's; httpx's suite serves on the fixed port 8000, so its runs take turns.
        background = []
        if "requests" in names:
            for plugged in (False, True):
                background.append(("requests", plugged, *start_run(python, sources["requests"], "requests", plugged, work, rt_path)))
        if "httpx" in names:
            for plugged in (False, True):
                process, results, log_path = start_run(python, sources["httpx"], "httpx", plugged, work, rt_path)
                outcomes["httpx"]["plugged" if plugged else "plain"], found = finish(process, results, log_path)
                coroutines["httpx"] |= found
        for name, plugged, process, results, log_path in background:
            outcomes[name]["plugged" if plugged else "plain"], found = finish(process, results, log_path)
            coroutines[name] |= found
        unexpected = []
        for name in names:
            unexpected += compare(name, outcomes[name]["plain"], outcomes[name]["plugged"], coroutines[name], expected[name])
        print(f"\ntook {time.monotonic() - started:.0f} s")
        if unexpected:
            print("\nFAILED: differences not on the expected list (tools/compat_expected.txt):")
            print("\n".join(unexpected))
            print(f"logs and results: {work}")
            args.keep = True
            return 1
        print("OK: every difference is on the expected list")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
