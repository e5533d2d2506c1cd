#!/usr/bin/env bash
# Run the test suite on every claimed CPython this machine has besides the main one, each in
# its own venv with the package installed as a user installs it (a wheel built by pip).
#
#   tools/test_pythons.sh [VERSION ...]     default: 3.10 3.12 3.13 3.14 (whichever exist)
#
# Interpreters are looked up as pythonX.Y on PATH, then in ~/.pyenv/versions/X.Y.*. The tests
# run from a directory holding only tests/ and pyproject.toml, so they import the installed
# package, not the checkout. Exit status: 0 if every suite passed and at least one ran.
# PYTEST_ARGS adds pytest options (for example "-k 'not bench'").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.10 3.12 3.13 3.14)
WORK="$(mktemp -d /tmp/roundtrip-pythons.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

find_python() {
    local version="$1" candidate
    for candidate in "$HOME"/.pyenv/versions/"$version".*/bin/python"$version" "$(command -v "python$version" || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
    done
    return 1
}

# A copy of the source, so that building does not leave compiled modules in the checkout.
mkdir -p "$WORK/src" "$WORK/run"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$WORK/src")
# The tests read the docs, the README and the tools beside them (no package: the installed one is imported).
cp -r "$WORK/src/tests" "$WORK/src/pyproject.toml" "$WORK/src/README.md" "$WORK/src/CONTRIBUTING.md" "$WORK/src/docs" "$WORK/src/tools" "$WORK/src/benchmarks" "$WORK/run/"

ran=0
failed=()
summary=()
for version in "${VERSIONS[@]}"; do
    if ! python="$(find_python "$version")"; then
        echo "== Python $version: not installed here, skipped"
        summary+=("$version: not installed")
        continue
    fi
    venv="/tmp/venv-$version"
    echo "== Python $version ($python) -> $venv"
    started=$SECONDS
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # (this machine's pip configuration warns about absent local indexes on every package)
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$WORK/src[test,httpx,requests]" \
        2> >(grep -v "^WARNING: Location '" >&2)
    (cd "$WORK/run" && "$venv/bin/python" -c \
        "import roundtrip, sys; print(sys.version.split()[0], roundtrip.__version__, roundtrip.IMPLEMENTATION, roundtrip.__file__)")
    set +e
    (cd "$WORK/run" && ROUNDTRIP_REQUIRE_EXTENSIONS=1 "$venv/bin/python" -m pytest -q -rfEs -p no:cacheprovider ${PYTEST_ARGS:-} tests) \
        > "$WORK/pytest-$version.log" 2>&1
    status=$?
    set -e
    tail -n 15 "$WORK/pytest-$version.log"
    counts="$(tail -n 1 "$WORK/pytest-$version.log")"
    summary+=("$version: $counts (exit $status, $((SECONDS - started))s with install)")
    ran=$((ran + 1))
    if [ "$status" -ne 0 ]; then failed+=("$version"); fi
done

echo
echo "== suites on other Pythons"
printf '%s\n' "${summary[@]}"
if [ "$ran" -eq 0 ]; then echo "no Python of ${VERSIONS[*]} is installed" >&2; exit 1; fi
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED on: ${failed[*]}" >&2; exit 1; fi
