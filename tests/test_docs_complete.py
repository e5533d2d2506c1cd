"""The documentation lists exactly what the code has: a new option, error or trace hook cannot
go undocumented, and no page or docstring points readers at notes they do not have."""

from __future__ import annotations

import ast
import inspect
import pydoc
import re
import subprocess
from pathlib import Path

import pytest

import roundtrip
from roundtrip._trace import HOOKS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.once  # facts about the sources: one implementation is enough

# A table row whose first cell is `name`: the cells, stripped.
_ROW = re.compile(r"^\|\s*`(\w+)`\s*\|(.*)\|\s*$")


def table_rows(page: str) -> dict[str, list[str]]:
    """``{name: [other cells]}`` for every table row of ``docs/page`` that starts with a
    backquoted name (the tables of options, errors and hooks)."""
    rows: dict[str, list[str]] = {}
    for line in (DOCS / page).read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            name = match.group(1)
            assert name not in rows, f"docs/{page}: {name} is listed twice"
            rows[name] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_options_page_lists_exactly_the_transport_parameters() -> None:
    parameters = inspect.signature(roundtrip.Transport).parameters
    assert set(table_rows("options.md")) == set(parameters)


def test_options_page_gives_each_default_as_the_code_has_it() -> None:
    parameters = inspect.signature(roundtrip.Transport).parameters
    for name, cells in table_rows("options.md").items():
        documented = cells[0].strip("`")
        actual = parameters[name].default
        if name == "proxy":
            assert documented == "proxy_from_environment"
            assert repr(actual) == "roundtrip.proxy_from_environment"
        else:
            assert ast.literal_eval(documented) == actual and type(ast.literal_eval(documented)) is type(actual), name


def test_options_page_names_every_options_go_counterpart() -> None:
    for name, cells in table_rows("options.md").items():
        assert re.fullmatch(r"`[\w.]+`", cells[1]), f"{name}: Go name missing"
        assert len(cells[2]) > 20, f"{name}: meaning missing"


def _error_classes() -> dict[str, type]:
    found: dict[str, type] = {"Error": roundtrip.Error}
    pending = [roundtrip.Error]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__module__.startswith("roundtrip.") and not sub.__name__.startswith("_"):
                found[sub.__name__] = sub
                pending.append(sub)
    return found


def test_errors_page_lists_exactly_the_error_classes() -> None:
    assert set(table_rows("errors.md")) == set(_error_classes())


def test_errors_page_gives_each_class_its_bases() -> None:
    classes = _error_classes()
    for name, cells in table_rows("errors.md").items():
        documented = [base.strip(" `") for base in cells[0].split(",")]
        assert documented == [base.__name__ for base in classes[name].__bases__], name
        assert getattr(roundtrip, name) is classes[name], f"{name} is not exported by roundtrip"


def test_tracing_page_lists_exactly_the_trace_hooks() -> None:
    assert set(table_rows("tracing.md")) == set(HOOKS)


def test_help_shows_the_proxy_default_readably() -> None:
    text = pydoc.render_doc(roundtrip.Transport, renderer=pydoc.plaintext)
    assert "proxy: Optional[Callable[[Request], Optional[str]]] = roundtrip.proxy_from_environment" in text.replace("'", "")
    assert "object at 0x" not in text


def test_the_proxy_default_behaves_as_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    request = roundtrip.Request("GET", "https://api.example/")
    with roundtrip.Transport() as default, roundtrip.Transport(proxy=roundtrip.proxy_from_environment) as explicit:
        assert default._proxy(request) == explicit._proxy(request) == "http://proxy.internal:3128"


def _sources() -> list[Path]:
    """What users read: the package's sources and docstrings, the README and the docs (not
    build output such as the C that Cython generates)."""
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "roundtrip", "README.md", "docs", "CONTRIBUTING.md", "SECURITY.md"],
        cwd=ROOT, capture_output=True, text=True,
    )
    if tracked.returncode != 0:  # not a git checkout (an sdist): take the source suffixes
        patterns = ("roundtrip/**/*.py", "roundtrip/**/*.pyx", "roundtrip/**/*.pxi", "docs/*.md", "*.md")
        return sorted({path for pattern in patterns for path in ROOT.glob(pattern)})
    return [ROOT / line for line in tracked.stdout.splitlines() if (ROOT / line).is_file()]


def test_nothing_users_read_points_at_the_internal_contract() -> None:
    offenders = []
    for path in _sources():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"\bSPEC\b", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_every_page_is_in_the_table_of_contents() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^([a-z][\w-]*)$", index, re.MULTILINE))
    pages = {path.stem for path in DOCS.glob("*.md")} - {"index"}
    assert pages <= listed, f"not in the toctree: {sorted(pages - listed)}"
