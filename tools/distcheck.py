#!/usr/bin/env python3
"""Check the distribution as a user meets it, in fresh virtual environments under a temp dir.

    python3 tools/distcheck.py [--keep] [--tools-venv DIR]

1. ``python -m build``: an sdist, then a wheel built from that sdist (as CI does).
2. The sdist holds what a build needs; the wheel holds no tests, no Cython sources, no generated
   C, and a compiled module without debug information.
3. ``twine check --strict`` passes on both.
4. The wheel installs into a fresh venv with ``--no-index`` (h11 from a wheelhouse downloaded
   first) and imports the compiled implementation.
5. The sdist, with no compiler on PATH, refuses to install and says how to accept pure Python
   (``ROUNDTRIP_NO_EXTENSIONS=1``); with that set, it installs and imports pure Python.
6. The workflows validate against GitHub's workflow schema (check-jsonschema).

Needs the network for the package index (build, twine, check-jsonschema, setuptools, Cython,
h11). Exits 1 at the first failure, naming it.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ["build>=1.2", "twine>=6.1", "check-jsonschema>=0.33"]
COMPILERS = ["cc", "gcc", "c++", "g++", "clang", "clang++", "x86_64-linux-gnu-gcc", "aarch64-linux-gnu-gcc"]

SDIST_MUST_HAVE = [
    "pyproject.toml",
    "setup.py",
    "LICENSE",
    "README.md",
    "CHANGELOG.md",
    "roundtrip/__init__.py",
    "roundtrip/_version.py",
    "roundtrip/_speedups_c.pyx",
    "roundtrip/_parser_c.pxi",
    "roundtrip/_idle_c.pxi",
    "roundtrip/py.typed",
    "csrc/rt_bytes.h",
    "csrc/rt_io.h",
    "tests/conftest.py",
]


class CheckFailed(Exception):
    pass


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    print("$", " ".join(str(a) for a in argv), flush=True)
    result = subprocess.run([str(a) for a in argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise CheckFailed(f"exit status {result.returncode}: {' '.join(map(str, argv))}\n{result.stdout}\n{result.stderr}")
    return result


def make_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / ("Scripts" if os.name == "nt" else "bin") / "python"


def expect(condition: bool, what: str, found: str = "") -> None:
    """``what`` should hold; ``found`` says what was there instead, if it does not."""
    if not condition:
        raise CheckFailed(f"{what}: {found}" if found else what)
    print("ok:", what, flush=True)


def only_file(pattern: str) -> Path:
    found = glob.glob(pattern)
    if len(found) != 1:
        raise CheckFailed(f"expected one file matching {pattern}, found {found}")
    return Path(found[0])


def no_compiler_env(work: Path, python: Path) -> dict[str, str]:
    """An environment where a C compiler cannot be found: CC and friends point at `false`, and
    stubs that fail as a missing command would shadow the usual compiler names on PATH."""
    stubs = work / "no-compiler"
    stubs.mkdir(exist_ok=True)
    for name in COMPILERS:
        stub = stubs / name
        stub.write_text(f"#!/bin/sh\necho '{name}: command not found' >&2\nexit 127\n")
        stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTRIP_") and k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    env.update(CC="false", CXX="false", LDSHARED="false", PATH=f"{stubs}{os.pathsep}{python.parent}{os.pathsep}{env.get('PATH', '')}")
    return env


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        prefix = tar.getnames()[0].split("/")[0]
        names = {name[len(prefix) + 1 :] for name in tar.getnames()}
    missing = [name for name in SDIST_MUST_HAVE if name not in names]
    expect(not missing, "the sdist holds what a build needs", f"missing {missing}")
    unwanted = sorted(n for n in names if n.endswith((".c", ".so", ".pyd", ".pyc")))
    expect(not unwanted, "the sdist holds no generated or compiled files", f"found {unwanted}")


def check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        compiled = [n for n in names if n.startswith("roundtrip/_speedups_c") and n.endswith((".so", ".pyd"))]
        expect(len(compiled) == 1, "the wheel holds the compiled module", f"found {compiled}")
        binary = zf.read(compiled[0])
    unwanted = sorted(n for n in names if n.startswith("tests/") or n.endswith((".c", ".pyx", ".pxi", ".h")))
    expect(not unwanted, "the wheel holds no tests, Cython sources or generated C", f"found {unwanted}")
    expect(any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "the wheel carries LICENSE", "not in .dist-info/licenses")
    expect(b".debug_info" not in binary, "the compiled module has no debug information", ".debug_info present")
    print(f"   compiled module {compiled[0]}: {len(binary):,} bytes", flush=True)


def check_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(zf.read(n).decode() for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    headers = [line for line in meta.split("\n\n", 1)[0].splitlines()]
    for wanted in ("Name: roundtrip-http", "License-Expression: MIT", "Requires-Python: >=3.10", "License-File: LICENSE"):
        expect(wanted in headers, f"the metadata says {wanted!r}", "not found")
    expect(any(h.startswith("Project-URL: Source") for h in headers), "the metadata has project URLs", "no Project-URL: Source")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (its path is printed)")
    parser.add_argument("--tools-venv", type=Path, help="reuse (or create) this venv for build, twine and check-jsonschema")
    args = parser.parse_args()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="roundtrip-distcheck-"))
    print(f"working in {work}", flush=True)
    try:
        step("tools: build, twine, check-jsonschema in their own venv")
        tools_dir = args.tools_venv or work / "venv-tools"
        tools = tools_dir / "bin" / "python"
        if not tools.exists():
            tools = make_venv(tools_dir)
        run([tools, "-m", "pip", "install", "-q", "--disable-pip-version-check", *TOOLS])

        step("python -m build: the sdist, then a wheel from it")
        dist = work / "dist"
        build_env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTRIP_")}
        run([tools, "-m", "build", "--outdir", dist, ROOT], env=build_env)
        sdist = only_file(str(dist / "roundtrip_http-*.tar.gz"))
        wheel = only_file(str(dist / "roundtrip_http-*.whl"))
        print(f"   {sdist.name}\n   {wheel.name}", flush=True)

        step("contents")
        check_sdist(sdist)
        check_wheel(wheel)
        check_metadata(wheel)

        step("twine check --strict")
        run([tools, "-m", "twine", "check", "--strict", sdist, wheel])
        print("ok: twine check", flush=True)

        step("the wheel, installed with --no-index, imports the compiled implementation")
        wheelhouse = work / "wheelhouse"
        run([tools, "-m", "pip", "download", "-q", "--only-binary", ":all:", "--dest", wheelhouse, "h11>=0.14"])
        py = make_venv(work / "venv-wheel")
        run([py, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheelhouse, wheel])
        # From the temp dir, so that no source checkout can shadow the installed package.
        out = run([py, "-c", "import roundtrip; print(roundtrip.IMPLEMENTATION, roundtrip.__file__)"], cwd=work).stdout
        expect(out.startswith("c ") and "site-packages" in out, "the wheel's implementation is c", f"got {out.strip()!r}")
        version = run([py.parent / "roundtrip", "--version"], cwd=work).stdout.strip()
        expect(version.endswith("(c)"), "roundtrip --version names the implementation", f"got {version!r}")

        step("the sdist with no compiler: refused, with the way to accept pure Python")
        py = make_venv(work / "venv-sdist")
        env = no_compiler_env(work, py)
        refused = run([py, "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", sdist], env=env, cwd=work, check=False)
        output = refused.stdout + refused.stderr
        expect(refused.returncode != 0, "without a compiler the sdist does not install silently as pure Python", "it installed")
        expect("ROUNDTRIP_NO_EXTENSIONS=1" in output, "pip shows (without -v) how to accept pure Python", f"not in\n{output}")
        banner = output[output.find("*" * 20) : output.rfind("*" * 20) + 20]
        print("   pip said:\n" + "\n".join("   " + line.strip() for line in banner.splitlines()), flush=True)
        env["ROUNDTRIP_NO_EXTENSIONS"] = "1"
        run([py, "-m", "pip", "install", "-q", "--no-cache-dir", "--disable-pip-version-check", sdist], env=env, cwd=work)
        env.pop("ROUNDTRIP_NO_EXTENSIONS")
        out = run([py, "-c", "import roundtrip; print(roundtrip.IMPLEMENTATION)"], env=env, cwd=work).stdout.strip()
        expect(out == "py", "with ROUNDTRIP_NO_EXTENSIONS=1 the sdist installs pure Python", f"got {out!r}")
        version = run([py.parent / "roundtrip", "--version"], env=env, cwd=work).stdout.strip()
        expect(version.endswith("(py)"), "roundtrip --version says pure Python", f"got {version!r}")

        step("workflows against GitHub's workflow schema")
        workflows = sorted(glob.glob(str(ROOT / ".github" / "workflows" / "*.yml")))
        expect(bool(workflows), "there are workflows", "none found")
        run([tools.parent / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows])
        print(f"ok: {len(workflows)} workflow(s) valid", flush=True)
    except CheckFailed as exc:
        print(f"\nDISTRIBUTION CHECK FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ndistribution check passed in {time.monotonic() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
