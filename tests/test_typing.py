"""The package type-checks under ``mypy --strict``, and the compiled module's stub
(``roundtrip/_speedups_c.pyi``) says what its pure-Python twin says: the same names, and the same
parameters with the same annotations."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from roundtrip import _speedups_py

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "roundtrip" / "_speedups_c.pyi"

# Where the twins' return types differ on purpose: the compiled new_body_buffer fills a bytes
# object in place, the pure one a bytearray.
RETURNS_DIFFER = {"new_body_buffer"}


def _source_tree() -> None:
    if not (ROOT / "pyproject.toml").exists() or not STUB.exists():  # a wheel under test
        pytest.skip("no source tree")


@pytest.mark.once(impl="py")
def test_mypy_strict_finds_no_errors(tmp_path: Path) -> None:
    _source_tree()
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy, or the test extra)")
    result = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "roundtrip",
            "--cache-dir", str(tmp_path / "cache"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^Success: no issues found in \d+ source files$", result.stdout, re.M), result.stdout


def _stub() -> ast.Module:
    _source_tree()
    return ast.parse(STUB.read_text(), str(STUB))


def _stub_all(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("the stub has no __all__")


def _stub_params(fn: ast.FunctionDef) -> list[tuple[str, str, object, str]]:
    """(name, kind, default, annotation) per parameter, as ``_py_params`` gives them."""
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = []
    for arg, default in zip(positional, defaults):
        kind = "POSITIONAL_ONLY" if arg in args.posonlyargs else "POSITIONAL_OR_KEYWORD"
        value = inspect.Parameter.empty if default is None else eval(compile(ast.Expression(default), "<stub>", "eval"))
        params.append((arg.arg, kind, value, ast.unparse(arg.annotation) if arg.annotation else ""))
    assert args.vararg is None and args.kwarg is None and not args.kwonlyargs, fn.name
    return params


def _py_params(fn: Any) -> list[tuple[str, str, object, str]]:
    return [
        (p.name, p.kind.name, p.default, "" if p.annotation is inspect.Parameter.empty else str(p.annotation))
        for p in inspect.signature(fn).parameters.values()
    ]


def _stub_return(fn: ast.FunctionDef) -> str:
    return ast.unparse(fn.returns) if fn.returns else ""


def _py_return(fn: Any) -> str:
    annotation = inspect.signature(fn).return_annotation
    return "" if annotation is inspect.Signature.empty else str(annotation)


@pytest.mark.once(impl="py")
def test_the_stub_exports_what_the_pure_twin_exports() -> None:
    tree = _stub()
    assert _stub_all(tree) == list(_speedups_py.__all__)
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assert set(_speedups_py.__all__) <= defined


@pytest.mark.once(impl="py")
def test_the_stub_gives_the_pure_twins_signatures() -> None:
    tree = _stub()
    checked = 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            py = getattr(_speedups_py, node.name)
            assert _stub_params(node) == _py_params(py), node.name
            if node.name not in RETURNS_DIFFER:
                assert _stub_return(node) == _py_return(py), node.name
            checked += 1
        elif isinstance(node, ast.ClassDef) and node.name in _speedups_py.__all__:
            cls = getattr(_speedups_py, node.name)
            methods = {item.name: item for item in node.body if isinstance(item, ast.FunctionDef)}
            public = {name for name in vars(cls) if not name.startswith("_")}
            assert {name for name in methods if not name.startswith("_")} == public, node.name
            for name, method in methods.items():
                py = getattr(cls, name)
                # The stub's self is unannotated; inspect on the class gives it too.
                assert _stub_params(method) == _py_params(py), f"{node.name}.{name}"
                assert _stub_return(method) == _py_return(py), f"{node.name}.{name}"
                checked += 1
    assert checked >= len(_speedups_py.__all__)


def test_the_stub_names_what_the_compiled_module_has(twins: tuple[Any, Any]) -> None:
    c, _ = twins
    tree = _stub()
    assert _stub_all(tree) == list(c.__all__)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            assert callable(getattr(c, node.name)), node.name
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            assert hasattr(c, node.target.id), node.target.id
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    assert hasattr(getattr(c, node.name), item.name), f"{node.name}.{item.name}"
