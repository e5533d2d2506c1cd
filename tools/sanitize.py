"""Run the compiled parser under AddressSanitizer and UndefinedBehaviorSanitizer.

Checking the compiled twin for memory errors
--------------------------------------------
From the root of a checkout (gcc and the Python headers installed)::

    python3 tools/sanitize.py                 # parser tests, then a 60-second fuzz run
    python3 tools/sanitize.py --seconds 600   # a longer fuzz run
    python3 tools/sanitize.py -- -k chunk     # extra arguments after -- go to pytest

It builds ``roundtrip/_speedups_c`` in place with ``ROUNDTRIP_DEBUG_BUILD=1`` (``-O0 -g``,
Cython bounds checks, ``-fsanitize=address,undefined``, undefined behaviour fatal), then runs
``tests/test_parser_differential.py``, ``tests/test_speedups_parity.py`` and
``tools/fuzz_parsers.py`` with the ASan runtime preloaded (``LD_PRELOAD``, found with
``gcc -print-file-name=libasan.so``): a sanitized module cannot be imported by an
unsanitized ``python3`` otherwise ("ASan runtime does not come first"). Leak detection is
off, since CPython keeps some allocations until exit by design. Any report stops the run
with a stack trace and a non-zero exit status; a fuzz input that crashed is saved under
``fuzz-failures/``. At the end, whatever happened, the normal module is built again in
place, so the checkout is left as it was.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_parser_differential.py", "tests/test_speedups_parity.py"]


def build(debug: bool) -> None:
    env = {**os.environ, "ROUNDTRIP_DEBUG_BUILD": "1" if debug else "0", "ROUNDTRIP_REQUIRE_EXTENSIONS": "1"}
    env.pop("LD_PRELOAD", None)
    # --force: the sources did not change, the flags did.
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "--force", "-q"], cwd=ROOT, env=env, check=True)


def asan_runtime() -> str:
    compiler = os.environ.get("CC", "gcc")
    path = subprocess.run([compiler, "-print-file-name=libasan.so"], capture_output=True, text=True, check=True)
    runtime = path.stdout.strip()
    if not os.path.isabs(runtime) or not os.path.exists(runtime):
        sys.exit(f"sanitize: {compiler} has no libasan.so (install the compiler's ASan runtime)")
    return runtime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the fuzz run")
    parser.add_argument("--seed", type=int, help="seed of the fuzz run")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args()
    env = {
        **os.environ,
        "LD_PRELOAD": asan_runtime(),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "ROUNDTRIP_REQUIRE_EXTENSIONS": "1",
    }
    build(debug=True)
    try:
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", *TESTS, *args.pytest_args], cwd=ROOT, env=env)
        if tests.returncode:
            return tests.returncode
        fuzz = [sys.executable, "tools/fuzz_parsers.py", "--seconds", str(args.seconds)]
        fuzz += ["--seed", str(args.seed)] if args.seed is not None else []
        return subprocess.run(fuzz, cwd=ROOT, env=env).returncode
    finally:
        build(debug=False)


if __name__ == "__main__":
    sys.exit(main())
